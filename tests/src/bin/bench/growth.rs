//! The growth section of the benchmark: does a task cost baton more as its plan gets longer?
//! One plan of 200 tasks, each writing a 16 KiB file (the transcript grows by each file and
//! its tool call), through the real CLI in warm mode on one worker. Per task: baton's own time
//! (the run over → `task_succeeded` published) and the bytes Redis received meanwhile (its
//! `total_net_input_bytes`, read after each task); over the plan: the total against the final
//! transcript's size.

use std::time::Duration;

use anyhow::{Context, Result};
use baton_core::event::EventBody;
use baton_core::EventKind;
use baton_tests::*;

use super::{subscribe, wait_event, worker_opts, Bench};

const TASKS: usize = 200;
/// The first and the last this many tasks are compared.
const WINDOW: usize = 20;

/// A prompt that makes the stand-in write a 16 KiB file and answer briefly (the same few words at
/// every turn, so the transcript grows by the same amount each task).
fn writing_task(k: usize) -> String {
    let line = format!("{k:04} {}\n", "x".repeat(58));
    let body: String = line.repeat(16 * 1024 / line.len());
    format!("Step {k}. [[standin:brief]]\nFile: part-{k:03}.txt\n```\n{body}```\n")
}

async fn net_input_bytes(conn: &mut baton_connect::Conn) -> Result<u64> {
    let info: String = redis::cmd("INFO").arg("stats").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_input_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .context("INFO stats has total_net_input_bytes")
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

impl Bench {
    pub(super) async fn growth(&mut self) -> Result<()> {
        println!("\n## Cost per task as a plan grows: {TASKS} tasks, each writing a 16 KiB file (real CLI, warm, one worker)\n");
        let mut pool = Pool::start()?;
        // No rotation: the stand-in counts a token per 4 bytes of request, and this plan's
        // conversation would otherwise be rotated to a new session long before its end.
        pool.add_worker(&worker_opts(
            &pool,
            "a",
            1,
            &["--rotate-at-tokens", "1000000000"],
        ))?;
        let mut events = subscribe(&pool).await?;
        let mut conn = pool.conn().await?;
        // In documents of 50 tasks (a document is at most 1 MiB): the first creates the plan,
        // each next one appends to it. The first task waits 3 s, so that every document is
        // ingested before anything is measured (ingest sends each document's tasks to Redis).
        for part in 0..TASKS / 50 {
            let mut tasks: Vec<(String, String)> = (part * 50 + 1..=part * 50 + 50)
                .map(|k| (format!("t{}", k + 1), writing_task(k)))
                .collect();
            if part == 0 {
                tasks.insert(
                    0,
                    (
                        "t1".into(),
                        "Start. [[standin:sleep 3000]] [[standin:brief]]".into(),
                    ),
                );
            }
            let refs: Vec<(&str, &str)> = tasks
                .iter()
                .map(|(id, p)| (id.as_str(), p.as_str()))
                .collect();
            pool.submit(&doc("grow").tasks(&refs).json()).await?;
        }
        wait_event(
            &mut events,
            "grow",
            &[EventKind::TaskSucceeded],
            Duration::from_secs(120),
        )
        .await?;
        let plan: baton_core::PlanId = "grow".parse()?;
        let ingested: Option<u64> =
            redis::AsyncCommands::hget(&mut conn, pool.keys.plan(&plan), "next_index").await?;
        anyhow::ensure!(
            ingested == Some(TASKS as u64 + 1),
            "every document ingested before the measured tasks (next_index {ingested:?})"
        );
        let projects = pool.dir.path().join("claude-a/projects");
        let transcript_size = |session: &str| -> u64 {
            std::fs::read_dir(&projects)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|d| std::fs::metadata(d.path().join(format!("{session}.jsonl"))).ok())
                .map(|m| m.len())
                .next()
                .unwrap_or(0)
        };
        let mut before = net_input_bytes(&mut conn).await?;
        let mut size_before: Option<u64> = None;
        let (mut own_ms, mut bytes, mut grown, mut sent) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..TASKS {
            let (arrived, ev) = wait_event(
                &mut events,
                "grow",
                &[EventKind::TaskSucceeded],
                Duration::from_secs(120),
            )
            .await?;
            let after = net_input_bytes(&mut conn).await?;
            let EventBody::TaskSucceeded(s) = &ev.body else {
                anyhow::bail!("waited for task_succeeded, got {}", ev.kind());
            };
            own_ms.push(arrived - s.run_ended_ms);
            sent.push(s.transcript_bytes.map_or(f64::NAN, |b| b as f64));
            bytes.push((after - before) as f64);
            before = after;
            let size = transcript_size(&s.session_id.to_string());
            grown.push(size.saturating_sub(size_before.unwrap_or(size)) as f64);
            size_before = Some(size);
        }
        // The first task's growth is unknown (no size before it): take the second's.
        grown[0] = grown[1];
        let record: String = redis::AsyncCommands::get(&mut conn, pool.keys.session(&plan)).await?;
        let record: baton_core::records::SessionRecord = serde_json::from_str(&record)?;
        let final_size = std::fs::read_dir(pool.dir.path().join("claude-a/projects"))?
            .flatten()
            .map(|d| d.path().join(format!("{}.jsonl", record.session_id)))
            .find(|p| p.exists())
            .map(|p| std::fs::metadata(p).map(|m| m.len()))
            .transpose()?
            .context("the worker's transcript file")?;
        let total: f64 = bytes.iter().sum();
        let (first_own, last_own) = (mean(&own_ms[..WINDOW]), mean(&own_ms[TASKS - WINDOW..]));
        let (first_bytes, last_bytes) = (mean(&bytes[..WINDOW]), mean(&bytes[TASKS - WINDOW..]));
        println!("| tasks | baton's own time per task (mean) | bytes Redis received per task (mean) | of which the transcript chunk | the transcript grew per task (mean; the CLI writes it) |");
        println!("|---|---:|---:|---:|---:|");
        for (name, range) in [
            ("first 20", 0..WINDOW),
            ("91-110", TASKS / 2 - 10..TASKS / 2 + 10),
            ("last 20", TASKS - WINDOW..TASKS),
        ] {
            println!(
                "| {name} | {:.2} ms | {:.0} KiB | {:.1} KiB | {:.0} KiB |",
                mean(&own_ms[range.clone()]),
                mean(&bytes[range.clone()]) / 1024.0,
                mean(&sent[range.clone()]) / 1024.0,
                mean(&grown[range]) / 1024.0
            );
        }
        let own_ratio = last_own / first_own;
        let bytes_ratio = last_bytes / first_bytes;
        let total_ratio = total / final_size as f64;
        println!(
            "\nLast 20 / first 20: own time {own_ratio:.2}x, bytes {bytes_ratio:.2}x. Over the plan Redis received {:.1} MiB; the final transcript is {:.1} MiB: {total_ratio:.2}x.",
            total / 1048576.0,
            final_size as f64 / 1048576.0
        );
        println!("\n(Own time: from the run being over (the warm CLI's transcript holds the turn) to task_succeeded arriving here: reading and packing the transcript, the commit script, the publish. Bytes: Redis's total_net_input_bytes between two tasks, everything every client sent; a commit carries the task's 16 KiB prompt twice (the head it checks, the result it stores) and the turn's transcript chunk, gzipped. The transcript's growth per task is the CLI's own writing: the file, its tool call and result, and the CLI's bookkeeping.)");
        self.target(
            "own time per task, last 20 / first 20 of 200",
            "≤ 1.5x",
            format!("{own_ratio:.2}x ({first_own:.1} → {last_own:.1} ms)"),
            Some(own_ratio <= 1.5),
        );
        self.target(
            "bytes to Redis per task, last 20 / first 20 of 200",
            "≤ 1.5x",
            format!(
                "{bytes_ratio:.2}x ({:.0} → {:.0} KiB)",
                first_bytes / 1024.0,
                last_bytes / 1024.0
            ),
            Some(bytes_ratio <= 1.5),
        );
        self.target(
            "bytes to Redis over the plan / final transcript",
            "≤ 3x",
            format!("{total_ratio:.2}x"),
            Some(total_ratio <= 3.0),
        );
        Ok(())
    }
}

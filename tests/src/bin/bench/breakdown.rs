//! Where baton's own time per task goes (issue 21, part 4), from the worker's stamps in each
//! `task_succeeded` (`stamps`: claimed, began, prepared, committing; and the run's started,
//! result and ended) and the event's arrival at a subscriber, on one clock: for the queue
//! alone (the in-process executor, several plans in flight) and for the real CLI (warm, one
//! plan at a time), so the next bottleneck is visible.

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use baton_core::event::EventBody;
use baton_core::EventKind;
use baton_tests::Pool;
use serde_json::json;

use super::{percentile, submit_many, subscribe, worker_opts, Bench, FastDir};

/// The parts of a task, in order, with what each spans.
const PARTS: [(&str, &str); 6] = [
    ("claim", "plan claimed → lease taken and task begun (a hold's first task only)"),
    ("prepare", "task begun → files and session ready (checkout, transcript check or restore, recap; failed attempts and their backoff, if any)"),
    ("start", "ready → run started (the CLI's command line, spawn or the warm turn's write)"),
    ("run", "run started → run over (the CLI, or the in-process answer)"),
    ("pack", "run over → commit sent (answer judged, git commit and push for a plan with a repository, transcript packed, result, session record and events built)"),
    ("commit", "commit sent → task_succeeded at a subscriber (the commit, the next task's start, publication)"),
];

/// One task's parts, in ms (`claim` only for a hold's first task).
fn parts(arrived: f64, s: &baton_core::event::TaskSucceeded) -> Option<[Option<f64>; 6]> {
    let st = s.stamps?;
    Some([
        st.claimed_ms.map(|c| st.began_ms - c),
        Some(st.prepared_ms - st.began_ms),
        Some(s.run_started_ms - st.prepared_ms),
        Some(s.run_ended_ms - s.run_started_ms),
        Some(st.committing_ms - s.run_ended_ms),
        Some(arrived - st.committing_ms),
    ])
}

/// Each part's samples over a run of `tasks` tasks.
struct Samples {
    tasks: usize,
    by_part: [Vec<f64>; 6],
}

impl Samples {
    /// Mean per task (a hold's claim spread over all its tasks), p50 and p99 of the part.
    fn stats(&self, i: usize) -> (f64, f64, f64) {
        let v = &self.by_part[i];
        let mean = v.iter().sum::<f64>() / self.tasks as f64;
        (mean, percentile(v, 0.5), percentile(v, 0.99))
    }
}

/// Collects every task_succeeded of `plans` × `tasks` as the worker publishes them.
async fn collect(
    pool: &mut Pool,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(f64, baton_core::Event)>,
    tasks: usize,
) -> Result<Samples> {
    let mut by_part: [Vec<f64>; 6] = Default::default();
    let mut seen = 0;
    while seen < tasks {
        let got = tokio::time::timeout(Duration::from_secs(120), rx.recv()).await;
        let Ok(Some((arrived, ev))) = got else {
            bail!(
                "only {seen} of {tasks} tasks succeeded; worker logs:\n{}",
                pool.log_tail()
            );
        };
        if ev.kind() == EventKind::PlanFailed {
            bail!("a plan failed: {:?}", ev.body.reason());
        }
        let EventBody::TaskSucceeded(s) = &ev.body else {
            continue;
        };
        let Some(p) = parts(arrived, s) else {
            bail!("task_succeeded without the worker's stamps: {s:?}");
        };
        for (i, v) in p.into_iter().enumerate() {
            by_part[i].extend(v);
        }
        seen += 1;
    }
    for v in &mut by_part {
        v.sort_by(f64::total_cmp);
    }
    Ok(Samples { tasks, by_part })
}

impl Bench {
    pub(super) async fn breakdown(&mut self) -> Result<()> {
        const QUEUE_PLANS: usize = 400;
        const CLI_PLANS: usize = 4;
        println!(
            "\n## Where the time goes: baton's own parts of a task, from the worker's stamps\n"
        );
        // The queue alone: the in-process executor, 8 plans in flight.
        let mut pool = Pool::start()?;
        let fast = FastDir::new();
        let mut rx = subscribe(&pool).await?;
        submit_many(&pool, "b", QUEUE_PLANS, 10).await?;
        let mut opts = worker_opts(
            &pool,
            "q",
            self.queue_concurrency,
            &["--executor", "instant"],
        );
        fast.place(&mut opts, "q");
        pool.add_worker(&opts)?;
        let queue = collect(&mut pool, &mut rx, QUEUE_PLANS * 10).await?;
        drop(pool);
        // The real CLI, warm, one plan at a time on one worker.
        let mut pool = Pool::start()?;
        let mut rx = subscribe(&pool).await?;
        pool.add_worker(&worker_opts(&pool, "c", 1, &["--session-mode", "warm"]))?;
        for p in 0..CLI_PLANS {
            let tasks: Vec<_> = (1..=10)
                .map(|k| json!({"id": format!("t{k}"), "prompt": format!("Step {k}: reply in one sentence.")}))
                .collect();
            let doc = json!({"plan_id": format!("cli-{p}"), "tasks": tasks});
            pool.submit(&doc.to_string()).await?;
        }
        let cli = collect(&mut pool, &mut rx, CLI_PLANS * 10).await?;
        print_table(&queue, &cli, self.queue_concurrency, QUEUE_PLANS, CLI_PLANS);
        let own = |s: &Samples| {
            (0..6)
                .filter(|i| *i != 3)
                .map(|i| s.stats(i).0)
                .sum::<f64>()
        };
        ensure!(own(&queue) > 0.0, "no time measured");
        Ok(())
    }
}

fn print_table(queue: &Samples, cli: &Samples, concurrency: u16, qp: usize, cp: usize) {
    println!("| part | what it spans | queue only: mean per task | p50 | p99 | real CLI (warm): mean per task | p50 | p99 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let (mut qsum, mut csum) = (0.0, 0.0);
    for (i, (name, spans)) in PARTS.iter().enumerate() {
        let (qm, q50, q99) = queue.stats(i);
        let (cm, c50, c99) = cli.stats(i);
        qsum += qm;
        csum += cm;
        println!("| {name} | {spans} | {qm:.3} ms | {q50:.3} ms | {q99:.3} ms | {cm:.2} ms | {c50:.2} ms | {c99:.2} ms |");
    }
    println!("| all | | {qsum:.3} ms | | | {csum:.2} ms | | |");
    println!("\n(Queue only: {qp} plans × 10 tasks, the in-process executor, one worker × {concurrency}, with {concurrency} plans in flight each part includes waiting its turn on the worker's thread and on Redis. Real CLI: {cp} plans × 10 tasks, one worker, one slot, warm mode, the CLI against the stand-in. Means are per task: a hold's claim is spread over the tasks it ran. Stamps are the worker's, arrival the benchmark's subscriber's, on the same clock.)");
}

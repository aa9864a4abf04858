//! The git section of the benchmark: what a plan with a `repo` costs per task (the workspace
//! made the checkpoint's files before the run, the commit and push after it, on a local remote),
//! and how long a plan takes to move to a worker that has never seen its repository (about 50 MB
//! and 3,000 commits), and to one whose cache is a task behind.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use baton_core::event::EventBody;
use baton_tests::*;
use serde_json::json;

use super::{percentile, Bench};

/// A prompt that writes one file.
fn writing_task(plan: &str, k: usize) -> String {
    format!("Step {k}.\nFile: {plan}-{k}.txt\n```\nline {k}\n```\n")
}

/// `checkout_ms` and `checkpoint_ms` of each task_succeeded event of `plan`, by task index.
async fn git_times(pool: &Pool, plan: &str) -> Result<Vec<(u64, f64, f64)>> {
    let mut out = Vec::new();
    for e in pool.events(&plan_id(plan)).await? {
        let EventBody::TaskSucceeded(s) = &e.body else {
            continue;
        };
        out.push((
            e.task_index.unwrap_or(0),
            s.checkout_ms.unwrap_or(f64::NAN),
            s.checkpoint_ms.unwrap_or(f64::NAN),
        ));
    }
    Ok(out)
}

/// A bare repository of about `commits` × 16 KiB of history (random, incompressible content)
/// over 200 files, written with `git fast-import`.
fn big_repository(path: &Path, commits: usize) -> Result<()> {
    std::fs::create_dir_all(path)?;
    let ok = Command::new("git")
        .args(["init", "-q", "--bare", "--initial-branch=main"])
        .arg(path)
        .status()?
        .success();
    if !ok {
        bail!("git init failed");
    }
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(path)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .context("git fast-import")?;
    let mut stdin = child.stdin.take().context("piped")?;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = vec![0u8; 16 * 1024];
    for i in 0..commits {
        for chunk in noise.chunks_mut(8) {
            // xorshift64: incompressible bytes without a crate.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        let message = format!("commit {i}");
        write!(
            stdin,
            "commit refs/heads/main\ncommitter bench <bench@localhost> {} +0000\ndata {}\n{message}\n",
            1_700_000_000 + i,
            message.len()
        )?;
        write!(
            stdin,
            "M 644 inline src/file-{:03}.bin\ndata {}\n",
            i % 200,
            noise.len()
        )?;
        stdin.write_all(&noise)?;
        stdin.write_all(b"\n")?;
    }
    drop(stdin);
    if !child.wait()?.success() {
        bail!("git fast-import failed");
    }
    Ok(())
}

fn repo_size_mib(path: &Path) -> f64 {
    fn size(p: &Path) -> u64 {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| size(&e.path()))
                .sum(),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    size(path) as f64 / (1024.0 * 1024.0)
}

impl Bench {
    pub(super) async fn git(&mut self) -> Result<()> {
        const TASKS: usize = 40;
        println!("\n## Git workspaces: a plan's code on a branch (real CLI, warm mode, local bare remote)\n");
        let mut pool = Pool::start()?;
        let remote = BareRepo::create(
            &baton_tests::git::remotes_dir(pool.dir.path()).join("small.git"),
            &[("README.md", "hi\n")],
        )?;
        let mut opts = pool.separate_machine("a", 1);
        opts.log_filter = "warn".into();
        pool.add_worker(&opts)?;
        let prompts: Vec<String> = (1..=TASKS).map(|k| writing_task("g", k)).collect();
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        pool.submit(
            &doc("g")
                .prompts(&refs)
                .repo(json!({"url": remote.url()}))
                .json(),
        )
        .await?;
        pool.wait_state(
            &plan_id("g"),
            &[PlanState::Completed],
            Duration::from_secs(300),
        )
        .await?;
        let times = git_times(&pool, "g").await?;
        // The plan's first task on a worker also makes the repository's mirror and fetches the
        // base: a one-time cost of the move, shown apart (and measured at scale below).
        let first = times.iter().find(|t| t.0 == 0).copied();
        let steady: Vec<&(u64, f64, f64)> = times.iter().filter(|t| t.0 > 0).collect();
        let mut checkout: Vec<f64> = steady.iter().map(|t| t.1).collect();
        let mut checkpoint: Vec<f64> = steady.iter().map(|t| t.2).collect();
        let mut total: Vec<f64> = steady.iter().map(|t| t.1 + t.2).collect();
        for v in [&mut checkout, &mut checkpoint, &mut total] {
            v.sort_by(f64::total_cmp);
        }
        println!("Per task, tasks 2-{TASKS} of one plan on one worker, each writing one file:\n");
        println!("| step | p50 | p99 | max |");
        println!("|---|---:|---:|---:|");
        for (name, v) in [
            (
                "workspace made the checkpoint's files (clean; reset when needed)",
                &checkout,
            ),
            ("commit, lease renewed, push with a lease", &checkpoint),
            ("git per task, both", &total),
        ] {
            println!(
                "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
                percentile(v, 0.5),
                percentile(v, 0.99),
                percentile(v, 1.0)
            );
        }
        if let Some((_, co, cp)) = first {
            println!("\nThe plan's first task on the worker: {co:.1} ms to make the workspace (mirror made, base fetched), {cp:.1} ms to commit and push (the branch created).");
        }
        let p99 = percentile(&total, 0.99);
        self.target(
            "git per task (checkout + commit + push, local remote), p99",
            "< 50 ms",
            format!("{p99:.1} ms"),
            Some(p99 < 50.0),
        );
        drop(pool);

        // Handoff: a plan moves to a worker with an empty cache, then to one a task behind.
        let mut pool = Pool::start()?;
        let big = baton_tests::git::remotes_dir(pool.dir.path()).join("big.git");
        big_repository(&big, 3000)?;
        let size = repo_size_mib(&big);
        let machine = |pool: &Pool, name: &str| {
            let mut o = pool.separate_machine(name, 1);
            o.log_filter = "warn".into();
            o
        };
        let url = big.display().to_string();
        let a = machine(&pool, "a");
        let b = machine(&pool, "b");
        let ia = pool.add_worker(&a)?;
        pool.submit(
            &doc("h")
                .task("t1", &writing_task("h", 1))
                .repo(json!({"url": url}))
                .json(),
        )
        .await?;
        pool.wait_done(&plan_id("h"), 1, Duration::from_secs(300))
            .await?;
        pool.workers[ia].stop(Duration::from_secs(30));
        let ib = pool.add_worker(&b)?;
        pool.submit(&doc("h").task("t2", &writing_task("h", 2)).json())
            .await?;
        pool.wait_done(&plan_id("h"), 2, Duration::from_secs(300))
            .await?;
        pool.workers[ib].stop(Duration::from_secs(30));
        pool.add_worker(&a)?;
        pool.submit(&doc("h").task("t3", &writing_task("h", 3)).json())
            .await?;
        pool.wait_done(&plan_id("h"), 3, Duration::from_secs(300))
            .await?;
        let times = git_times(&pool, "h").await?;
        let at = |i: u64| times.iter().find(|t| t.0 == i).map_or(f64::NAN, |t| t.1);
        println!(
            "\nMoving a plan between workers, repository of {size:.0} MiB with 3,000 commits (the time to make the new worker's workspace the checkpoint's files):\n"
        );
        println!("| move | time |");
        println!("|---|---:|");
        println!(
            "| to a worker that never saw the repository (fetched whole into its cache) | {:.0} ms |",
            at(1)
        );
        println!(
            "| back to a worker whose cache is one task behind (incremental fetch) | {:.0} ms |",
            at(2)
        );
        println!("\n(Worker-stamped `checkout_ms` and `checkpoint_ms` of each task_succeeded event. The remote is a bare repository on the same disk, reached as a path: what a network adds to fetch and push comes on top.)");
        self.target(
            "cached handoff (incremental fetch + checkout)",
            "< 200 ms",
            format!("{:.0} ms ({size:.0} MiB repository)", at(2)),
            Some(at(2) < 200.0),
        );
        Ok(())
    }
}

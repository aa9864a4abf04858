//! The queue section's comparison with BullMQ (issue #21): baton's queue-only runs and BullMQ
//! running the same ordered workload (`tests/bench/bullmq-ordered.mjs`, BullMQ installed pinned
//! by `scripts/setup.sh`'s `ensure_bullmq`), interleaved on one redis-server flushed between
//! runs, each with the Redis server's CPU per task (`INFO cpu`), and the ratios per workload.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use baton_tests::*;
use serde_json::Value;

use super::{check_order, submit_many, wait_stat, worker_opts, Bench, FastDir};

/// Tasks per plan (jobs per group).
pub(super) const TASKS: usize = 10;

/// One workload, run by both queues at the same size.
pub(super) struct Workload {
    pub(super) name: &'static str,
    /// baton's `--executor`.
    pub(super) executor: &'static str,
    /// The BullMQ script's `--work`.
    pub(super) work: &'static str,
    pub(super) plans: usize,
}

/// The two workloads, in the order a round runs them. Spawning is slow in Node (a few hundred
/// a second here), so that workload is smaller: a round stays well under a minute.
pub(super) const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "ordered no-op",
        executor: "instant",
        work: "noop",
        plans: 2000,
    },
    Workload {
        name: "ordered, spawns /bin/true",
        executor: "spawn:/bin/true",
        work: "spawn",
        plans: 500,
    },
];

/// One measured run.
pub(super) struct Run {
    pub(super) round: usize,
    pub(super) workload: &'static str,
    pub(super) baton: bool,
    /// baton's worker ran with `--threads` this (else its default).
    pub(super) threads: Option<u16>,
    pub(super) tasks: usize,
    pub(super) seconds: f64,
    /// The Redis server's CPU time over the run (sys + user), in µs.
    pub(super) redis_cpu_us: f64,
    /// `INFO commandstats` over the run: command, calls, µs (scripts' inner calls included).
    pub(super) commands: Vec<(String, u64, u64)>,
    /// baton's worker process's CPU time over the run, in µs (0 for BullMQ).
    pub(super) worker_cpu_us: f64,
}

impl Run {
    pub(super) fn rate(&self) -> f64 {
        self.tasks as f64 / self.seconds
    }

    /// One row of the runs table.
    pub(super) fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {:.2} s | {:.0} | {:.0} µs |",
            self.round,
            self.workload,
            match (self.baton, self.threads) {
                (true, None) => "baton".to_owned(),
                (true, Some(n)) => format!("baton --threads {n}"),
                (false, _) => "BullMQ".to_owned(),
            },
            self.tasks,
            self.seconds,
            self.rate(),
            self.redis_cpu_us / self.tasks as f64
        )
    }
}

/// The Redis server's own CPU time so far (`used_cpu_sys` + `used_cpu_user`), in seconds.
async fn redis_cpu_s(pool: &Pool) -> Result<f64> {
    let mut conn = pool.conn().await?;
    let info: String = redis::cmd("INFO").arg("cpu").query_async(&mut conn).await?;
    let field = |name: &str| -> Result<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("INFO cpu has no {name}"))
    };
    Ok(field("used_cpu_sys")? + field("used_cpu_user")?)
}

/// Empties the redis-server for the next run, and zeroes its command statistics.
async fn flush(pool: &Pool) -> Result<()> {
    let mut conn = pool.conn().await?;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await?;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// `INFO commandstats` since the last flush: (command, calls, µs), the costliest first.
async fn command_stats(pool: &Pool) -> Result<Vec<(String, u64, u64)>> {
    let mut conn = pool.conn().await?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await?;
    let mut out: Vec<(String, u64, u64)> = info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            Some((name.to_owned(), field("calls")?, field("usec")?))
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.2));
    Ok(out)
}

/// Where the Redis server's time went in each queue's last run of a workload: the costliest
/// commands per task (a script's `usec` includes the calls it makes, which are listed too).
pub(super) fn print_command_stats(runs: &[Run], workload: &str) {
    let last = |baton: bool| {
        runs.iter()
            .rev()
            .find(|r| r.workload == workload && r.baton == baton)
    };
    let (Some(ours), Some(theirs)) = (last(true), last(false)) else {
        return;
    };
    println!(
        "\n### Where Redis's time goes, {workload} (round {}, `INFO commandstats` per task)\n",
        ours.round
    );
    println!("| baton command | calls/task | µs/task | BullMQ command | calls/task | µs/task |");
    println!("|---|---:|---:|---|---:|---:|");
    let per = |r: &Run, i: usize| {
        r.commands.get(i).map_or(
            ("".to_owned(), "".to_owned(), "".to_owned()),
            |(n, c, u)| {
                let t = r.tasks as f64;
                (
                    n.clone(),
                    format!("{:.2}", *c as f64 / t),
                    format!("{:.1}", *u as f64 / t),
                )
            },
        )
    };
    for i in 0..14 {
        let (a, b) = (per(ours, i), per(theirs, i));
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            a.0, a.1, a.2, b.0, b.1, b.2
        );
    }
}

/// baton: `w.plans` plans submitted, then one worker of `concurrency` started; timed from
/// its start to the last plan_completed, every plan's results checked in order.
/// baton: `w.plans` plans submitted, then one worker of `concurrency` started (with
/// `--threads` set when `threads` is); timed from its start to the last plan_completed, every
/// plan's results checked in order.
pub(super) async fn baton_run(
    pool: &mut Pool,
    w: &Workload,
    round: usize,
    concurrency: u16,
    threads: Option<u16>,
) -> Result<Run> {
    flush(pool).await?;
    let fast = FastDir::new();
    let name = format!("{}-{round}-{}", w.work, threads.unwrap_or(0));
    let mut opts = worker_opts(pool, &name, concurrency, &["--executor", w.executor]);
    if let Some(n) = threads {
        opts.extra.extend(["--threads".to_owned(), n.to_string()]);
    }
    fast.place(&mut opts, &name);
    let cpu_before = redis_cpu_s(pool).await?;
    submit_many(pool, "q", w.plans, TASKS).await?;
    let started = Instant::now();
    let worker = pool.add_worker(&opts)?;
    let done = wait_stat(
        pool,
        Counter::PlansCompleted,
        w.plans as i64,
        Duration::from_secs(600),
    )
    .await?;
    let cpu_after = redis_cpu_s(pool).await?;
    let commands = command_stats(pool).await?;
    let pid = u32::try_from(pool.workers[worker].proc.pid())?;
    let worker_cpu_us = super::traces::cpu_s(pid) * 1e6;
    check_order(pool, "q", w.plans, TASKS).await?;
    pool.workers[worker].stop(Duration::from_secs(20));
    Ok(Run {
        round,
        workload: w.name,
        baton: true,
        threads,
        tasks: w.plans * TASKS,
        seconds: (done - started).as_secs_f64(),
        redis_cpu_us: (cpu_after - cpu_before) * 1e6,
        commands,
        worker_cpu_us,
    })
}

/// Where `ensure_bullmq` installed BullMQ.
fn modules_dir() -> PathBuf {
    std::env::var_os("BATON_BULLMQ_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/bullmq"))
}

/// BullMQ: one Node process running `tests/bench/bullmq-ordered.mjs` against the pool's
/// redis-server, under a key prefix of its own. Returns the run and the script's report.
pub(super) async fn bullmq_run(
    pool: &Pool,
    w: &Workload,
    round: usize,
    concurrency: u16,
) -> Result<(Run, Value)> {
    flush(pool).await?;
    let modules = modules_dir();
    ensure!(
        modules.join("node_modules/bullmq").is_dir(),
        "BullMQ is not installed in {}: scripts/bench.sh installs it",
        modules.display()
    );
    let out = tokio::process::Command::new("node")
        .arg(repo_root().join("tests/bench/bullmq-ordered.mjs"))
        .args(["--port", &pool.redis.port.to_string()])
        .args(["--prefix", &format!("bullmq-{}-{round}", w.work)])
        .arg("--modules")
        .arg(&modules)
        .args(["--groups", &w.plans.to_string()])
        .args(["--jobs", &TASKS.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--work", w.work])
        .kill_on_drop(true)
        .output()
        .await
        .context("running node (scripts/bench.sh installs it)")?;
    if !out.status.success() {
        bail!(
            "the BullMQ run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .with_context(|| format!("the BullMQ script printed {stdout:?}"))?;
    let number = |k: &str| {
        report[k]
            .as_f64()
            .with_context(|| format!("no {k} in {report}"))
    };
    let jobs = report["jobs"]
        .as_u64()
        .with_context(|| format!("no jobs in {report}"))?;
    let run = Run {
        round,
        workload: w.name,
        baton: false,
        threads: None,
        tasks: usize::try_from(jobs)?,
        seconds: number("seconds")?,
        redis_cpu_us: number("redis_cpu_us")?,
        commands: command_stats(pool).await?,
        worker_cpu_us: 0.0,
    };
    ensure!(
        run.tasks == w.plans * TASKS,
        "BullMQ ran {} jobs",
        run.tasks
    );
    Ok((run, report))
}

/// One workload's runs over every round, summed: tasks over seconds, CPU over tasks.
pub(super) struct Summary {
    pub(super) workload: &'static str,
    pub(super) baton_rate: f64,
    pub(super) bullmq_rate: f64,
    /// baton / BullMQ of each round.
    pub(super) per_round: Vec<f64>,
    pub(super) baton_cpu_us: f64,
    pub(super) bullmq_cpu_us: f64,
}

impl Summary {
    pub(super) fn ratio(&self) -> f64 {
        self.baton_rate / self.bullmq_rate
    }
}

/// Sums `runs` per workload.
pub(super) fn summarize(runs: &[Run]) -> Vec<Summary> {
    WORKLOADS
        .iter()
        .map(|w| {
            let of = |baton: bool| {
                let mine: Vec<&Run> = runs
                    .iter()
                    .filter(|r| r.workload == w.name && r.baton == baton && r.threads.is_none())
                    .collect();
                let tasks: usize = mine.iter().map(|r| r.tasks).sum();
                let seconds: f64 = mine.iter().map(|r| r.seconds).sum();
                let cpu: f64 = mine.iter().map(|r| r.redis_cpu_us).sum();
                (tasks as f64 / seconds, cpu / tasks as f64, mine)
            };
            let (baton_rate, baton_cpu_us, batons) = of(true);
            let (bullmq_rate, bullmq_cpu_us, bulls) = of(false);
            let per_round = batons
                .iter()
                .zip(&bulls)
                .map(|(b, q)| b.rate() / q.rate())
                .collect();
            Summary {
                workload: w.name,
                baton_rate,
                bullmq_rate,
                per_round,
                baton_cpu_us,
                bullmq_cpu_us,
            }
        })
        .collect()
}

/// The ratios table.
pub(super) fn print_summary(summaries: &[Summary]) {
    println!("\n| workload | baton tasks/s | BullMQ jobs/s | baton / BullMQ | per round | Redis CPU per task, baton | BullMQ |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    for s in summaries {
        let rounds: Vec<String> = s.per_round.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "| {} | {:.0} | {:.0} | **{:.2}×** | {} | {:.0} µs | {:.0} µs |",
            s.workload,
            s.baton_rate,
            s.bullmq_rate,
            s.ratio(),
            rounds.join(", "),
            s.baton_cpu_us,
            s.bullmq_cpu_us
        );
    }
}

impl Bench {
    /// The comparison's targets (issue #21), from the summed rounds.
    pub(super) fn bullmq_targets(&mut self, sums: &[Summary]) {
        let (noop, spawn) = (&sums[0], &sums[1]);
        let against = |s: &Summary| {
            format!(
                "{:.2}× ({:.0} against {:.0} tasks/s)",
                s.ratio(),
                s.baton_rate,
                s.bullmq_rate
            )
        };
        self.target(
            "ordered no-op throughput",
            "≥ 1.0× BullMQ (goal 1.5×)",
            against(noop),
            Some(noop.ratio() >= 1.0),
        );
        self.target(
            "spawn-per-task throughput",
            "≥ 4× BullMQ",
            against(spawn),
            Some(spawn.ratio() >= 4.0),
        );
        self.target(
            "Redis CPU per task",
            "≤ BullMQ's",
            format!(
                "no-op {:.0} against {:.0} µs; spawn {:.0} against {:.0} µs",
                noop.baton_cpu_us, noop.bullmq_cpu_us, spawn.baton_cpu_us, spawn.bullmq_cpu_us
            ),
            Some(
                noop.baton_cpu_us <= noop.bullmq_cpu_us
                    && spawn.baton_cpu_us <= spawn.bullmq_cpu_us,
            ),
        );
    }
}

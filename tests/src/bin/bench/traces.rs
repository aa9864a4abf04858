//! What OpenTelemetry traces cost per task (issue 22): the queue alone (`--executor instant`),
//! one worker without an exporter against one exporting every span (hold, task, attempt,
//! commit) to an OTLP/HTTP receiver in this process, in interleaved rounds (who goes first
//! alternates), on one redis-server flushed before each run.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use baton_tests::otlp::Receiver;
use baton_tests::{Counter, Pool};

use super::{check_order, submit_many, wait_stat, worker_opts, Bench, FastDir};

const ROUNDS: usize = 4;
const PLANS: usize = 400;
const TASKS: usize = 10;

/// One run: wall ms per task, the worker's CPU ms per task, and the spans the receiver got
/// (with an exporter).
struct Run {
    ms_per_task: f64,
    cpu_per_task: f64,
    spans: Option<usize>,
}

/// User + system CPU seconds process `pid` used so far (`/proc/PID/stat`), its threads included.
pub(super) fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start with the state.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when it cannot be asked).
    let tick = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here, counting the state as 0.
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / tick.max(1.0)
}

/// One worker × `concurrency` over `PLANS` plans submitted before it starts; timed from its
/// start to the last plan_completed. With `receiver`, it exports to it; its spans are counted
/// after it stops (the stop flushes them).
async fn run(pool: &mut Pool, name: &str, c: u16, receiver: Option<&Receiver>) -> Result<Run> {
    let mut conn = pool.conn().await?;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await?;
    let fast = FastDir::new();
    let mut extra = vec!["--executor", "instant"];
    if let Some(r) = receiver {
        r.clear();
        extra.extend(["--otlp-endpoint", r.base_url.as_str()]);
    }
    let mut opts = worker_opts(pool, name, c, &extra);
    fast.place(&mut opts, name);
    submit_many(pool, "tr", PLANS, TASKS).await?;
    let started = Instant::now();
    let worker = pool.add_worker(&opts)?;
    let done = wait_stat(
        pool,
        Counter::PlansCompleted,
        PLANS as i64,
        Duration::from_secs(600),
    )
    .await?;
    let cpu = cpu_s(pool.workers[worker].proc.child.id());
    check_order(pool, "tr", PLANS, TASKS).await?;
    pool.workers[worker].stop(Duration::from_secs(30));
    let spans = receiver.map(|r| r.spans().iter().filter(|s| s.name == "task").count());
    Ok(Run {
        ms_per_task: (done - started).as_secs_f64() * 1000.0 / (PLANS * TASKS) as f64,
        cpu_per_task: cpu * 1000.0 / (PLANS * TASKS) as f64,
        spans,
    })
}

impl Bench {
    pub(super) async fn traces(&mut self) -> Result<()> {
        let c = self.queue_concurrency;
        println!("\n## Traces: what exporting OpenTelemetry spans costs per task, queue only\n");
        println!("Rounds interleave a worker without an exporter and one exporting to an OTLP/HTTP receiver in this process (who goes first alternates by round; one run before them is not counted): {PLANS} plans × {TASKS} tasks, `--executor instant`, one worker × {c}, every plan submitted before the worker starts, one redis-server flushed before each run.\n");
        println!(
            "| round | exporter | wall per task | worker CPU per task | task spans received |"
        );
        println!("|---|---|---:|---:|---:|");
        let receiver = Receiver::start().await?;
        let mut pool = Pool::start()?;
        // Not counted: the first run on a machine pays for cold caches.
        run(&mut pool, "warmup", c, Some(&receiver)).await?;
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            for with in [round % 2 == 0, round % 2 == 1] {
                let name = format!("t{round}{}", if with { "on" } else { "off" });
                let r = run(&mut pool, &name, c, with.then_some(&receiver)).await?;
                let spans = r
                    .spans
                    .map_or("-".into(), |n| format!("{n} of {}", PLANS * TASKS));
                let label = if with { "OTLP/HTTP" } else { "none" };
                println!(
                    "| {round} | {label} | {:.4} ms | {:.4} ms | {spans} |",
                    r.ms_per_task, r.cpu_per_task
                );
                if with {
                    on.push(r)
                } else {
                    off.push(r)
                }
            }
        }
        let mean = |v: &[Run]| v.iter().map(|r| r.ms_per_task).sum::<f64>() / v.len() as f64;
        let cpu = |v: &[Run]| v.iter().map(|r| r.cpu_per_task).sum::<f64>() / v.len() as f64;
        let (off_ms, on_ms) = (mean(&off), mean(&on));
        let (off_cpu, on_cpu) = (cpu(&off), cpu(&on));
        let diff = on_ms - off_ms;
        let received: usize = on.iter().filter_map(|r| r.spans).sum();
        println!("| mean | none | {off_ms:.4} ms | {off_cpu:.4} ms | |");
        println!(
            "| mean | OTLP/HTTP | {on_ms:.4} ms | {on_cpu:.4} ms | {received} of {} |",
            ROUNDS * PLANS * TASKS
        );
        println!("\nWith an exporter a task costs {diff:+.4} ms of wall time ({:+.1}%) and {:+.4} ms of the worker's CPU (its exporter thread included; the receiver decodes in this process). Without one no OpenTelemetry layer is installed: the spans are the worker's `tracing` spans under the log subscriber (the worker's log filter here is `warn`), as before traces existed. (Wall time from the worker's start to the last plan_completed over the tasks: with {c} plans in flight on 2 cores, the inverse of throughput, so it counts the CPU the exporter's thread takes from the holds, and the receiver's decoding, which runs in this process on the same cores.)", diff / off_ms * 100.0, on_cpu - off_cpu);
        ensure!(received > 0, "the exporter sent no task span");
        self.target(
            "tracing overhead per task (queue only)",
            "under 0.2 ms with an exporter, none without",
            format!("{diff:+.4} ms wall, {:+.4} ms worker CPU with an exporter; no exporter, no layer without", on_cpu - off_cpu),
            Some(diff < 0.2),
        );
        Ok(())
    }
}

//! What OpenTelemetry traces cost per task (issue 22): the queue alone (`--executor instant`),
//! one worker without an exporter against one exporting every span (hold, task, attempt,
//! commit) to an OTLP/HTTP receiver in this process, in interleaved rounds (who goes first
//! alternates), on one redis-server flushed before each run.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use baton_tests::otlp::Receiver;
use baton_tests::{Counter, Pool};

use super::{check_order, submit_many, wait_stat, worker_opts, Bench, FastDir};

const ROUNDS: usize = 3;
const PLANS: usize = 400;
const TASKS: usize = 10;

/// One run: ms per task, and the spans the receiver got (with an exporter).
struct Run {
    ms_per_task: f64,
    spans: Option<usize>,
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
    check_order(pool, "tr", PLANS, TASKS).await?;
    pool.workers[worker].stop(Duration::from_secs(30));
    let spans = receiver.map(|r| r.spans().iter().filter(|s| s.name == "task").count());
    Ok(Run {
        ms_per_task: (done - started).as_secs_f64() * 1000.0 / (PLANS * TASKS) as f64,
        spans,
    })
}

impl Bench {
    pub(super) async fn traces(&mut self) -> Result<()> {
        let c = self.queue_concurrency;
        println!("\n## Traces: what exporting OpenTelemetry spans costs per task, queue only\n");
        println!("Rounds interleave a worker without an exporter and one exporting to an OTLP/HTTP receiver in this process (who goes first alternates by round): {PLANS} plans × {TASKS} tasks, `--executor instant`, one worker × {c}, every plan submitted before the worker starts, one redis-server flushed before each run.\n");
        println!("| round | exporter | wall per task | task spans received |");
        println!("|---|---|---:|---:|");
        let receiver = Receiver::start().await?;
        let mut pool = Pool::start()?;
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            for with in [round % 2 == 0, round % 2 == 1] {
                let name = format!("t{round}{}", if with { "on" } else { "off" });
                let r = run(&mut pool, &name, c, with.then_some(&receiver)).await?;
                let spans = r
                    .spans
                    .map_or("-".into(), |n| format!("{n} of {}", PLANS * TASKS));
                let label = if with { "OTLP/HTTP" } else { "none" };
                println!("| {round} | {label} | {:.4} ms | {spans} |", r.ms_per_task);
                if with {
                    on.push(r)
                } else {
                    off.push(r)
                }
            }
        }
        let mean = |v: &[Run]| v.iter().map(|r| r.ms_per_task).sum::<f64>() / v.len() as f64;
        let (off_ms, on_ms) = (mean(&off), mean(&on));
        let diff = on_ms - off_ms;
        let received: usize = on.iter().filter_map(|r| r.spans).sum();
        println!("| mean | none | {off_ms:.4} ms | |");
        println!(
            "| mean | OTLP/HTTP | {on_ms:.4} ms | {received} of {} |",
            ROUNDS * PLANS * TASKS
        );
        println!("\nWith an exporter a task costs {diff:+.4} ms of wall time ({:+.1}%). Without one no OpenTelemetry layer is installed: the spans are the worker's `tracing` spans under the log subscriber (the worker's log filter here is `warn`), as before traces existed. (Wall time from the worker's start to the last plan_completed over the tasks: with {c} plans in flight on 2 cores, the inverse of throughput, so it counts CPU the exporter's thread takes from the holds.)", diff / off_ms * 100.0);
        ensure!(received > 0, "the exporter sent no task span");
        self.target(
            "tracing overhead per task (queue only)",
            "under 0.2 ms with an exporter, none without",
            format!("{diff:+.4} ms with an exporter; no exporter, no layer without"),
            Some(diff < 0.2),
        );
        Ok(())
    }
}

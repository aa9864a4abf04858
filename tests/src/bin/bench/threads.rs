//! The worker's runtime threads (`--worker-threads N`): the queue section runs baton once more
//! per workload and round with `--threads N`, and the throughput section runs each mode with
//! and without it, interleaved (who goes first alternates by round); this prints the ratios of
//! N threads to the default (one per CPU), with the worker's CPU per task, which is steadier
//! than wall time on a busy machine.

use std::time::{Duration, Instant};

use anyhow::Result;
use baton_tests::*;

use super::bullmq::{Run, WORKLOADS};
use super::{check_order, submit_many, wait_stat, worker_opts, Bench};

/// The queue section's runs of baton, the default against `--threads n`, per workload.
pub(super) fn print_queue(runs: &[Run], n: u16) {
    println!("\n| workload | baton, default threads | baton --threads {n} | {n} / default | per round | worker CPU per task, default | --threads {n} |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    for w in &WORKLOADS {
        let of = |threads: Option<u16>| -> Vec<&Run> {
            runs.iter()
                .filter(|r| r.baton && r.workload == w.name && r.threads == threads)
                .collect()
        };
        let (default, threaded) = (of(None), of(Some(n)));
        let rate = |rs: &[&Run]| {
            rs.iter().map(|r| r.tasks).sum::<usize>() as f64
                / rs.iter().map(|r| r.seconds).sum::<f64>()
        };
        let cpu = |rs: &[&Run]| {
            rs.iter().map(|r| r.worker_cpu_us).sum::<f64>()
                / rs.iter().map(|r| r.tasks).sum::<usize>() as f64
        };
        let rounds: Vec<String> = default
            .iter()
            .zip(&threaded)
            .map(|(d, t)| format!("{:.2}", t.rate() / d.rate()))
            .collect();
        println!(
            "| {} | {:.0} | {:.0} | **{:.2}×** | {} | {:.0} µs | {:.0} µs |",
            w.name,
            rate(&default),
            rate(&threaded),
            rate(&threaded) / rate(&default),
            rounds.join(", "),
            cpu(&default),
            cpu(&threaded),
        );
    }
}

/// One run through the real CLI: `plans` plans of 10 tasks submitted, then two workers × 4 in
/// `mode` (with `--threads` when `threads` is set); the seconds from their start to the last
/// `plan_completed`, and the workers' CPU seconds, every plan's results checked in order.
pub(super) async fn cli_run(mode: &str, plans: usize, threads: Option<u16>) -> Result<(f64, f64)> {
    let mut pool = Pool::start()?;
    submit_many(&pool, mode, plans, 10).await?;
    let started = Instant::now();
    let mut pids = Vec::new();
    for m in ["a", "b"] {
        let mut opts = worker_opts(&pool, m, 4, &["--session-mode", mode]);
        if let Some(n) = threads {
            opts.extra.extend(["--threads".to_owned(), n.to_string()]);
        }
        let w = pool.add_worker(&opts)?;
        pids.push(u32::try_from(pool.workers[w].proc.pid())?);
    }
    let done = wait_stat(
        &pool,
        Counter::PlansCompleted,
        plans as i64,
        Duration::from_secs(1200),
    )
    .await?;
    let cpu: f64 = pids.iter().map(|p| super::traces::cpu_s(*p)).sum();
    check_order(&pool, mode, plans, 10).await?;
    Ok(((done - started).as_secs_f64(), cpu))
}

impl Bench {
    /// The throughput section with `--worker-threads n`: each mode `rounds` times with the
    /// default and with `--threads n`, interleaved, then the ratios.
    pub(super) async fn throughput_threads(&mut self, n: u16) -> Result<()> {
        println!("| round | mode | plans × tasks | threads | wall time | tasks/s | workers' CPU per task |");
        println!("|---|---|---|---|---:|---:|---:|");
        let mut ratios = Vec::new();
        for (mode, plans) in [("warm", self.warm_plans), ("cold", self.cold_plans)] {
            let (mut sums, mut per_round) = ([(0.0, 0.0); 2], Vec::new());
            for round in 1..=self.rounds {
                let order = if round % 2 == 1 {
                    [None, Some(n)]
                } else {
                    [Some(n), None]
                };
                let mut rates = [0.0; 2];
                for threads in order {
                    let (secs, cpu) = cli_run(mode, plans, threads).await?;
                    let tasks = (plans * 10) as f64;
                    let i = usize::from(threads.is_some());
                    (sums[i].0, sums[i].1, rates[i]) =
                        (sums[i].0 + secs, sums[i].1 + cpu, tasks / secs);
                    let label = threads.map_or("default".to_owned(), |n| n.to_string());
                    println!("| {round} | {mode} | {plans} × 10 | {label} | {secs:.1} s | {:.1} | {:.1} ms |", tasks / secs, cpu / tasks * 1000.0);
                }
                per_round.push(format!("{:.2}", rates[1] / rates[0]));
            }
            let tasks = (plans * 10 * self.rounds) as f64;
            ratios.push(format!(
                "| {mode} | {:.1} | {:.1} | **{:.2}×** | {} | {:.1} ms | {:.1} ms |",
                tasks / sums[0].0,
                tasks / sums[1].0,
                sums[0].0 / sums[1].0,
                per_round.join(", "),
                sums[0].1 / tasks * 1000.0,
                sums[1].1 / tasks * 1000.0
            ));
        }
        println!("\n| mode | tasks/s, default threads | --threads {n} | {n} / default | per round | workers' CPU per task, default | --threads {n} |");
        println!("|---|---:|---:|---:|---|---:|---:|");
        for r in ratios {
            println!("{r}");
        }
        println!("\n(Each run: every plan submitted, then 2 worker processes × concurrency 4 started; from their start to the last plan_completed, every plan's results checked in order. Rates summed over the rounds; who goes first alternates by round.)");
        Ok(())
    }
}

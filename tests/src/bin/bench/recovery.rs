//! The recovery section of the benchmark: with the default `--lease` and `--dead-after`, how
//! long after `kill -9` of the worker holding a plan another worker runs the plan's task again.

use std::time::Duration;

use anyhow::{Context, Result};
use baton_core::EventKind;
use baton_tests::*;

use super::{now_ms, subscribe, wait_event, Bench};

const ROUNDS: usize = 3;

impl Bench {
    pub(super) async fn recovery(&mut self) -> Result<()> {
        println!("\n## Recovery: kill -9 of the worker holding a plan, default --lease and --dead-after\n");
        println!("| round | kill → task running again on the other worker |");
        println!("|---|---:|");
        let mut times = Vec::new();
        for round in 1..=ROUNDS {
            let mut pool = Pool::start()?;
            for name in ["a", "b"] {
                let mut opts = pool.machine(name, 1);
                // The defaults are what is measured: drop the test harness's shorter ones.
                opts.extra.clear();
                opts.log_filter = "warn".into();
                pool.add_worker(&opts)?;
            }
            let mut events = subscribe(&pool).await?;
            let prompts: Vec<String> = (1..=4)
                .map(|k| format!("Step {k}, slowly. [[standin:sleep 4000]]"))
                .collect();
            let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
            pool.submit(&doc("recover").prompts(&refs).json()).await?;
            let (_, started) = wait_event(
                &mut events,
                "recover",
                &[EventKind::TaskStarted],
                Duration::from_secs(60),
            )
            .await?;
            let holder = started.worker.context("task_started names its worker")?;
            let victim = pool
                .workers
                .iter()
                .position(|w| holder.as_str().contains(&format!("-{}-", w.proc.pid())))
                .context("the holder is one of the pool's workers")?;
            // Into the run: the task is well under way when its worker dies.
            tokio::time::sleep(Duration::from_secs(1)).await;
            pool.workers[victim].proc.signal(libc::SIGKILL);
            let killed_at = now_ms();
            let (at, again) = wait_event(
                &mut events,
                "recover",
                &[EventKind::TaskStarted],
                Duration::from_secs(120),
            )
            .await?;
            anyhow::ensure!(
                again.worker.as_ref() != Some(&holder),
                "the dead worker started a task"
            );
            let took = (at - killed_at) / 1000.0;
            println!("| {round} | {took:.1} s |");
            times.push(took);
        }
        let worst = times.iter().copied().fold(0.0, f64::max);
        println!("\n(Defaults: --lease 10s, renewed every 3.3 s; heartbeats every second; --dead-after 12s. The dead worker's last heartbeat was up to a second before the kill; a live worker's next heartbeat finds it silent and hands its plan back to the front of the ready list, where the idle worker's blocking pop takes it at once. docs/RELIABILITY.md says why these defaults are safe on a loaded machine.)");
        self.target(
            "kill -9 → plan running on another worker",
            "< 15 s",
            format!("worst of {ROUNDS}: {worst:.1} s"),
            Some(worst < 15.0),
        );
        Ok(())
    }
}

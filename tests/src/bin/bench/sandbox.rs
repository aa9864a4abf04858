//! The sandbox section of the benchmark: what the box and the model gateway add to a CLI run,
//! with the real CLI. The same plans run through workers with `--sandbox off` and with the
//! default (`auto`), interleaved round by round; each task's CLI run time comes from the
//! worker's own stamps (`run_started_ms` → `run_ended_ms` in `task_succeeded`). In cold mode
//! every task is a CLI start (the box is made each time); in warm mode the first task of a hold
//! starts the process (in its box) and the later ones are turns of it, which cross the relay
//! and the gateway.

use std::time::Duration;

use anyhow::Result;
use baton_core::EventKind;
use baton_tests::*;
use serde_json::{json, Value};

use super::{percentile, subscribe, wait_event, worker_opts, Bench};

const ROUNDS: usize = 3;
const TASKS: usize = 6;

/// Runs one plan of `TASKS` tasks through a fresh worker; returns each task's CLI run time (ms).
async fn cli_times(pool: &mut Pool, name: &str, args: &[&str]) -> Result<Vec<f64>> {
    let w = pool.add_worker(&worker_opts(pool, name, 1, args))?;
    let mut rx = subscribe(pool).await?;
    let tasks: Vec<Value> = (1..=TASKS)
        .map(|k| json!({"id": format!("t{k}"), "prompt": format!("Step {k} of {name}. [[standin:brief]]")}))
        .collect();
    pool.submit(&json!({"plan_id": name, "tasks": tasks}).to_string())
        .await?;
    let mut times = Vec::new();
    loop {
        let (_, ev) = wait_event(
            &mut rx,
            name,
            &[EventKind::TaskSucceeded, EventKind::PlanCompleted],
            Duration::from_secs(300),
        )
        .await?;
        if ev.kind == EventKind::PlanCompleted {
            break;
        }
        let f = |k: &str| ev.fields.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        times.push(f("run_ended_ms") - f("run_started_ms"));
    }
    pool.workers[w].stop(Duration::from_secs(20));
    Ok(times)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 0.5)
}

impl Bench {
    pub(super) async fn sandbox(&mut self) -> Result<()> {
        println!("\n## Sandbox: what the box and the model gateway add to a CLI run\n");
        println!(
            "{ROUNDS} rounds, each a {TASKS}-task plan per mode, `--sandbox off` then `auto`, the real CLI against the stand-in; CLI run time per task from the worker's stamps (median).\n"
        );
        println!(
            "| round | cold start, off | cold start, boxed | warm turn, off | warm turn, boxed |"
        );
        println!("|---|---:|---:|---:|---:|");
        let mut pool = Pool::start()?;
        let (mut cold_off, mut cold_on, mut warm_off, mut warm_on) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            let mut row = Vec::new();
            for mode in ["cold", "warm"] {
                for sandbox in ["off", "auto"] {
                    let name = format!("sbx-{mode}-{sandbox}-{round}");
                    let t = cli_times(
                        &mut pool,
                        &name,
                        &["--session-mode", mode, "--sandbox", sandbox],
                    )
                    .await?;
                    // Warm: the first task starts the process; the others are turns.
                    let mut t: Vec<f64> = if mode == "warm" { t[1..].to_vec() } else { t };
                    let m = median(&mut t);
                    row.push(m);
                    match (mode, sandbox) {
                        ("cold", "off") => cold_off.extend(t),
                        ("cold", _) => cold_on.extend(t),
                        ("warm", "off") => warm_off.extend(t),
                        _ => warm_on.extend(t),
                    }
                }
            }
            println!(
                "| {round} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
                row[0], row[1], row[2], row[3]
            );
        }
        let cold = median(&mut cold_on) - median(&mut cold_off);
        let warm = median(&mut warm_on) - median(&mut warm_off);
        println!(
            "\nAdded by the box and the gateway (median of all rounds, boxed minus off): {cold:.1} ms per cold start, {warm:.2} ms per warm turn. Ratios in this run: cold {:.3}x, warm {:.3}x.",
            median(&mut cold_on) / median(&mut cold_off),
            median(&mut warm_on) / median(&mut warm_off)
        );
        self.target(
            "sandbox + gateway, added to a cold start",
            "< 50 ms",
            format!("{cold:.1} ms"),
            Some(cold < 50.0),
        );
        self.target(
            "sandbox + gateway, added to a warm turn",
            "< 2 ms",
            format!("{warm:.2} ms"),
            Some(warm < 2.0),
        );
        Ok(())
    }
}

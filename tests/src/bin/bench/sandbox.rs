//! The sandbox section of the benchmark: what the box and the model gateway add to a CLI run,
//! with the real CLI. The same plans run through workers with `--sandbox off` and with the
//! default (`auto`), interleaved round by round; each task's CLI run time comes from the
//! worker's own stamps (`run_started_ms` → `run_ended_ms` in `task_succeeded`). In cold mode
//! every task is a CLI start (the box is made each time); in warm mode the first task of a hold
//! starts the process (in its box) and the later ones are turns of it, which cross the relay
//! and the gateway. Both arms go through the model gateway (it is always there), so its own cost
//! is measured apart: the same requests to the stand-in directly and through a gateway.

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
        if ev.kind() == EventKind::PlanCompleted {
            break;
        }
        if let baton_core::event::EventBody::TaskSucceeded(s) = &ev.body {
            times.push(s.run_ended_ms - s.run_started_ms);
        }
    }
    pool.workers[w].stop(Duration::from_secs(20));
    Ok(times)
}

/// Times `n` requests like the CLI's (a 100 KB body, a streamed answer) to the stand-in, in
/// turn directly and through a model gateway in this process; returns the medians (ms).
async fn gateway_cost(pool: &Pool, n: usize) -> Result<(f64, f64)> {
    use baton_worker::gateway::{Gateway, Upstream};
    let gateway = Gateway::start(
        Upstream::with_api_key(&pool.standin.base_url(), "bench-key"),
        &[] as &[&str],
    )
    .await?;
    let grant = gateway.grant();
    let client = reqwest::Client::new();
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": true,
        "messages": [{"role": "user", "content": format!("Gateway probe. [[standin:brief]] {}", "x".repeat(100_000))}],
    })
    .to_string();
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for i in 0..n * 2 {
        let (base, key, into) = if i % 2 == 0 {
            (pool.standin.base_url(), "bench-key", &mut direct)
        } else {
            (
                gateway.loopback_url().to_owned(),
                grant.token(),
                &mut through,
            )
        };
        let t = std::time::Instant::now();
        let resp = client
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .body(body.clone())
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "probe answered {}",
            resp.status()
        );
        let _ = resp.bytes().await?;
        into.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((median(&mut direct), median(&mut through)))
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
        let boxed_cold = median(&mut cold_on) - median(&mut cold_off);
        let (direct, through) = gateway_cost(&pool, 200).await?;
        let per_request = through - direct;
        println!(
            "\nThe model gateway alone (both arms above go through it): 200 requests like the CLI's (100 KB, streamed answer), alternating, to the stand-in directly {direct:.2} ms and through the gateway {through:.2} ms (median): {per_request:.2} ms per request, {:.3}x.",
            through / direct
        );
        // Each task here is one model request: the box (its start, in cold mode; its relay) and
        // the gateway's forwarding.
        let cold = boxed_cold + per_request;
        let warm = median(&mut warm_on) - median(&mut warm_off) + per_request;
        println!(
            "\nAdded per task (median of all rounds): per cold start the box {boxed_cold:.1} ms (boxed minus off) plus the gateway {per_request:.2} ms = {cold:.1} ms; per warm turn (one model request) the box's relay {:.2} ms plus the gateway {per_request:.2} ms = {warm:.2} ms. Ratios of the runs in this table: cold {:.3}x, warm {:.3}x.",
            median(&mut warm_on) - median(&mut warm_off),
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

//! The dashboard section of the benchmark: how long `baton dashboard` takes to answer each page
//! with 1,000 plans in Redis (run through a queue-only worker, so each has tasks, results and
//! events; and one more through the real CLI for a conversation to render), over loopback HTTP.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{percentile, submit_many, wait_stat, worker_opts, Bench};
use baton_tests::browser::Browser;
use baton_tests::*;

const PLANS: usize = 1000;
const TASKS: usize = 5;
const ROUNDS: usize = 40;
/// Tasks of the one plan run through the real CLI, whose conversation the plan page renders.
const CONVERSATION_TASKS: usize = 20;

/// One `GET` over a fresh connection (as a browser's first visit); returns the time to the whole
/// body and the body's size.
async fn get(base: &str, path: &str) -> Result<(Duration, usize)> {
    let host = base.trim_start_matches("http://");
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 200") {
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        bail!(
            "GET {path}: {}\n{}",
            text.lines().next().unwrap_or("no answer"),
            body.chars().take(2000).collect::<String>()
        );
    }
    let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    Ok((took, body))
}

const BROWSER_ROUNDS: usize = 10;

struct BrowserTimes {
    load_p50: f64,
    load_max: f64,
    first_byte_p50: f64,
}

/// Loads `path` in headless Chromium `BROWSER_ROUNDS` times and reads the navigation timing.
async fn in_browser(base: &str, path: &str) -> Result<BrowserTimes> {
    let browser = Browser::start().await?;
    let url = format!("{base}{path}");
    browser.client.goto(&url).await?;
    let (mut load, mut first_byte) = (Vec::new(), Vec::new());
    for _ in 0..BROWSER_ROUNDS {
        browser.client.goto(&url).await?;
        let timing = browser
            .client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; \
                 return [n.loadEventEnd - n.startTime, n.responseStart - n.startTime];",
                vec![],
            )
            .await?;
        let get = |i: usize| timing[i].as_f64().unwrap_or(f64::NAN);
        load.push(get(0));
        first_byte.push(get(1));
    }
    browser.close().await?;
    load.sort_by(f64::total_cmp);
    first_byte.sort_by(f64::total_cmp);
    Ok(BrowserTimes {
        load_p50: percentile(&load, 0.5),
        load_max: load.last().copied().unwrap_or(f64::NAN),
        first_byte_p50: percentile(&first_byte, 0.5),
    })
}

impl Bench {
    pub(super) async fn dashboard(&mut self) -> Result<()> {
        println!(
            "\n## Dashboard: {PLANS} plans × {TASKS} tasks in Redis, each page {ROUNDS} times\n"
        );
        let mut pool = Pool::start()?;
        submit_many(&pool, "d", PLANS, TASKS).await?;
        for i in 0..20 {
            pool.submit(&format!("{{\"tasks\": [{{\"id\": \"bad-{i}\"}}]}}"))
                .await?;
        }
        pool.add_worker(&worker_opts(&pool, "a", 8, &["--executor", "instant"]))?;
        wait_stat(
            &pool,
            Counter::PlansCompleted,
            PLANS as i64,
            Duration::from_secs(300),
        )
        .await?;
        pool.workers[0].stop(Duration::from_secs(30));
        // One plan through the real CLI, for a page with a conversation to render.
        let mut opts = pool.machine("b", 1);
        opts.log_filter = "warn".into();
        pool.add_worker(&opts)?;
        let prompts: Vec<String> = (1..=CONVERSATION_TASKS)
            .map(|k| format!("Step {k}.\nFile: step-{k}.txt\n```\nline {k}\n```\n"))
            .collect();
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        pool.submit(&doc("conversation").prompts(&refs).json())
            .await?;
        pool.wait_done(
            &plan_id("conversation"),
            CONVERSATION_TASKS as u64,
            Duration::from_secs(300),
        )
        .await?;
        let (_dashboard, base) = pool.start_dashboard(None)?;

        println!("| page | what it shows | bytes | p50 | p99 | max |");
        println!("|---|---|---:|---:|---:|---:|");
        let pages = [
            ("/", "queues, workers, the last hour's chart"),
            ("/plans", "all 1,000 plans"),
            ("/plans?state=completed", "filtered by state"),
            ("/plans/d-500", "one plan: tasks and events"),
            (
                "/plans/conversation",
                "a 20-task plan run by the CLI, with its conversation",
            ),
            ("/dead", "dead letters"),
        ];
        let mut plans_p99 = f64::NAN;
        for (path, what) in pages {
            get(&base, path)
                .await
                .with_context(|| format!("warm-up {path}"))?;
            let mut times = Vec::with_capacity(ROUNDS);
            let mut bytes = 0;
            for _ in 0..ROUNDS {
                let (took, size) = get(&base, path).await?;
                times.push(took.as_secs_f64() * 1000.0);
                bytes = size;
            }
            times.sort_by(f64::total_cmp);
            let p99 = percentile(&times, 0.99);
            if path == "/plans" {
                plans_p99 = p99;
            }
            println!(
                "| `{path}` | {what} | {bytes} | {:.1} ms | {p99:.1} ms | {:.1} ms |",
                percentile(&times, 0.5),
                times.last().copied().unwrap_or(f64::NAN)
            );
        }
        let browser = in_browser(&base, "/plans").await?;
        println!("\n(Each request on a new loopback connection, timed from connect to the last byte of the body: the Redis reads, the rendering and the transfer. The server renders the whole page; the browser's layout is not in this table but in the line below.)");
        println!("\nIn headless Chromium, `/plans` loaded {BROWSER_ROUNDS} times (navigation timing, from the request to the end of the load event, layout and the live script included): p50 {:.0} ms, max {:.0} ms; first byte p50 {:.0} ms.", browser.load_p50, browser.load_max, browser.first_byte_p50);
        self.target(
            "dashboard page with 1,000 plans",
            "< 300 ms",
            format!(
                "served p99 {plans_p99:.1} ms; in Chromium max {:.0} ms",
                browser.load_max
            ),
            Some(plans_p99 < 300.0 && browser.load_max < 300.0),
        );
        Ok(())
    }
}

//! Operating a pool: the workers' Prometheus metrics scraped while plans run, their logs as JSON
//! lines, the progress bar on a terminal, and the plan index keeping to plans that exist.

use std::time::Duration;

use baton_tests::*;

/// `GET /metrics` of a worker, parsed as Prometheus text.
fn scrape(addr: &str) -> anyhow::Result<(String, prometheus_parse::Scrape)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let parsed = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))?;
    Ok((body, parsed))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n.min(tail.len())]);
        rest = tail.get(n + 2..).unwrap_or("");
    }
    out
}

/// The value of `name` with label `key=value` (0 when absent).
fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Counters move as tasks succeed, retry and fail for good; the exposition parses; no label
/// value is a plan id; the worker's logs are JSON lines with `BATON_LOG_FORMAT=json`.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_the_pool_does() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut opts = pool.machine("a", 1);
    opts.extra.extend([
        "--metrics-addr".into(),
        addr.clone(),
        "--silence-timeout".into(),
        "3s".into(),
    ]);
    opts.env.push(("BATON_LOG_FORMAT".into(), "json".into()));
    let i = pool.add_worker(&opts)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (_, before) = loop {
        match scrape(&addr) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(value(&before, "baton_tasks_total", None), 0.0);
    assert_eq!(value(&before, "baton_worker_info", None), 1.0);

    pool.submit(&doc("m-ok").prompts(&["One.", "Two."]).json())
        .await?;
    pool.submit(
        &doc("m-retry")
            .prompts(&["Hang once. [[standin:hang times=1]]"])
            .json(),
    )
    .await?;
    pool.standin
        .control(serde_json::json!({"fail_status": 400, "match": "M-BAD-REQUEST"}))?;
    pool.submit(&doc("m-bad").prompts(&["Refused M-BAD-REQUEST."]).json())
        .await?;
    for plan in ["m-ok", "m-retry"] {
        pool.wait_state(
            &plan_id(plan),
            &[PlanState::Completed],
            Duration::from_secs(120),
        )
        .await?;
    }
    pool.wait_state(
        &plan_id("m-bad"),
        &[PlanState::Failed],
        Duration::from_secs(120),
    )
    .await?;
    // The queue gauges are sampled every few seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (text, after) = scrape(&addr)?;
    let outcome = |o| value(&after, "baton_tasks_total", Some(("outcome", o)));
    assert_eq!(outcome("succeeded"), 3.0, "{text}");
    assert!(outcome("retried") >= 1.0, "{text}");
    assert!(outcome("failed") >= 2.0, "the hang and the 400: {text}");
    assert_eq!(outcome("dead_lettered"), 1.0, "{text}");
    // m-ok and m-bad start one session each; m-retry's one task starts a new one per attempt
    // (a first task has no committed session to resume).
    assert_eq!(
        value(&after, "baton_sessions_total", Some(("event", "created"))),
        4.0
    );
    assert!(value(&after, "baton_sessions_total", Some(("event", "resumed"))) >= 1.0);
    assert!(value(&after, "baton_cost_usd_total", None) > 0.0);
    assert!(value(&after, "baton_tokens_total", Some(("kind", "input"))) > 0.0);
    assert_eq!(
        value(&after, "baton_queue_length", Some(("list", "dead"))),
        1.0
    );
    assert_eq!(value(&after, "baton_plans_held", None), 0.0);
    assert!(
        text.contains("baton_task_duration_seconds_bucket"),
        "the duration histogram: {text}"
    );
    for s in &after.samples {
        for v in s.labels.values() {
            assert!(!v.starts_with("m-"), "a plan id as a label value: {s:?}");
        }
    }
    let log = pool.workers[i].log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| anyhow::anyhow!("not JSON: {l}: {e}"))?;
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
    }
    Ok(())
}

/// `baton enqueue --wait` draws a progress bar in a terminal (a pseudo-terminal made by
/// `script`), and prints plain event lines when its output is piped.
#[tokio::test(flavor = "multi_thread")]
async fn enqueue_wait_draws_a_bar_on_a_terminal_and_lines_in_a_pipe() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let plan_file = pool.dir.path().join("bar.json");
    std::fs::write(
        &plan_file,
        doc("bar")
            .prompts(&["One.", "Two [[standin:sleep 1500]]"])
            .json(),
    )?;
    let command = format!(
        "{} --redis-url {} enqueue --wait {}",
        bin("baton").display(),
        pool.redis.url(),
        plan_file.display()
    );
    let tty = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output()?;
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{shown}");
    assert!(
        shown.contains("2/2 tasks") && shown.contains("running") && shown.contains('$'),
        "the bar: {shown}"
    );
    assert!(
        shown.contains("plan_completed"),
        "event lines above the bar: {shown}"
    );

    std::fs::write(&plan_file, doc("piped").prompts(&["One."]).json())?;
    let piped = baton(
        &pool.redis,
        &["enqueue", "--wait", &plan_file.display().to_string()],
        None,
    )?;
    let text = String::from_utf8_lossy(&piped.stdout);
    assert!(piped.status.success());
    assert!(
        !text.contains("tasks ·") && !text.contains('\r'),
        "no bar in a pipe: {text}"
    );
    assert!(text.lines().any(|l| l.contains("task_succeeded")), "{text}");
    Ok(())
}

/// The dashboard lists plans from the plan index; plans past their retention leave it, so it does
/// not grow for ever, and a plan alive stays listed.
#[tokio::test(flavor = "multi_thread")]
async fn expired_plans_leave_the_plan_index() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut opts = pool.machine("a", 1);
    // A beat a second (a third of the lease), and plans kept 4 s after their last use.
    opts.extra = ["--lease", "3s", "--retention", "4s"]
        .map(String::from)
        .to_vec();
    pool.add_worker(&opts)?;
    // An entry baton did not write, scored +inf: never "recent", so it must go too.
    let mut c = pool.conn().await?;
    let _: i64 = redis::AsyncCommands::zadd(&mut c, pool.keys.plans(), "stray", "+inf").await?;
    let listed = |conn: baton_connect::Conn| {
        let index = pool.keys.plans();
        async move {
            let mut conn = conn;
            let ids: Vec<String> = redis::AsyncCommands::zrange(&mut conn, index, 0, -1).await?;
            anyhow::Ok(ids)
        }
    };
    pool.submit(&doc("short").prompts(&["One."]).json()).await?;
    pool.wait_state(
        &plan_id("short"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    // (The stray entry may be gone already: nothing keeps it.)
    let ids = listed(pool.conn().await?).await?;
    assert!(ids.iter().any(|p| p == "short"), "{ids:?}");

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ids = listed(pool.conn().await?).await?;
        if ids.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired plans still listed: {ids:?}; plan hash: {:?}\n{}",
            pool.state(&plan_id("short")).await?,
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pool.state(&plan_id("short")).await?, None, "it had expired");
    Ok(())
}

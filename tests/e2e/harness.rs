//! The worker's own behaviours, on one worker run in-process (`baton_worker::testing`) against
//! a real `redis-server`, with scripted engines instead of the CLI: the lease keeper (renewed
//! through a long run, lost to another holder, run out during an outage), the reconnecting
//! blocking pops, the pool's counters during a long hold, retries and failures as the typed
//! attempt records say, the dispatcher's pause on a rate limit, and webhooks at shutdown.
//! Each takes about as long as the behaviour itself.

mod claims;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use baton_core::event::EventKind;
use baton_core::{Counter, PlanId, PlanState};
use baton_tests::body;
use baton_tests::docs::doc;
use baton_tests::inproc::InProc;
use baton_tests::redis_server::{redis_cli, Redis};
use baton_worker::testing::Step;
use redis::AsyncCommands;

fn id(s: &str) -> PlanId {
    s.parse().expect("a plan id")
}

fn slow(d: Duration, answer: &str) -> Step {
    Step::Slow(d, Box::new(Step::Answer(answer.into())))
}

/// Waits until `check` holds, polling.
async fn until<F, Fut>(what: &str, within: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + within;
    while !check().await? {
        ensure!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A run three leases long: the keeper renews the lease all along, and the result is committed
/// once, at the first attempt.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_longer_than_the_lease_keeps_it_and_commits_once() -> Result<()> {
    let mut pool = InProc::start_with(|o| o.lease = Duration::from_secs(1))?;
    let plan = id("long-run");
    pool.worker()
        .script("long-run", [slow(Duration::from_secs(3), "done")]);
    pool.submit(&doc("long-run").prompts(&["Slow."]).json())
        .await?;
    let ev = pool
        .wait_event(&plan, EventKind::TaskSucceeded, 1, Duration::from_secs(15))
        .await?;
    assert_eq!(body!(ev, TaskSucceeded).attempts, 1);
    assert_eq!(pool.committed(&plan).await?, ["t1"]);
    let runs = pool.worker().runs("long-run");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(!runs[0].stopped);
    pool.drain().await
}

/// Another holder takes the lock while a run hangs: the keeper finds out at its next renewal,
/// the run is stopped, and the stale holder writes nothing: no result, no event of the task's
/// end, and the lock stays the new holder's.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_whose_lease_is_taken_stops_its_run_and_writes_nothing() -> Result<()> {
    let mut pool = InProc::start_with(|o| o.lease = Duration::from_secs(1))?;
    let plan = id("taken");
    pool.worker().script("taken", [Step::Hang]);
    pool.submit(&doc("taken").prompts(&["Hang."]).json())
        .await?;
    pool.wait_event(&plan, EventKind::TaskStarted, 1, Duration::from_secs(10))
        .await?;
    let mut c = pool.conn().await?;
    let intruder = "intruder/token";
    let () = c.set_ex(pool.keys.lock(&plan), intruder, 60).await?;
    let worker = pool.worker();
    until("the run is stopped", Duration::from_secs(5), || async {
        Ok(worker.runs("taken").first().is_some_and(|r| r.stopped))
    })
    .await?;
    // The plan went back to the front and was dropped by the next claim (busy): nothing of it
    // is left on any list of this worker.
    let keys = pool.keys.clone();
    until("the plan is off every list", Duration::from_secs(5), || {
        let mut c = c.clone();
        let keys = keys.clone();
        async move {
            let ready: i64 = c.llen(keys.ready()).await?;
            let pattern = keys.ready().replace(":ready", ":inflight:*");
            let inflight: Vec<String> = c.keys(pattern).await?;
            let mut held = 0i64;
            for k in inflight {
                held += c.llen::<_, i64>(k).await?;
            }
            Ok(ready == 0 && held == 0)
        }
    })
    .await?;
    let lock: Option<String> = c.get(pool.keys.lock(&plan)).await?;
    assert_eq!(
        lock.as_deref(),
        Some(intruder),
        "the stale holder released nothing"
    );
    assert!(pool.committed(&plan).await?.is_empty());
    let ends = pool.events(&plan).await?;
    assert!(
        !ends.iter().any(|e| matches!(
            e.kind(),
            EventKind::TaskSucceeded | EventKind::TaskFailed | EventKind::TaskRetrying
        )),
        "{ends:?}"
    );
    assert_eq!(pool.worker().runs("taken").len(), 1, "not run again");
    assert_eq!(pool.state(&plan).await?, Some(PlanState::Running));
    pool.drain().await
}

/// Redis away for longer than a lease while a task runs: the keeper gives the lease up when it
/// would have expired and stops the run (its result could not be committed under the expired
/// lease), the task runs again once Redis is back, and the plan finishes with every task
/// committed once, in order. (Moved here from the end-to-end `reliability` tests.)
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_longer_than_the_lease_still_finishes_the_plan() -> Result<()> {
    let redis = Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"])?;
    let mut pool = InProc::start_on(redis, |o| o.lease = Duration::from_secs(1))?;
    let plan = id("long-outage");
    pool.worker()
        .script("long-outage", [slow(Duration::from_secs(3), "first")]);
    pool.submit(&doc("long-outage").prompts(&["Slow.", "Then this."]).json())
        .await?;
    pool.wait_event(&plan, EventKind::TaskStarted, 1, Duration::from_secs(10))
        .await?;
    if let Some(p) = pool.redis.proc.as_mut() {
        p.signal(libc::SIGTERM);
        p.wait_exit(Duration::from_secs(10));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    pool.redis.restart_keeping_data()?;
    pool.wait_state(&plan, PlanState::Completed, Duration::from_secs(30))
        .await?;
    assert_eq!(
        pool.committed(&plan).await?,
        ["t1", "t2"],
        "each task once, in order"
    );
    let runs = pool.worker().runs("long-outage");
    assert!(
        runs[0].stopped,
        "the run under the lost lease was stopped: {runs:?}"
    );
    assert_eq!(runs.len(), 3, "t1 twice, t2 once: {runs:?}");
    pool.drain().await
}

/// Every connection of the worker's dropped at once (as a proxy or a failover does): the
/// blocking pops of ingest and of the claims reconnect, and the next plan runs.
#[tokio::test(flavor = "multi_thread")]
async fn blocking_pops_reconnect_after_their_connections_drop() -> Result<()> {
    let mut pool = InProc::start()?;
    pool.submit(&doc("before").prompts(&["One."]).json())
        .await?;
    pool.wait_state(&id("before"), PlanState::Completed, Duration::from_secs(10))
        .await?;
    let killed = redis_cli(pool.redis.port, &["CLIENT", "KILL", "TYPE", "normal"])?;
    ensure!(
        killed.trim().parse::<u32>().unwrap_or(0) >= 2,
        "killed {killed}"
    );
    pool.submit(&doc("after").prompts(&["Two."]).json()).await?;
    pool.wait_state(&id("after"), PlanState::Completed, Duration::from_secs(15))
        .await?;
    pool.drain().await
}

/// A long hold's counts reach the pool's counters within about a second of a commit (the
/// plan's totals by transfer), not only when the plan is handed back.
#[tokio::test(flavor = "multi_thread")]
async fn the_pools_counters_follow_a_long_hold_within_a_second() -> Result<()> {
    let mut pool = InProc::start()?;
    let plan = id("tally");
    let each = Duration::from_millis(1200);
    pool.worker()
        .script("tally", [slow(each, "a"), slow(each, "b"), slow(each, "c")]);
    pool.submit(&doc("tally").prompts(&["A.", "B.", "C."]).json())
        .await?;
    pool.wait_event(&plan, EventKind::TaskSucceeded, 1, Duration::from_secs(10))
        .await?;
    let seen = Instant::now();
    until(
        "the pool counts the first task",
        Duration::from_secs(1),
        || async { Ok(pool.stat(Counter::TasksSucceeded).await? >= 1) },
    )
    .await?;
    assert!(seen.elapsed() < Duration::from_secs(1));
    let events = pool.events(&plan).await?;
    let done = events
        .iter()
        .filter(|e| e.kind() == EventKind::TaskSucceeded)
        .count();
    assert!(
        done < 3,
        "counted while the hold still runs, not at the hand-back"
    );
    pool.wait_state(&plan, PlanState::Completed, Duration::from_secs(10))
        .await?;
    until(
        "the pool counts every task",
        Duration::from_secs(2),
        || async { Ok(pool.stat(Counter::TasksSucceeded).await? == 3) },
    )
    .await?;
    pool.drain().await
}

/// A passing failure is retried after a backoff (`task_retrying` with the delay and the next
/// attempt), and the task's success says which attempt it was; a request refused for good
/// fails the plan at once, `task_failed` and the dead letter listing each attempt's failure.
#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_or_fail_the_plan_as_their_decision_says() -> Result<()> {
    let mut pool = InProc::start()?;
    let (flaky, refused) = (id("flaky"), id("refused"));
    pool.worker()
        .script("flaky", [Step::ApiError(500), Step::Answer("fine".into())]);
    pool.worker().script("refused", [Step::ApiError(401)]);
    pool.submit(&doc("flaky").prompts(&["Try."]).json()).await?;
    pool.submit(&doc("refused").prompts(&["No."]).json())
        .await?;
    let ev = pool
        .wait_event(&flaky, EventKind::TaskRetrying, 1, Duration::from_secs(10))
        .await?;
    let retrying = body!(ev, TaskRetrying);
    assert_eq!(retrying.attempt, 2);
    assert!(retrying.delay_ms > 0, "a backoff: {retrying:?}");
    assert!(retrying.reason.contains("500"), "{retrying:?}");
    let ev = pool
        .wait_event(&flaky, EventKind::TaskSucceeded, 1, Duration::from_secs(10))
        .await?;
    assert_eq!(body!(ev, TaskSucceeded).attempts, 2);

    pool.wait_state(&refused, PlanState::Failed, Duration::from_secs(10))
        .await?;
    let ev = pool
        .wait_event(&refused, EventKind::TaskFailed, 1, Duration::from_secs(5))
        .await?;
    let failed = body!(ev, TaskFailed);
    assert_eq!(failed.attempts.len(), 1, "{failed:?}");
    assert!(
        failed.attempts[0].starts_with("attempt 1: API error 401"),
        "{failed:?}"
    );
    assert_eq!(pool.worker().runs("refused").len(), 1, "not retried");
    pool.drain().await
}

/// The run's progress reaches the plan's events through the hold, and a rate limit with a reset
/// time pauses the whole pool (`pool_paused`, the pause key) until then.
#[tokio::test(flavor = "multi_thread")]
async fn progress_is_published_and_a_rate_limit_pauses_the_pool() -> Result<()> {
    let mut pool = InProc::start()?;
    let plan = id("limited");
    let step = Step::ToolUse(
        "notes.md".into(),
        Box::new(Step::ApiRetry(
            429,
            30_000,
            Box::new(Step::Answer("ok".into())),
        )),
    );
    pool.worker().script("limited", [step]);
    pool.submit(&doc("limited").prompts(&["Write."]).json())
        .await?;
    pool.wait_state(&plan, PlanState::Completed, Duration::from_secs(10))
        .await?;
    let events = pool.events(&plan).await?;
    let kinds: Vec<_> = events.iter().map(|e| e.kind()).collect();
    let at = |k| kinds.iter().position(|x| *x == k);
    let (started, progress, paused, succeeded) = (
        at(EventKind::TaskStarted),
        at(EventKind::TaskProgress),
        at(EventKind::PoolPaused),
        at(EventKind::TaskSucceeded),
    );
    ensure!(
        started < progress && progress < paused && paused < succeeded && started.is_some(),
        "in order: {kinds:?}"
    );
    let mut c = pool.conn().await?;
    let pause: Option<String> = c.get(pool.keys.pause()).await?;
    assert!(
        pause.is_some_and(|p| p.contains("429")),
        "the pool is paused"
    );
    pool.drain().await
}

/// A webhook delivery still under way when the worker shuts down gets a bounded grace, then is
/// recorded as the plan's `webhook_failed` ("the worker shut down"), never dropped silently.
#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_undelivered_at_shutdown_is_recorded_as_failed() -> Result<()> {
    // A receiver that takes the connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let receiver = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            let _ = seen_tx.send(());
            held.push(sock);
        }
    });
    let mut pool = InProc::start_with(|o| {
        o.webhook_allow = vec!["127.0.0.1".into()];
        o.webhook_secret = Some("s3cret".into());
    })?;
    let plan = id("hooked");
    let url = format!("http://127.0.0.1:{port}/hook");
    pool.submit(
        &doc("hooked")
            .prompts(&["Go."])
            .options(serde_json::json!({"notify": {"url": url, "events": ["plan_completed"]}}))
            .json(),
    )
    .await?;
    pool.wait_state(&plan, PlanState::Completed, Duration::from_secs(10))
        .await?;
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the receiver was never called"))?;
    let t0 = Instant::now();
    pool.drain().await?;
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the grace is bounded"
    );
    let events = pool.events(&plan).await?;
    let failed = events
        .iter()
        .find(|e| e.kind() == EventKind::WebhookFailed)
        .ok_or_else(|| anyhow::anyhow!("no webhook_failed: {events:?}"))?;
    let failed = body!(failed, WebhookFailed);
    assert_eq!(failed.event, EventKind::PlanCompleted);
    assert!(failed.reason.contains("shut down"), "{failed:?}");
    receiver.abort();
    Ok(())
}

/// A plan paused while its last task runs completes when that task commits: there is nothing
/// left to hold (it used to stay paused, and a resume queued a plan no claim could run).
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_paused_during_its_last_task_completes() -> Result<()> {
    let mut pool = InProc::start()?;
    let plan = id("last-paused");
    pool.worker().script(
        "last-paused",
        [
            Step::Answer("one".into()),
            slow(Duration::from_millis(1500), "two"),
        ],
    );
    pool.submit(&doc("last-paused").prompts(&["One.", "Two."]).json())
        .await?;
    pool.wait_event(&plan, EventKind::TaskStarted, 2, Duration::from_secs(15))
        .await?;
    let url = pool.redis.url();
    let out = baton_tests::baton_at(&url, &["pause", "last-paused"], None)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pool.wait_state(&plan, PlanState::Completed, Duration::from_secs(15))
        .await?;
    assert_eq!(pool.committed(&plan).await?, ["t1", "t2"]);
    let kinds: Vec<EventKind> = pool.events(&plan).await?.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&EventKind::PlanPaused), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&EventKind::PlanCompleted), "{kinds:?}");
    let status = baton_tests::baton_at(&url, &["status", "last-paused"], None)?;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        !status.contains("paused "),
        "no pause reason is left: {status}"
    );
    pool.drain().await
}

//! Reliability beyond the fault suite: the shared rate-limit pause, graceful and forced
//! shutdown, `baton watch` across a Redis restart, retry and cancel.

use std::process::Command;
use std::time::{Duration, Instant};

use baton_core::{Event, EventKind};
use baton_tests::*;
use redis::AsyncCommands;
use serde_json::{json, Value};

/// A rate limit with a reset time stops the whole pool from claiming until the reset, and
/// `baton status` shows the pause.
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_pauses_the_whole_pool_until_its_reset() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    pool.add_worker(&pool.machine("b", 1))?;
    pool.submit(
        &doc("limited")
            .prompts(&["Hit the limit [[standin:limit 8]]"])
            .json(),
    )
    .await?;
    let paused = pool
        .wait_event(
            &plan_id("limited"),
            EventKind::PoolPaused,
            Duration::from_secs(60),
        )
        .await?;
    let until = body!(paused, PoolPaused).until_ms.expect("until_ms");
    pool.submit(&doc("waiting").prompts(&["Wait your turn."]).json())
        .await?;
    let out = baton(&pool.redis, &["status", "limited", "--json"], None)?;
    let status: Value = serde_json::from_slice(&out.stdout)?;
    assert!(
        status["pool_paused"]
            .as_str()
            .is_some_and(|r| r.contains("rate limit")),
        "{status}"
    );
    pool.wait_done(&plan_id("waiting"), 1, Duration::from_secs(60))
        .await?;
    pool.wait_done(&plan_id("limited"), 1, Duration::from_secs(60))
        .await?;
    let started = pool
        .events(&plan_id("waiting"))
        .await?
        .into_iter()
        .find(|e| e.kind() == EventKind::TaskStarted)
        .expect("started");
    let started_ms = u64::try_from(
        humantime::parse_rfc3339(&started.at)?
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    assert!(
        started_ms + 300 >= until,
        "the other worker waited for the reset: started {started_ms}, reset {until}"
    );
    assert_eq!(pool.stat(Counter::PoolPauses).await?, 1);
    Ok(())
}

/// SIGTERM: the running task finishes and is committed, even when it outlasts `--dead-after`
/// while another worker watches (a draining worker keeps its heartbeat); the rest of the plan
/// is handed back, the worker exits 0, and the other worker finishes the plan.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_running_task_and_hands_back_the_rest() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let i = pool.add_worker(&pool.machine("a", 1))?;
    // 12 s: longer than the tests' --dead-after of 8 s.
    pool.submit(
        &doc("drain")
            .prompts(&["Slow one [[standin:sleep 12000]]", "Second."])
            .json(),
    )
    .await?;
    pool.wait_event(
        &plan_id("drain"),
        EventKind::TaskStarted,
        Duration::from_secs(30),
    )
    .await?;
    pool.add_worker(&pool.machine("b", 1))?;
    let status = pool.workers[i]
        .stop(Duration::from_secs(40))
        .expect("worker exits within the grace");
    assert!(status.success(), "exit 0: {status:?}");
    pool.wait_done(&plan_id("drain"), 2, Duration::from_secs(60))
        .await?;
    let results = pool.results(&plan_id("drain")).await?;
    assert_ne!(
        results[0].worker, results[1].worker,
        "the rest was handed to the other worker"
    );
    let starts = pool
        .events(&plan_id("drain"))
        .await?
        .iter()
        .filter(|e| e.kind() == EventKind::TaskStarted && e.task_index == Some(0))
        .count();
    assert_eq!(
        starts, 1,
        "the draining worker was not reaped: task 1 ran once"
    );
    Ok(())
}

/// A second signal stops the running task at once; it is handed back and runs again elsewhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_stops_at_once_and_hands_back() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let i = pool.add_worker(&pool.machine("a", 1))?;
    pool.submit(
        &doc("abort")
            .prompts(&["Very slow [[standin:sleep 30000]]"])
            .json(),
    )
    .await?;
    pool.wait_event(
        &plan_id("abort"),
        EventKind::TaskStarted,
        Duration::from_secs(30),
    )
    .await?;
    let t0 = Instant::now();
    pool.workers[i].proc.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    pool.workers[i].proc.signal(libc::SIGTERM);
    let status = pool.workers[i]
        .proc
        .wait_exit(Duration::from_secs(15))
        .expect("exits promptly");
    assert!(
        status.success() && t0.elapsed() < Duration::from_secs(15),
        "{status:?} after {:?}",
        t0.elapsed()
    );
    assert_eq!(
        pool.plan_field(&plan_id("abort"), PlanField::Done)
            .await?
            .as_deref(),
        Some("0")
    );
    let mut c = pool.conn().await?;
    let ready: Vec<String> = c.lrange(pool.keys.ready(), 0, -1).await?;
    assert_eq!(ready, ["abort"], "handed back");
    let lock: bool = c.exists(pool.keys.lock(&"abort".parse()?)).await?;
    assert!(!lock, "lease released");
    Ok(())
}

/// `baton watch --plan` keeps following across a Redis restart (AOF on) and misses nothing;
/// the worker commits the task that finished while Redis was away.
#[tokio::test(flavor = "multi_thread")]
async fn watch_and_workers_ride_out_a_redis_restart() -> anyhow::Result<()> {
    let redis = Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"])?;
    let mut pool = Pool::start_with_redis(redis)?;
    pool.add_worker(&pool.machine("a", 1))?;
    let out_path = pool.dir.path().join("watch.out");
    let mut watch = Proc {
        child: Command::new(bin("baton"))
            .args([
                "--redis-url",
                &pool.redis.url(),
                "watch",
                "--plan",
                "outage",
                "--json",
                "--until-end",
            ])
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(out_path.with_extension("err"))?)
            .spawn()?,
        name: "baton watch".into(),
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    pool.submit(
        &doc("outage")
            .prompts(&["First.", "Second, slow [[standin:sleep 4000]]", "Third."])
            .json(),
    )
    .await?;
    // Restart Redis while task 2 runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool
        .plan_field(&plan_id("outage"), PlanField::Done)
        .await?
        .as_deref()
        != Some("1")
    {
        anyhow::ensure!(Instant::now() < deadline, "task 1 never committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(p) = pool.redis.proc.as_mut() {
        p.signal(libc::SIGTERM);
        p.wait_exit(Duration::from_secs(10));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    pool.redis.restart_keeping_data()?;
    let Some(status) = watch.wait_exit(Duration::from_secs(90)) else {
        let err = std::fs::read_to_string(out_path.with_extension("err")).unwrap_or_default();
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        let logs: String = pool.workers.iter().map(|w| w.log()).collect();
        panic!("watch did not end with the plan.\nwatch stderr: {err}\nwatch stdout: {out}\nworker: {logs}");
    };
    assert!(status.success(), "watch saw the plan complete: {status:?}");
    assert_eq!(pool.results(&plan_id("outage")).await?.len(), 3);
    let lines = std::fs::read_to_string(&out_path)?;
    let seqs: Vec<u64> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["seq"].as_u64())
        .collect();
    let stored = pool.events(&plan_id("outage")).await?;
    assert_eq!(
        seqs,
        stored.iter().filter_map(|e| e.seq).collect::<Vec<_>>(),
        "watch printed every stored event once, in order"
    );
    Ok(())
}

/// `baton watch` following every plan loses its connection for a while (killed by the server,
/// the watcher paused): on reconnect it prints what happened meanwhile, in order, each event
/// once: the rest of a plan it was following, a plan submitted and finished in the gap, and a
/// document rejected in the gap.
#[tokio::test(flavor = "multi_thread")]
async fn watch_of_every_plan_misses_nothing_across_a_lost_connection() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 2))?;
    let out_path = pool.dir.path().join("watch-all.out");
    let watch = Proc {
        child: Command::new(bin("baton"))
            .args(["--redis-url", &pool.redis.url(), "watch", "--json"])
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(out_path.with_extension("err"))?)
            .spawn()?,
        name: "baton watch".into(),
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // `--json` prints each event as it was published: each must parse whole into its type.
    let printed = || -> Vec<Event> {
        std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.ends_with('}'))
            .map(|l| pool::strict_event(l).expect("watch --json prints events"))
            .collect()
    };
    let has = |events: &[Event], plan: &str, kind: EventKind| {
        events
            .iter()
            .any(|e| e.plan_id == Some(plan_id(plan)) && e.kind() == kind)
    };
    pool.submit(
        &doc("before")
            .prompts(&[
                "One.",
                "Two [[standin:sleep 1500]]",
                "Three [[standin:sleep 500]]",
            ])
            .json(),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has(&printed(), "before", EventKind::TaskSucceeded) {
        anyhow::ensure!(Instant::now() < deadline, "the watch never showed task 1");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The gap: the watcher stopped, its connection killed by the server.
    watch.signal(libc::SIGSTOP);
    let mut conn = pool.conn().await?;
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await?;
    pool.submit(&doc("during").prompts(&["Quick one.", "Quick two."]).json())
        .await?;
    pool.submit(r#"{"plan_id": "during-bad", "tasks": "not a list"}"#)
        .await?;
    pool.wait_state(
        &plan_id("before"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    pool.wait_state(
        &plan_id("during"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    watch.signal(libc::SIGCONT);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = printed();
        if has(&events, "before", EventKind::PlanCompleted)
            && has(&events, "during", EventKind::PlanCompleted)
            && has(&events, "during-bad", EventKind::SubmissionRejected)
        {
            break;
        }
        let err = std::fs::read_to_string(out_path.with_extension("err")).unwrap_or_default();
        anyhow::ensure!(
            Instant::now() < deadline,
            "the watch did not catch up: {events:?}\n{err}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = printed();
    for plan in ["before", "during"] {
        let shown: Vec<u64> = events
            .iter()
            .filter(|e| e.plan_id == Some(plan_id(plan)))
            .filter_map(|e| e.seq)
            .collect();
        let stored: Vec<u64> = pool
            .events(&plan_id(plan))
            .await?
            .iter()
            .filter_map(|e| e.seq)
            .collect();
        assert_eq!(shown, stored, "{plan}: every stored event once, in order");
    }
    let rejected = events
        .iter()
        .filter(|e| e.kind() == EventKind::SubmissionRejected)
        .count();
    assert_eq!(rejected, 1, "the rejection told once");
    let err = std::fs::read_to_string(out_path.with_extension("err"))?;
    assert!(
        err.contains("reconnected"),
        "the watch did lose its connection: {err}"
    );
    Ok(())
}

/// A plan stopped by a 400 is retried with `baton retry` once the cause is gone; `baton cancel`
/// stops a running task and the plan runs no more.
#[tokio::test(flavor = "multi_thread")]
async fn retry_resumes_a_failed_plan_and_cancel_stops_a_running_one() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    pool.standin
        .control(json!({"fail_status": 400, "match": "BAD-REQUEST-PLAN"}))?;
    pool.submit(
        &doc("bad")
            .prompts(&["One BAD-REQUEST-PLAN.", "Two."])
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("bad"),
        &[PlanState::Failed],
        Duration::from_secs(60),
    )
    .await?;
    let mut c = pool.conn().await?;
    let dead: Vec<String> = c.lrange(pool.keys.dead(), 0, -1).await?;
    assert!(
        dead.iter()
            .any(|d| d.contains("\"task_id\":\"t1\"") && d.contains("400")),
        "dead letter for the task: {dead:?}"
    );
    pool.standin.control(json!({"clear": true}))?;
    let out = baton(&pool.redis, &["retry", "bad"], None)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pool.wait_done(&plan_id("bad"), 2, Duration::from_secs(60))
        .await?;
    assert_eq!(
        pool.state(&plan_id("bad")).await?,
        Some(PlanState::Completed)
    );

    pool.submit(
        &doc("stopme")
            .prompts(&["Long [[standin:sleep 60000]]", "Never."])
            .json(),
    )
    .await?;
    pool.wait_event(
        &plan_id("stopme"),
        EventKind::TaskStarted,
        Duration::from_secs(30),
    )
    .await?;
    let t0 = Instant::now();
    let out = baton(
        &pool.redis,
        &["cancel", "stopme", "--reason", "changed my mind"],
        None,
    )?;
    assert!(out.status.success());
    // The holder notices at its next lease renewal (a third of the 6 s lease in tests).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let held: bool = c.exists(pool.keys.lock(&"stopme".parse()?)).await?;
        if !held {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the cancelled task was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert_eq!(
        pool.state(&plan_id("stopme")).await?,
        Some(PlanState::Cancelled)
    );
    assert_eq!(
        pool.plan_field(&plan_id("stopme"), PlanField::Done)
            .await?
            .as_deref(),
        Some("0")
    );
    let ev = pool
        .wait_event(
            &plan_id("stopme"),
            EventKind::PlanCancelled,
            Duration::from_secs(5),
        )
        .await?;
    assert_eq!(body!(ev, PlanCancelled).reason, "changed my mind");
    Ok(())
}

/// A task whose worker dies while running it, more often than `--max-recoveries`, is poison:
/// it goes to the dead-letter list and its plan stops, instead of killing worker after worker.
#[tokio::test(flavor = "multi_thread")]
async fn a_poison_task_is_dead_lettered_instead_of_killing_the_pool() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let strict = |name: &str| {
        let mut m = pool.machine(name, 1);
        m.extra.extend(["--max-recoveries".into(), "1".into()]);
        m
    };
    let (a, b, c) = (strict("a"), strict("b"), strict("c"));
    let ia = pool.add_worker(&a)?;
    pool.submit(
        &doc("poison")
            .prompts(&["Deadly [[standin:sleep 60000]]"])
            .json(),
    )
    .await?;
    pool.wait_event(
        &plan_id("poison"),
        EventKind::TaskStarted,
        Duration::from_secs(30),
    )
    .await?;
    pool.workers[ia].proc.signal(libc::SIGKILL);
    // The second worker recovers it (recovery 1 of 1) and dies too while running it.
    let ib = pool.add_worker(&b)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool
        .events(&plan_id("poison"))
        .await?
        .iter()
        .filter(|e| e.kind() == EventKind::TaskStarted)
        .count()
        < 2
    {
        anyhow::ensure!(Instant::now() < deadline, "the task was never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.workers[ib].proc.signal(libc::SIGKILL);
    // A third worker recovers it once more: now it is poison.
    pool.add_worker(&c)?;
    pool.wait_state(
        &plan_id("poison"),
        &[PlanState::Failed],
        Duration::from_secs(60),
    )
    .await?;
    let mut conn = pool.conn().await?;
    let dead: Vec<String> = conn.lrange(pool.keys.dead(), 0, -1).await?;
    assert!(dead.iter().any(|d| d.contains("poison")), "{dead:?}");
    assert_eq!(
        pool.events(&plan_id("poison"))
            .await?
            .iter()
            .filter(|e| e.kind() == EventKind::TaskStarted)
            .count(),
        2,
        "not run a third time"
    );
    // The pool still serves.
    pool.submit(&doc("healthy").prompts(&["Fine."]).json())
        .await?;
    pool.wait_done(&plan_id("healthy"), 1, Duration::from_secs(60))
        .await?;
    Ok(())
}

/// Inside a hold the commit of a task also announces the next one (`task_started` and its
/// session event, one trip for both). A worker killed after such a commit, while the announced
/// task runs, loses nothing: the next worker runs that task again and the plan finishes with
/// every task committed once, in order; the announcement is history, as a start followed by a
/// crash always was; and the counters count every start that was published, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_after_a_commit_announced_the_next_task_loses_nothing() -> anyhow::Result<()>
{
    let mut pool = Pool::start()?;
    // Every command the workers send, to count the start scripts they ran.
    let log = pool.dir.path().join("monitor.log");
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &pool.redis.port.to_string(), "monitor"])
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a, b) = (pool.machine("a", 1), pool.machine("b", 1));
    let ia = pool.add_worker(&a)?;
    let plan = plan_id("ahead");
    pool.submit(
        &doc("ahead")
            .prompts(&["One.", "Two [[standin:hang times=1]]", "Three."])
            .json(),
    )
    .await?;
    // t1 is committed and t2's request is at the model: t2 was announced by t1's commit.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pool
        .standin
        .requests()?
        .iter()
        .any(|r| prompts_of(r).iter().any(|p| p.contains("Two")))
    {
        anyhow::ensure!(Instant::now() < deadline, "t2 never reached the model");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before: Vec<_> = pool.events(&plan).await?.iter().map(kind_of).collect();
    let started_t2 = ("task_started".to_owned(), Some(1));
    assert_eq!(
        before.iter().filter(|k| **k == started_t2).count(),
        1,
        "t2 announced once: {before:?}"
    );
    let at = before
        .iter()
        .position(|k| *k == started_t2)
        .expect("t2 started");
    assert_eq!(
        before[at - 1],
        ("task_succeeded".to_owned(), Some(0)),
        "t2's start follows t1's commit: {before:?}"
    );
    pool.workers[ia].proc.signal(libc::SIGKILL);
    pool.add_worker(&b)?;
    pool.wait_done(&plan, 3, Duration::from_secs(90)).await?;
    let ids: Vec<_> = pool
        .results(&plan)
        .await?
        .iter()
        .map(|r| r.task_id.to_string())
        .collect();
    assert_eq!(ids, ["t1", "t2", "t3"], "each task once, in order");
    let events = pool.events(&plan).await?;
    let seqs: Vec<_> = events.iter().map(|e| e.seq).collect();
    let want: Vec<_> = (0..events.len() as u64).map(Some).collect();
    assert_eq!(seqs, want, "every event stored once, numbered in order");
    let starts: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == EventKind::TaskStarted)
        .map(|e| (e.task_index, e.worker.as_ref().map(|w| w.to_string())))
        .collect();
    let indexes: Vec<_> = starts.iter().map(|s| s.0).collect();
    assert_eq!(indexes, [Some(0), Some(1), Some(1), Some(2)], "{starts:?}");
    let by = |i: usize| starts[i].1.clone();
    assert!(
        by(0) == by(1) && by(2) == by(3) && by(1) != by(2),
        "t2 started by both workers, t3 by the second alone: {starts:?}"
    );
    // Resumes attempted: t2 by a (announced), t2 by b (a hand-off), t3 by b (announced).
    let mut conn = pool.conn().await?;
    let stat = |name: &str| format!("stat:{name}");
    let key = pool.keys.plan(&plan);
    let attempted: i64 = conn.hget(&key, stat("resumes_attempted")).await?;
    let handoffs: i64 = conn.hget(&key, stat("handoffs")).await?;
    let succeeded: i64 = conn.hget(&key, stat("tasks_succeeded")).await?;
    assert_eq!((attempted, handoffs, succeeded), (3, 1, 3));
    // Four starts, two of them written by the commit before: start.lua ran once per hold.
    let _ = monitor.kill();
    let _ = monitor.wait();
    let sha = baton_core::scripts::START.get_hash().to_owned();
    // The same call twice is one call sent again after a NOSCRIPT (the first use of a script
    // on this server): the command after MONITOR's time and client prefix is the same.
    let start_scripts: std::collections::BTreeSet<String> = std::fs::read_to_string(&log)?
        .lines()
        .filter(|l| {
            l.to_ascii_lowercase()
                .contains(&format!("\"evalsha\" \"{sha}\""))
        })
        .filter_map(|l| {
            l.split_once("] ")
                .map(|(_, call)| call.chars().take(600).collect())
        })
        .collect();
    assert_eq!(
        start_scripts.len(),
        2,
        "one start.lua per hold, for its first task: {start_scripts:#?}\nevents: {:#?}",
        events.iter().map(|e| e.to_json()).collect::<Vec<_>>()
    );
    Ok(())
}

/// An event's kind and task index.
fn kind_of(e: &Event) -> (String, Option<u64>) {
    (e.kind().as_str().to_owned(), e.task_index)
}

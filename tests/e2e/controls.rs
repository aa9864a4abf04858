//! Steering plans under way: pause and resume (a plan, or the whole pool), priorities, review
//! gates, `not_before` and `after`; each with the real CLI, a real redis-server and the `baton`
//! CLI a user would type, and each new state across a worker kill -9 and a Redis restart.

use baton_tests::cli::{refused, run};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{ensure, Context};
use baton_core::{Event, EventKind};
use baton_producer::exit;
use baton_tests::webhook;
use baton_tests::*;
use baton_worker::exit as worker_exit;
use serde_json::json;

fn of_kind(events: &[Event], kind: EventKind) -> Vec<&Event> {
    events.iter().filter(|e| e.kind() == kind).collect()
}

/// A time `secs` from now, as a user writes it in a document (RFC 3339, UTC).
fn in_secs(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(secs)).to_string()
}

fn at(e: &Event) -> SystemTime {
    humantime::parse_rfc3339_weak(&e.at).expect("event times are RFC 3339")
}

/// A paused plan finishes the task it was running, then runs nothing while another plan runs
/// start to end; resumed, it goes on in order in the same conversation. `--now` stops the
/// running task instead, and it runs again on resume. Plans in other states refuse with
/// their state.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_plan_runs_nothing_while_others_run_and_resumes_in_order() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 2))?;
    let slow = |k: usize| format!("Task marker held-T{k}: step {k}. [[standin:sleep 1500]]");
    let held = doc("held").prompts(&[&slow(1), &slow(2), &slow(3)]);
    pool.submit(&held.json()).await?;
    pool.wait_events(
        &plan_id("held"),
        EventKind::TaskStarted,
        1,
        Duration::from_secs(60),
    )
    .await?;
    run(&pool, &["pause", "held", "--reason", "lunch"])?;
    assert_eq!(pool.state(&plan_id("held")).await?, Some(PlanState::Paused));
    // The running task commits; nothing after it starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.done(&plan_id("held")).await? < 1 {
        ensure!(
            Instant::now() < deadline,
            "task 1 did not commit:\n{}",
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.submit(&marked_plan("other", 2)).await?;
    pool.wait_state(
        &plan_id("other"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    // The worker ran a plan submitted after the pause, and no longer holds this one: any task
    // it would have started after the pause would have started by now.
    pool.wait_unheld(&plan_id("held"), Duration::from_secs(30))
        .await?;
    let events = pool.events(&plan_id("held")).await?;
    assert_eq!(
        pool.done(&plan_id("held")).await?,
        1,
        "a paused plan runs nothing"
    );
    assert_eq!(of_kind(&events, EventKind::TaskStarted).len(), 1);
    let paused = of_kind(&events, EventKind::PlanPaused);
    assert_eq!(paused.len(), 1);
    assert_eq!(body!(paused[0], PlanPaused).reason, "lunch");

    let status = run(&pool, &["status", "held"])?;
    assert!(
        status.contains("state      paused") && status.contains("paused     lunch"),
        "{status}"
    );
    let err = refused(&pool, &["resume", "other"])?;
    assert!(err.contains("other is completed, not paused"), "{err}");
    let err = refused(&pool, &["pause", "other"])?;
    assert!(err.contains("only a queued or running plan"), "{err}");
    let err = refused(&pool, &["pause", "nobody"])?;
    assert!(err.contains("no plan nobody"), "{err}");

    run(&pool, &["resume", "held"])?;
    pool.wait_state(
        &plan_id("held"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let results = pool.results(&plan_id("held")).await?;
    let ids: Vec<&str> = results.iter().map(|r| r.task_id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2", "t3"]);
    assert!(
        results
            .iter()
            .all(|r| r.session_id == results[0].session_id),
        "one conversation across the pause"
    );
    let last = &results[2].result;
    assert!(last.contains("holds 3 prompt(s)"), "{last}");
    let events = pool.events(&plan_id("held")).await?;
    let resumed = of_kind(&events, EventKind::PlanResumed);
    assert_eq!(resumed.len(), 1);
    let second_start = of_kind(&events, EventKind::TaskStarted)[1];
    assert!(
        resumed[0].seq < second_start.seq,
        "task 2 started after the resume"
    );

    // --now: the task running is stopped (a hanging turn, here), and runs again on resume.
    let now = doc("now").prompts(&[
        "Task marker now-T1: quick.",
        "Task marker now-T2: [[standin:hang times=1]]",
    ]);
    pool.submit(&now.json()).await?;
    pool.wait_events(
        &plan_id("now"),
        EventKind::TaskStarted,
        2,
        Duration::from_secs(60),
    )
    .await?;
    // Paused once the model holds the hanging turn: a CLI stopped before its request reached
    // the model would leave the hang for the rerun (which then fails on silence and retries).
    let asked = Instant::now();
    while first_request_with(&pool.standin.requests()?, "now-T2").is_none() {
        ensure!(
            asked.elapsed() < Duration::from_secs(30),
            "task 2 never asked the model:\n{}",
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let paused_at = Instant::now();
    run(&pool, &["pause", "now", "--now"])?;
    let mut c = pool.conn().await?;
    let lock = pool.keys.lock(&"now".parse()?);
    loop {
        let held: bool = redis::AsyncCommands::exists(&mut c, &lock).await?;
        if !held {
            break;
        }
        ensure!(
            paused_at.elapsed() < Duration::from_secs(15),
            "the task was not stopped:\n{}",
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        pool.done(&plan_id("now")).await?,
        1,
        "the stopped task did not commit"
    );
    assert_eq!(pool.state(&plan_id("now")).await?, Some(PlanState::Paused));
    run(&pool, &["resume", "now"])?;
    pool.wait_state(
        &plan_id("now"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let events = pool.events(&plan_id("now")).await?;
    let t2_starts = of_kind(&events, EventKind::TaskStarted)
        .iter()
        .filter(|e| e.task_id.as_ref().map(|t| t.as_str()) == Some("t2"))
        .count();
    let story: Vec<String> = events
        .iter()
        .map(|e| format!("{} {:?} {:?}", e.body.kind(), e.task_id, e.body.reason()))
        .collect();
    assert_eq!(
        t2_starts,
        2,
        "the stopped task ran again, once:\n{}\n{}",
        story.join("\n"),
        pool.log_tail()
    );
    Ok(())
}

/// `baton pause --all`: no plan is claimed, and a hold hands its plan back after the task it
/// is running; `baton resume --all` lets everything run to the end.
#[tokio::test(flavor = "multi_thread")]
async fn pausing_the_pool_holds_every_claim_until_resumed() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 2))?;
    let slow: Vec<String> = (1..=4)
        .map(|k| format!("Task marker long-T{k}. [[standin:sleep 800]]"))
        .collect();
    let refs: Vec<&str> = slow.iter().map(String::as_str).collect();
    pool.submit(&doc("long").prompts(&refs).json()).await?;
    pool.wait_events(
        &plan_id("long"),
        EventKind::TaskStarted,
        1,
        Duration::from_secs(60),
    )
    .await?;
    let out = run(&pool, &["pause", "--all", "--reason", "maintenance"])?;
    assert!(out.contains("pool paused"), "{out}");
    pool.submit(&marked_plan("p1", 2)).await?;
    pool.submit(&marked_plan("p2", 1)).await?;
    // The hold hands the plan back after its task (the pause reaches it within a heartbeat).
    pool.wait_state(
        &plan_id("long"),
        &[PlanState::Queued],
        Duration::from_secs(60),
    )
    .await?;
    let long_done = pool.done(&plan_id("long")).await?;
    assert!(long_done < 4, "the hold went on to the end");
    // Once p1 and p2 wait on the ready list, each slot's claim loop looks again (it says so)
    // and claims nothing.
    for p in ["p1", "p2"] {
        pool.wait_state(&plan_id(p), &[PlanState::Queued], Duration::from_secs(30))
            .await?;
    }
    let looked = pool.paused_claims();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.paused_claims() < looked + 2 {
        ensure!(
            Instant::now() < deadline,
            "the slots did not look again while paused:\n{}",
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        pool.done(&plan_id("long")).await?,
        long_done,
        "nothing runs while paused"
    );
    for p in ["p1", "p2"] {
        assert_eq!(
            pool.done(&plan_id(p)).await?,
            0,
            "{p} was claimed while paused"
        );
        assert_eq!(pool.state(&plan_id(p)).await?, Some(PlanState::Queued));
    }
    let stats: serde_json::Value = serde_json::from_str(&run(&pool, &["stats", "--json"])?)?;
    assert_eq!(stats["pool_paused"], "maintenance");
    assert_eq!(stats["queues"]["ready"], 3, "{stats}");

    let out = run(&pool, &["resume", "--all"])?;
    assert!(out.contains("pool resumed"), "{out}");
    for p in ["long", "p1", "p2"] {
        pool.wait_state(
            &plan_id(p),
            &[PlanState::Completed],
            Duration::from_secs(90),
        )
        .await?;
    }
    let out = run(&pool, &["resume", "--all"])?;
    assert!(out.contains("not paused"), "{out}");
    let err = refused(&pool, &["pause"])?;
    assert!(err.contains("--all"), "{err}");
    Ok(())
}

/// 30 plans (10 low, 10 normal, 10 high, submitted in that order) wait behind a paused pool,
/// then one slot claims them: the high ones first, yet a low plan runs while high ones still
/// wait (every tenth claim looks at the low line first), and normal before low on the whole.
#[tokio::test(flavor = "multi_thread")]
async fn high_plans_are_claimed_first_and_low_ones_still_get_their_turn() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    run(&pool, &["pause", "--all"])?;
    pool.add_worker(&pool.machine("a", 1))?;
    let mut plans = Vec::new();
    for prio in ["low", "normal", "high"] {
        for i in 0..10 {
            let id = format!("{prio}-{i}");
            let d = doc(&id)
                .prompts(&[&format!("Task marker {id}-T1.")])
                .options(json!({"priority": prio}));
            pool.submit(&d.json()).await?;
            plans.push((id, prio));
        }
    }
    for (id, _) in &plans {
        pool.wait_state(&plan_id(id), &[PlanState::Queued], Duration::from_secs(30))
            .await?;
    }
    run(&pool, &["resume", "--all"])?;
    let mut started = Vec::new();
    for (id, prio) in &plans {
        pool.wait_state(
            &plan_id(id),
            &[PlanState::Completed],
            Duration::from_secs(240),
        )
        .await?;
        let events = pool.events(&plan_id(id)).await?;
        let first = of_kind(&events, EventKind::TaskStarted)[0].clone();
        started.push((at(&first), *prio, id.clone()));
    }
    started.sort();
    let order: Vec<&str> = started.iter().map(|(_, p, _)| *p).collect();
    let rank = |prio: &str| -> Vec<usize> {
        order
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == prio)
            .map(|(i, _)| i)
            .collect()
    };
    eprintln!("claim order: {order:?}");
    let (high, normal, low) = (rank("high"), rank("normal"), rank("low"));
    assert_eq!(&order[..4], ["high"; 4], "{order:?}");
    assert!(*high.last().unwrap() < 13, "high plans first: {order:?}");
    assert!(
        low[0] < *high.last().unwrap(),
        "a low plan ran while high ones waited: {order:?}"
    );
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len() as f64;
    assert!(
        mean(&high) < mean(&normal) && mean(&normal) < mean(&low),
        "{order:?}"
    );
    Ok(())
}

/// A task with `"review": true` stops its plan in `awaiting_review` with its result and commit.
/// `baton reject` runs it again as a new turn whose prompt is the note, from the files before
/// it (the rejected file is gone from the branch), in a conversation that still holds the
/// rejected turn; the rework is reviewed again. `baton approve --note` lets the plan go on,
/// and the note reaches the model before the next task.
#[tokio::test(flavor = "multi_thread")]
async fn a_review_gate_waits_and_a_rejection_reruns_the_task_from_its_files() -> anyhow::Result<()>
{
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let mut m = pool.separate_machine("a", 1);
    m.extra.extend(["--session-ttl".into(), "120".into()]);
    pool.add_worker(&m)?;
    let d = doc("rev")
        .reviewed_task(
            "draft",
            "Step REV-1: a draft.\nFile: draft.txt\n```\nfirst try\n```\n",
        )
        .task(
            "next",
            "Step REV-2.\nRead: better.txt\nFile: done.txt\n```\ndone\n```\n",
        )
        .repo(json!({"url": remote.url()}));
    pool.submit(&d.json()).await?;
    pool.wait_state(
        &plan_id("rev"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(90),
    )
    .await?;
    let events = pool.events(&plan_id("rev")).await?;
    let asked = of_kind(&events, EventKind::ReviewRequested);
    assert_eq!(asked.len(), 1);
    let head = remote.rev("baton/rev").context("the branch")?;
    let asked_body = body!(asked[0], ReviewRequested);
    assert_eq!(asked_body.commit.as_deref(), Some(head.as_str()));
    assert!(!asked_body.result.is_empty());
    assert_eq!(asked[0].task_id.as_ref().map(|t| t.as_str()), Some("draft"));
    // The hold that ran the task is over: nothing more runs until the reviewer acts.
    pool.wait_unheld(&plan_id("rev"), Duration::from_secs(30))
        .await?;
    assert_eq!(
        pool.state(&plan_id("rev")).await?,
        Some(PlanState::AwaitingReview),
        "the plan waits for the reviewer"
    );
    assert_eq!(pool.done(&plan_id("rev")).await?, 1);
    let status = run(&pool, &["status", "rev"])?;
    assert!(status.contains("review     task draft waits"), "{status}");
    // The conversation outlives the session TTL while a person reviews.
    let session_ttl = |pool: &Pool| -> anyhow::Result<i64> {
        let out = redis_server::redis_cli(
            pool.redis.port,
            &["TTL", &pool.keys.session(&"rev".parse()?)],
        )?;
        Ok(out.trim().parse()?)
    };
    let waiting_ttl = session_ttl(&pool)?;
    assert!(
        waiting_ttl > 120,
        "kept as long as the plan: {waiting_ttl} s"
    );

    let note = "Step REV-1b: the name is wrong. [[standin:sleep 2000]]\nFile: better.txt\n```\nsecond try\n```\n";
    run(&pool, &["reject", "rev", "--note", note])?;
    pool.wait_events(
        &plan_id("rev"),
        EventKind::ReviewRejected,
        1,
        Duration::from_secs(30),
    )
    .await?;
    let after_ttl = session_ttl(&pool)?;
    assert!(
        (1..=120).contains(&after_ttl),
        "the session TTL starts again: {after_ttl} s"
    );
    pool.wait_events(
        &plan_id("rev"),
        EventKind::ReviewRequested,
        2,
        Duration::from_secs(90),
    )
    .await?;
    pool.wait_state(
        &plan_id("rev"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(10),
    )
    .await?;
    let head = remote.rev("baton/rev").context("the branch")?;
    let files = remote.files(&head)?;
    assert!(files.contains(&"better.txt".to_owned()), "{files:?}");
    assert!(
        !files.contains(&"draft.txt".to_owned()),
        "the rework started from the files before the rejected run: {files:?}"
    );
    let main = remote.rev("main").context("main")?;
    assert_eq!(
        remote.log(&main, "baton/rev")?.len(),
        1,
        "the rejected commit was replaced"
    );
    let requests = pool.standin.requests()?;
    let rework = first_request_with(&requests, "REV-1b").context("the rework's request")?;
    let prompts = prompts_of(rework);
    assert!(
        prompts.iter().any(|p| p.contains("Step REV-1: a draft")),
        "the conversation kept the rejected turn: {prompts:?}"
    );
    assert!(
        prompts.last().unwrap().contains("A reviewer rejected"),
        "{prompts:?}"
    );

    let err = refused(&pool, &["reject", "rev"])?;
    assert!(err.contains("--note"), "{err}");
    run(
        &pool,
        &["approve", "rev", "--note", "NOTE-LGTM keep it small"],
    )?;
    pool.wait_state(
        &plan_id("rev"),
        &[PlanState::Completed],
        Duration::from_secs(90),
    )
    .await?;
    let requests = pool.standin.requests()?;
    let next = first_request_with(&requests, "REV-2").context("task 2's request")?;
    let last = prompts_of(next).last().cloned().unwrap_or_default();
    let (note_at, task_at) = (last.find("NOTE-LGTM"), last.find("Step REV-2"));
    assert!(
        note_at.is_some() && note_at < task_at,
        "the note comes before the next task: {last}"
    );
    let reads = pool.standin.reads()?;
    assert!(
        reads
            .iter()
            .any(|(p, found, _)| p == "better.txt" && *found),
        "task 2 found the reworked file: {reads:?}"
    );
    assert_eq!(
        remote.log(&main, "baton/rev")?.len(),
        2,
        "one commit per task"
    );
    let events = pool.events(&plan_id("rev")).await?;
    assert_eq!(of_kind(&events, EventKind::ReviewRejected).len(), 1);
    let approved = of_kind(&events, EventKind::ReviewApproved);
    assert_eq!(
        body!(approved[0], ReviewApproved).note.as_deref(),
        Some("NOTE-LGTM keep it small")
    );
    let err = refused(&pool, &["approve", "rev"])?;
    assert!(err.contains("not awaiting_review"), "{err}");
    Ok(())
}

/// `not_before`: accepted at once, claimed only from its time. `after`: claimed only once every
/// plan named completed; a plan after a failed one fails, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn not_before_and_after_hold_plans_until_their_time_and_their_plans() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 2))?;
    let when = in_secs(6);
    let later = doc("later")
        .prompts(&["Task marker later-T1."])
        .options(json!({"not_before": when}));
    pool.submit(&later.json()).await?;
    let first = doc("first").prompts(&[
        "Task marker first-T1. [[standin:sleep 1000]]",
        "Task marker first-T2. [[standin:sleep 1000]]",
    ]);
    pool.submit(&first.json()).await?;
    let second = doc("second")
        .prompts(&["Task marker second-T1."])
        .options(json!({"after": ["first"]}));
    pool.submit(&second.json()).await?;
    pool.submit(
        &doc("broken")
            .prompts(&["Fails. [[standin:fail 400]]"])
            .json(),
    )
    .await?;
    let blocked = doc("blocked")
        .prompts(&["Task marker blocked-T1."])
        .options(json!({"after": ["first", "broken"]}));
    pool.submit(&blocked.json()).await?;

    pool.wait_state(
        &plan_id("second"),
        &[PlanState::Completed],
        Duration::from_secs(90),
    )
    .await?;
    let first_events = pool.events(&plan_id("first")).await?;
    let first_done = at(of_kind(&first_events, EventKind::PlanCompleted)[0]);
    let second_events = pool.events(&plan_id("second")).await?;
    let second_start = at(of_kind(&second_events, EventKind::TaskStarted)[0]);
    assert!(
        second_start >= first_done,
        "second ran after first completed"
    );

    pool.wait_state(
        &plan_id("blocked"),
        &[PlanState::Failed],
        Duration::from_secs(60),
    )
    .await?;
    let why = pool
        .plan_field(&plan_id("blocked"), PlanField::LastError)
        .await?
        .unwrap_or_default();
    assert!(
        why.contains("plan broken") && why.contains("failed"),
        "{why}"
    );
    let blocked_events = pool.events(&plan_id("blocked")).await?;
    assert!(of_kind(&blocked_events, EventKind::TaskStarted).is_empty());
    assert_eq!(of_kind(&blocked_events, EventKind::PlanFailed).len(), 1);

    pool.wait_state(
        &plan_id("later"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let events = pool.events(&plan_id("later")).await?;
    let not_before = humantime::parse_rfc3339_weak(&when)?;
    assert!(
        at(of_kind(&events, EventKind::PlanAccepted)[0]) < not_before,
        "accepted at once"
    );
    assert!(
        at(of_kind(&events, EventKind::TaskStarted)[0]) >= not_before,
        "claimed only from its time"
    );

    // Each new option, wrong, is refused naming its field.
    for (doc, field) in [
        (
            r#"{"tasks":[{"prompt":"x"}],"options":{"priority":"urgent"}}"#,
            "options.priority",
        ),
        (
            r#"{"tasks":[{"prompt":"x"}],"options":{"not_before":"tomorrow"}}"#,
            "options.not_before",
        ),
        (
            r#"{"plan_id":"me","tasks":[{"prompt":"x"}],"options":{"after":["me"]}}"#,
            "options.after[0]",
        ),
        (
            r#"{"tasks":[{"prompt":"x","review":"yes"}]}"#,
            "tasks[0].review",
        ),
    ] {
        let out = baton(&pool.redis, &["enqueue", "-"], Some(doc))?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(exit::BAD_INPUT.into()),
            "{doc}: {err}"
        );
        assert!(err.contains(field), "{doc}: {err}");
    }
    Ok(())
}

/// Every new state (paused, awaiting review, waiting for its time) survives a Redis restart
/// from its AOF and the kill -9 of the worker; a new worker carries each to the end.
#[tokio::test(flavor = "multi_thread")]
async fn new_states_survive_a_worker_kill_and_a_redis_restart() -> anyhow::Result<()> {
    let redis = Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"])?;
    let mut pool = Pool::start_with_redis(redis)?;
    pool.add_worker(&pool.machine("a", 2))?;
    pool.submit(&marked_plan("stilled", 2)).await?;
    pool.wait_state(
        &plan_id("stilled"),
        &[PlanState::Queued, PlanState::Running],
        Duration::from_secs(10),
    )
    .await?;
    run(&pool, &["pause", "stilled"])?;
    let gated = doc("gated")
        .reviewed_task("t1", "Task marker gated-T1.")
        .task("t2", "Task marker gated-T2.");
    pool.submit(&gated.json()).await?;
    pool.wait_state(
        &plan_id("gated"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(60),
    )
    .await?;
    let timed = doc("timed")
        .prompts(&["Task marker timed-T1."])
        .options(json!({"not_before": in_secs(10)}));
    pool.submit(&timed.json()).await?;
    pool.wait_state(
        &plan_id("timed"),
        &[PlanState::Queued],
        Duration::from_secs(10),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    pool.redis.restart()?;
    pool.workers[0].proc.signal(libc::SIGKILL);
    pool.add_worker(&pool.machine("b", 2))?;
    let stilled = pool.state(&plan_id("stilled")).await?;
    assert_eq!(stilled, Some(PlanState::Paused));
    let gated_state = pool.state(&plan_id("gated")).await?;
    assert_eq!(gated_state, Some(PlanState::AwaitingReview));
    run(&pool, &["resume", "stilled"])?;
    run(&pool, &["approve", "gated"])?;
    // A plan whose last task is reviewed completes with the approval.
    let last = doc("last").reviewed_task("t1", "Task marker last-T1.");
    pool.submit(&last.json()).await?;
    pool.wait_state(
        &plan_id("last"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(60),
    )
    .await?;
    run(&pool, &["approve", "last"])?;
    for p in ["stilled", "gated", "timed", "last"] {
        pool.wait_state(
            &plan_id(p),
            &[PlanState::Completed],
            Duration::from_secs(90),
        )
        .await?;
    }
    assert_eq!(pool.done(&plan_id("stilled")).await?, 2);
    assert_eq!(pool.done(&plan_id("gated")).await?, 2);
    // The pool's counters take every completion, the approved one's too.
    let deadline = Instant::now() + Duration::from_secs(15);
    while pool.stat(Counter::PlansCompleted).await? != 4 {
        ensure!(
            Instant::now() < deadline,
            "plans_completed = {}",
            pool.stat(Counter::PlansCompleted).await?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Waits until `receiver` has `n` deliveries.
async fn wait_deliveries(
    receiver: &webhook::Receiver,
    n: usize,
    within: Duration,
) -> anyhow::Result<Vec<webhook::Delivery>> {
    let deadline = Instant::now() + within;
    loop {
        let got = receiver.deliveries();
        if got.len() >= n {
            return Ok(got);
        }
        ensure!(
            Instant::now() < deadline,
            "{} of {n} deliveries within {within:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Webhooks: a plan's review request, completion and failure reach a local receiver, each
/// signed with the worker's secret; a host not on the worker's allow list is never contacted
/// (the plan gets `webhook_failed` instead); a receiver that keeps failing is retried for a
/// bounded time after the plan has already completed.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_refused_hosts_never_called_and_failures_never_delay_a_plan(
) -> anyhow::Result<()> {
    const SECRET: &str = "s3cret-for-tests";
    let good = webhook::Receiver::start(200).await?;
    let failing = webhook::Receiver::start(500).await?;
    let elsewhere = webhook::Receiver::start(200).await?;
    let gone = webhook::Receiver::start(410).await?;
    let redirecting = webhook::Receiver::start(302).await?;
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 2);
    m.env.push(("BATON_WEBHOOK_SECRET".into(), SECRET.into()));
    m.extra.extend([
        "--webhook-allow".into(),
        "127.0.0.1,*.example.com".into(),
        "--webhook-retry-for".into(),
        "3s".into(),
    ]);
    pool.add_worker(&m)?;

    let hooked = doc("hooked")
        .reviewed_task("t1", "Task marker hooked-T1.")
        .task("t2", "Task marker hooked-T2.")
        .options(json!({"notify": {"url": good.url("/hook?token=abc"),
                                   "events": ["review_requested", "plan_completed"]}}));
    pool.submit(&hooked.json()).await?;
    let refused_host = doc("elsewhere")
        .prompts(&["Task marker elsewhere-T1."])
        .options(
            json!({"notify": {"url": format!("http://localhost:{}/x", elsewhere.port),
                                   "events": ["plan_completed"]}}),
        );
    pool.submit(&refused_host.json()).await?;
    let slow_receiver = doc("unheard")
        .prompts(&["Task marker unheard-T1.", "Task marker unheard-T2."])
        .options(json!({"notify": {"url": failing.url("/"), "events": ["plan_completed"]}}));
    pool.submit(&slow_receiver.json()).await?;
    let broken = doc("broken")
        .prompts(&["Fails. [[standin:fail 400]]"])
        .options(json!({"notify": {"url": good.url("/failed"), "events": ["plan_failed"]}}));
    pool.submit(&broken.json()).await?;
    let refusing = doc("refusing")
        .prompts(&["Task marker refusing-T1."])
        .options(json!({"notify": {"url": gone.url("/"), "events": ["plan_completed"]}}));
    pool.submit(&refusing.json()).await?;
    let redirected = doc("redirected")
        .prompts(&["Task marker redirected-T1."])
        .options(json!({"notify": {"url": redirecting.url("/"), "events": ["plan_completed"]}}));
    pool.submit(&redirected.json()).await?;

    pool.wait_state(
        &plan_id("hooked"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(60),
    )
    .await?;
    let got = wait_deliveries(&good, 1, Duration::from_secs(20)).await?;
    run(&pool, &["approve", "hooked"])?;
    pool.wait_state(
        &plan_id("hooked"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    pool.wait_state(
        &plan_id("broken"),
        &[PlanState::Failed],
        Duration::from_secs(60),
    )
    .await?;
    let got = if got.len() >= 3 {
        got
    } else {
        wait_deliveries(&good, 3, Duration::from_secs(20)).await?
    };
    let mut kinds = Vec::new();
    for d in &got {
        d.verify(SECRET).map_err(|e| {
            anyhow::anyhow!("signed with the worker's secret, just now: {e}: {d:?}")
        })?;
        // The signature covers the timestamp: the same body under another time is refused.
        let mut replayed = d.clone();
        for (name, value) in &mut replayed.headers {
            if name == "x-baton-timestamp" {
                *value = (value.parse::<u64>()? - 1).to_string();
            }
        }
        assert!(
            replayed.verify(SECRET).is_err(),
            "a changed timestamp breaks the signature"
        );
        assert_eq!(d.header("content-type"), Some("application/json"));
        let ev = pool::strict_event(&d.body)?;
        kinds.push((
            ev.plan_id
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            ev.kind(),
            d.path.clone(),
        ));
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("broken".into(), EventKind::PlanFailed, "/failed".into()),
            (
                "hooked".into(),
                EventKind::PlanCompleted,
                "/hook?token=abc".into()
            ),
            (
                "hooked".into(),
                EventKind::ReviewRequested,
                "/hook?token=abc".into()
            ),
        ]
    );

    pool.wait_state(
        &plan_id("elsewhere"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let events = pool
        .wait_events(
            &plan_id("elsewhere"),
            EventKind::WebhookFailed,
            1,
            Duration::from_secs(10),
        )
        .await?;
    let why = &body!(of_kind(&events, EventKind::WebhookFailed)[0], WebhookFailed).reason;
    assert!(why.contains("--webhook-allow"), "{why}");
    assert!(
        elsewhere.deliveries().is_empty(),
        "a refused host is never contacted"
    );

    pool.wait_state(
        &plan_id("unheard"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let events = pool
        .wait_events(
            &plan_id("unheard"),
            EventKind::WebhookFailed,
            1,
            Duration::from_secs(20),
        )
        .await?;
    // The plan completed first (the event a delivery carries is published before it is sent),
    // and the delivery went on with backoff after it.
    let completed = of_kind(&events, EventKind::PlanCompleted)[0];
    let gave_up = of_kind(&events, EventKind::WebhookFailed)[0];
    assert!(completed.seq < gave_up.seq && at(completed) <= at(gave_up));
    let tries = failing.deliveries();
    let attempts = tries.len();
    assert!(attempts >= 2, "retried with backoff: {attempts} attempts");
    let span = tries[attempts - 1].at.duration_since(tries[0].at);
    assert!(
        span >= Duration::from_millis(400),
        "the retries were spread out after the plan completed: {span:?}"
    );
    assert_eq!(
        u64::from(body!(gave_up, WebhookFailed).attempts),
        attempts as u64
    );
    assert_eq!(body!(gave_up, WebhookFailed).url, failing.url("/"));

    // A receiver that refuses the body (410) is not asked again.
    let events = pool
        .wait_events(
            &plan_id("refusing"),
            EventKind::WebhookFailed,
            1,
            Duration::from_secs(30),
        )
        .await?;
    let failed = of_kind(&events, EventKind::WebhookFailed)[0];
    assert!(body!(failed, WebhookFailed).reason.contains("410"));
    assert_eq!(gone.deliveries().len(), 1, "a 4xx answer is not retried");

    // A redirect is a permanent failure: not followed, not asked again, and the event says why.
    let events = pool
        .wait_events(
            &plan_id("redirected"),
            EventKind::WebhookFailed,
            1,
            Duration::from_secs(30),
        )
        .await?;
    let why = &body!(of_kind(&events, EventKind::WebhookFailed)[0], WebhookFailed).reason;
    assert!(why.contains("302") && why.contains("redirect"), "{why}");
    assert_eq!(
        redirecting.deliveries().len(),
        1,
        "a 3xx answer is not retried"
    );

    // A worker told to call hosts but given no secret refuses to start, naming both.
    let mut unsigned = pool.machine("b", 1);
    unsigned
        .extra
        .extend(["--webhook-allow".into(), "127.0.0.1".into()]);
    let mut w = Worker::start(&pool.redis, &pool.standin, &unsigned)?;
    let status = w.proc.wait_exit(Duration::from_secs(10)).context("exits")?;
    assert_eq!(status.code(), Some(worker_exit::BAD_SETTINGS.into()));
    assert!(w.log().contains("BATON_WEBHOOK_SECRET"), "{}", w.log());
    Ok(())
}

/// The CLI's own controls, per plan: each reaches the real CLI as its flag (and the CLI acts on
/// them: the effort is in its API request, max_turns stops a task that needs more turns, and
/// a worker's own MCP servers and user settings are shut out). A task's `json_schema`: a
/// matching structured answer is kept as `structured`; a wrong one is retried once with the
/// problem in the prompt, then fails the task.
#[tokio::test(flavor = "multi_thread")]
async fn the_clis_own_controls_reach_it_and_structured_answers_are_checked() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let cli = CountingCli::new(pool.dir.path())?;
    let mut m = pool.machine("a", 2);
    m.claude_bin = cli.bin.clone();
    m.extra.extend(cli.sandbox_flags());
    pool.add_worker(&m)?;
    let controlled = doc("controlled")
        .prompts(&["Task marker controlled-T1."])
        .options(json!({
            "max_turns": 5, "fallback_model": "haiku", "effort": "high",
            "disallowed_tools": ["Bash"], "mcp_config": {"mcpServers": {}},
            "agents": {"reviewer": {"description": "Reviews code", "prompt": "You review code."}}
        }));
    pool.submit(&controlled.json()).await?;
    let short = doc("short")
        .prompts(&["Two files.\nFile: a.txt\n```\na\n```\nFile: b.txt\n```\nb\n```\n"])
        .options(json!({"max_turns": 1}));
    pool.submit(&short.json()).await?;
    let schema =
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
    let structured = |plan: &str, prompt: &str| {
        json!({"plan_id": plan, "tasks": [{"id": "t1", "prompt": prompt, "json_schema": schema}]})
            .to_string()
    };
    pool.submit(&structured(
        "answer",
        "Name one. [[standin:structured {\"name\":\"Ada\"}]]",
    ))
    .await?;
    pool.submit(&structured(
        "second-try",
        "Name two. [[standin:structured-once {\"name\":5}]] [[standin:structured {\"name\":\"Bo\"}]]",
    ))
    .await?;
    pool.submit(&structured(
        "refused",
        "Name three. [[standin:structured {\"name\":7}]]",
    ))
    .await?;

    pool.wait_state(
        &plan_id("controlled"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let args = cli.starts().join("\n");
    for flag in [
        "--max-turns=5",
        "--fallback-model=haiku",
        "--effort=high",
        "--disallowed-tools=Bash",
        r#"--mcp-config={"mcpServers":{}}"#,
        "--strict-mcp-config",
        r#"--agents={"reviewer":{"description":"Reviews code","prompt":"You review code."}}"#,
        "--setting-sources= ",
    ] {
        assert!(args.contains(flag), "{flag} not passed: {args}");
    }
    let requests = pool.standin.requests()?;
    let req = first_request_with(&requests, "controlled-T1").context("the request")?;
    assert_eq!(
        req["output_config"]["effort"], "high",
        "the CLI used the effort"
    );

    pool.wait_state(
        &plan_id("short"),
        &[PlanState::Failed],
        Duration::from_secs(60),
    )
    .await?;
    let why = pool
        .plan_field(&plan_id("short"), PlanField::LastError)
        .await?
        .unwrap_or_default();
    assert!(why.contains("max_turns"), "{why}");
    let events = pool.events(&plan_id("short")).await?;
    assert_eq!(
        of_kind(&events, EventKind::TaskStarted).len(),
        1,
        "a task stopped at max_turns is not retried"
    );

    pool.wait_state(
        &plan_id("answer"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let results = pool.results(&plan_id("answer")).await?;
    assert_eq!(results[0].structured, Some(json!({"name": "Ada"})));
    let events = pool.events(&plan_id("answer")).await?;
    let ok = of_kind(&events, EventKind::TaskSucceeded)[0];
    assert_eq!(
        body!(ok, TaskSucceeded).structured,
        Some(json!({"name": "Ada"}))
    );

    pool.wait_state(
        &plan_id("second-try"),
        &[PlanState::Completed],
        Duration::from_secs(90),
    )
    .await?;
    let results = pool.results(&plan_id("second-try")).await?;
    assert_eq!(results[0].structured, Some(json!({"name": "Bo"})));
    assert_eq!(
        results[0].attempts, 2,
        "the refused answer was retried once"
    );
    let requests = pool.standin.requests()?;
    let last = requests
        .iter()
        .filter_map(|r| prompts_of(r).last().cloned())
        .find(|p| p.contains("Name two") && p.contains("was refused"))
        .context("the retry's request")?;
    // The CLI refuses a tool call that does not match the schema, so the model's wrong answer
    // never became a structured answer: the retry says so.
    assert!(
        last.contains("Name two") && last.contains("no structured answer"),
        "{last}"
    );

    pool.wait_state(
        &plan_id("refused"),
        &[PlanState::Failed],
        Duration::from_secs(90),
    )
    .await?;
    let why = pool
        .plan_field(&plan_id("refused"), PlanField::LastError)
        .await?
        .unwrap_or_default();
    assert!(why.contains("refused twice"), "{why}");
    let events = pool.events(&plan_id("refused")).await?;
    assert_eq!(of_kind(&events, EventKind::TaskStarted).len(), 2);
    Ok(())
}

/// A worker refuses a CLI older than the oldest baton was tested with, naming both versions,
/// and logs the version of one it accepts.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_refuses_a_cli_older_than_it_was_tested_with() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut pool = Pool::start()?;
    // In a folder of its own: every box gets the CLI's folder, which may hold none of the
    // worker's own folders.
    let old = pool.dir.path().join("old-cli").join("claude");
    std::fs::create_dir_all(old.parent().expect("a folder"))?;
    std::fs::write(&old, "#!/bin/sh\necho '2.0.1 (Claude Code)'\n")?;
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755))?;
    let mut m = pool.machine("old", 1);
    m.claude_bin = old;
    let mut w = Worker::start(&pool.redis, &pool.standin, &m)?;
    let status = w.proc.wait_exit(Duration::from_secs(30)).context("exits")?;
    assert!(!status.success());
    let log = w.log();
    assert!(
        log.contains("version 2.0.1") && log.contains("2.1.331"),
        "{log}"
    );
    pool.add_worker(&pool.machine("current", 1))?;
    pool.submit(&marked_plan("runs", 1)).await?;
    pool.wait_state(
        &plan_id("runs"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let log = pool.workers[0].log();
    assert!(
        log.contains("claude CLI") && log.contains("version="),
        "{log}"
    );
    Ok(())
}

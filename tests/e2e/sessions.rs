//! Sessions that survive any worker: transcript handoff, TTL and expiry, fallback with a
//! recap, rotation, budget, and the statistics users read.

use std::time::Duration;

use baton_core::{EventKind, FallbackReason};
use baton_tests::*;
use redis::AsyncCommands;
use serde_json::{json, Value};

/// The markers of task prompts a request carried, in order.
fn markers(req: &Value) -> Vec<String> {
    prompts_of(req)
        .iter()
        .flat_map(|p| {
            p.match_indices("MARK-")
                .map(|(i, _)| {
                    p[i..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_end_matches([':', '.'])
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Two "machines" (separate config dirs and HOMEs) take turns on one plan: every task's request
/// carries the whole earlier conversation, the session id never changes, handoffs are counted,
/// and `baton stats` / `baton status` report them.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_alternating_between_two_machines_keeps_one_conversation() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    for m in ["a", "b"] {
        let mut opts = pool.machine(m, 1);
        // Hand the plan back after every task: the other worker, already waiting, takes it.
        opts.extra
            .extend(["--max-tasks-per-hold".into(), "1".into()]);
        pool.add_worker(&opts)?;
    }
    let tasks: Vec<(String, String)> = (1..=4)
        .map(|k| (format!("t{k}"), format!("Step MARK-{k} of four.")))
        .collect();
    let refs: Vec<(&str, &str)> = tasks
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    pool.submit(&doc("alternate").tasks(&refs).json()).await?;
    pool.wait_state(
        &plan_id("alternate"),
        &[PlanState::Completed],
        Duration::from_secs(180),
    )
    .await?;

    let results = pool.results(&plan_id("alternate")).await?;
    let workers: Vec<&str> = results.iter().map(|r| r.worker.as_str()).collect();
    assert_eq!(
        workers.len(),
        tasks.len(),
        "every task committed: {workers:?}"
    );
    assert!(
        workers.windows(2).all(|w| w[0] != w[1]),
        "tasks alternated between machines: {workers:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r.session_id == results[0].session_id),
        "one session id throughout"
    );
    let requests = pool.standin.requests()?;
    for k in 1..=4 {
        let req =
            first_request_with(&requests, &format!("MARK-{k} ")).expect("task reached the model");
        let want: Vec<String> = (1..=k).map(|j| format!("MARK-{j}")).collect();
        assert_eq!(
            markers(req),
            want,
            "task {k} carried the whole earlier conversation"
        );
    }
    let events = pool.events(&plan_id("alternate")).await?;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind() == EventKind::SessionHandoff)
            .count(),
        3
    );

    let out = baton(&pool.redis, &["stats", "--json"], None)?;
    let stats: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(stats["counters"]["handoffs"], 3.0, "{stats}");
    assert_eq!(stats["counters"]["resumes_attempted"], 3.0);
    assert_eq!(stats["counters"]["resume_success_rate"], 1.0);
    let human = String::from_utf8(baton(&pool.redis, &["stats"], None)?.stdout)?;
    assert!(
        human.starts_with("resume success rate  100.0% (3 of 3 resumes)"),
        "{human}"
    );
    let out = baton(&pool.redis, &["status", "alternate", "--json"], None)?;
    let status: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["stats"]["handoffs"], 3);
    assert_eq!(status["stats"]["sessions_created"], 1);
    Ok(())
}

/// Task 1 runs on worker A; A stops and its config dir is deleted; a follow-up runs on worker B
/// and continues the same conversation from the transcript kept in Redis.
#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_continues_on_another_machine_after_the_first_is_gone() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let a = pool.machine("a", 1);
    let ia = pool.add_worker(&a)?;
    pool.submit(&doc("moved").tasks(&[("one", "First MARK-1 here.")]).json())
        .await?;
    pool.wait_state(
        &plan_id("moved"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    assert!(
        pool.workers[ia]
            .stop(Duration::from_secs(20))
            .is_some_and(|s| s.success()),
        "A exits 0 on SIGTERM"
    );
    std::fs::remove_dir_all(&a.config_dir)?;

    pool.add_worker(&pool.machine("b", 1))?;
    pool.submit(&doc("moved").tasks(&[("two", "Second MARK-2 here.")]).json())
        .await?;
    pool.wait_done(&plan_id("moved"), 2, Duration::from_secs(120))
        .await?;
    let results = pool.results(&plan_id("moved")).await?;
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].session_id, results[1].session_id,
        "same session id"
    );
    assert_ne!(results[0].worker, results[1].worker);
    let req = first_request_with(&pool.standin.requests()?, "MARK-2")
        .cloned()
        .expect("task 2 ran");
    assert_eq!(
        markers(&req),
        ["MARK-1", "MARK-2"],
        "full history at the model"
    );
    assert_eq!(pool.stat(Counter::Handoffs).await?, 1);
    Ok(())
}

/// A session idle past its TTL: the next task runs in a new session whose first request
/// carries the recap; the fallback is counted with reason `expired`.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_falls_back_to_a_recap() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let opts = json!({"session_ttl_secs": 2});
    pool.submit(
        &doc("idle")
            .tasks(&[("one", "File: notes.txt\n```\nhello\n```\nFirst MARK-1.")])
            .options(opts)
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("idle"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let mut c = pool.conn().await?;
    let ttl: i64 = c.ttl(pool.keys.session(&"idle".parse()?)).await?;
    assert!((1..=2).contains(&ttl), "session TTL {ttl}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let exists: bool = c.exists(pool.keys.session(&"idle".parse()?)).await?;
    assert!(!exists, "the idle session expired");

    pool.submit(&doc("idle").tasks(&[("two", "Second MARK-2.")]).json())
        .await?;
    pool.wait_done(&plan_id("idle"), 2, Duration::from_secs(120))
        .await?;
    let results = pool.results(&plan_id("idle")).await?;
    assert_ne!(
        results[0].session_id, results[1].session_id,
        "a new session"
    );
    let requests = pool.standin.requests()?;
    let req = first_request_with(&requests, "MARK-2").expect("task 2 ran");
    let first = prompts_of(req);
    assert_eq!(first.len(), 1, "a new conversation: {first:?}");
    assert!(
        first[0].contains("could not be resumed: expired")
            && first[0].contains("MARK-1")
            && first[0].contains("notes.txt"),
        "recap: {}",
        first[0]
    );
    let ev = pool
        .events(&plan_id("idle"))
        .await?
        .into_iter()
        .find(|e| e.kind() == EventKind::SessionFallback)
        .expect("fallback event");
    assert_eq!(body!(ev, SessionFallback).reason, FallbackReason::Expired);
    assert_eq!(pool.stat(Counter::FallbacksExpired).await?, 1);
    Ok(())
}

/// The committed transcript deleted everywhere, or corrupted: each ends in a working task with a
/// fallback of the matching reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_or_corrupt_transcript_falls_back_with_its_reason() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let a = pool.machine("a", 1);
    pool.add_worker(&a)?;
    for (plan, reason) in [
        ("lost", "transcript_missing"),
        ("corrupt", "transcript_corrupt"),
    ] {
        pool.submit(&doc(plan).tasks(&[("one", "First MARK-1.")]).json())
            .await?;
        pool.wait_state(
            &plan_id(plan),
            &[PlanState::Completed],
            Duration::from_secs(120),
        )
        .await?;
        let sid = pool.results(&plan_id(plan)).await?[0].session_id;
        let mut c = pool.conn().await?;
        let key = pool.keys.transcript(&plan.parse()?);
        if reason == "transcript_missing" {
            let _: () = c.del(&key).await?;
        } else {
            let _: () = c
                .set(&key, b"this is not a gzip archive".as_slice())
                .await?;
        }
        // And the worker's own copy.
        for entry in walk(&a.config_dir.join("projects")) {
            if entry.file_name().and_then(|n| n.to_str()) == Some(&format!("{sid}.jsonl")) {
                std::fs::remove_file(&entry)?;
            }
        }
        pool.submit(&doc(plan).tasks(&[("two", "Second MARK-2.")]).json())
            .await?;
        pool.wait_done(&plan_id(plan), 2, Duration::from_secs(120))
            .await?;
        let results = pool.results(&plan_id(plan)).await?;
        assert_eq!(results.len(), 2, "{plan}: the task still ran");
        assert_ne!(results[1].session_id, sid);
        let ev = pool
            .events(&plan_id(plan))
            .await?
            .into_iter()
            .find(|e| e.kind() == EventKind::SessionFallback)
            .expect("fallback event");
        assert_eq!(body!(ev, SessionFallback).reason.as_str(), reason, "{plan}");
        assert_eq!(pool.stat(Counter::fallback(reason.parse()?)).await?, 1);
    }
    Ok(())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A rotation threshold between the context of task 2 and task 3: task 3 runs in a new
/// session seeded with the recap.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_past_the_context_threshold_rotates_with_a_recap() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut a = pool.machine("a", 1);
    let i = pool.add_worker(&a)?;
    pool.submit(&doc("rotate").tasks(&[("one", "First MARK-1.")]).json())
        .await?;
    pool.wait_state(
        &plan_id("rotate"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let mut c = pool.conn().await?;
    let record: String = c.get(pool.keys.session(&"rotate".parse()?)).await?;
    let ctx1 = serde_json::from_str::<Value>(&record)?["context_tokens"]
        .as_u64()
        .expect("context size");
    assert!(ctx1 > 0);
    // Task 2 adds about 10k tokens (40 KB of prompt): the threshold sits between.
    pool.workers[i].stop(Duration::from_secs(20));
    a.extra
        .extend(["--rotate-at-tokens".into(), (ctx1 + 5_000).to_string()]);
    pool.add_worker(&a)?;
    let big = format!(
        "Second MARK-2. Background: {}",
        "lorem ipsum dolor ".repeat(2300)
    );
    pool.submit(
        &doc("rotate")
            .tasks(&[("two", &big), ("three", "Third MARK-3.")])
            .json(),
    )
    .await?;
    pool.wait_done(&plan_id("rotate"), 3, Duration::from_secs(120))
        .await?;
    let r = pool.results(&plan_id("rotate")).await?;
    assert_eq!(r[0].session_id, r[1].session_id, "task 2 resumed");
    assert_ne!(r[1].session_id, r[2].session_id, "task 3 rotated");
    let requests = pool.standin.requests()?;
    let first = prompts_of(first_request_with(&requests, "MARK-3").expect("task 3 ran"));
    assert_eq!(first.len(), 1);
    assert!(
        first[0].contains("grew past the context limit")
            && first[0].contains("MARK-1")
            && first[0].contains("MARK-2")
    );
    assert!(pool
        .events(&plan_id("rotate"))
        .await?
        .iter()
        .any(|e| e.kind() == EventKind::SessionRotated));
    assert_eq!(pool.stat(Counter::Rotations).await?, 1);
    Ok(())
}

/// `options.context`: `none` starts every task in a new conversation holding its prompt alone;
/// `recap` starts each in a new conversation seeded with the tasks before. The files still
/// follow (one workspace), only the conversation does not.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_can_start_every_task_afresh_with_or_without_a_recap() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 2))?;
    for context in ["none", "recap"] {
        let plan = format!("ctx-{context}");
        let p = |k: usize| format!("Task {context} MARK-{k}.\nFile: f{k}.txt\n```\n{k}\n```");
        pool.submit(
            &doc(&plan)
                .prompts(&[&p(1), &p(2), &p(3)])
                .options(json!({"context": context}))
                .json(),
        )
        .await?;
    }
    let requests = loop_until_done(&pool, &["ctx-none", "ctx-recap"]).await?;
    for context in ["none", "recap"] {
        let plan = plan_id(format!("ctx-{context}"));
        let results = pool.results(&plan).await?;
        let sessions: std::collections::HashSet<_> = results.iter().map(|r| r.session_id).collect();
        assert_eq!(sessions.len(), 3, "{context}: a new session per task");
        let third = prompts_of(
            requests
                .iter()
                .find(|r| {
                    prompts_of(r)
                        .last()
                        .is_some_and(|p| p.contains(&format!("Task {context} MARK-3")))
                })
                .expect("task 3 asked the model"),
        );
        assert_eq!(third.len(), 1, "{context}: one prompt in the conversation");
        let recapped = third[0].contains("MARK-1") && third[0].contains("MARK-2");
        assert_eq!(recapped, context == "recap", "{context}: {}", third[0]);
        if context == "recap" {
            assert!(
                third[0].contains("options.context is recap"),
                "{}",
                third[0]
            );
            assert!(third[0].contains("f2.txt"), "the recap names the files");
        }
        let events = pool.events(&plan).await?;
        let created = events
            .iter()
            .filter(|e| e.kind() == EventKind::SessionCreated)
            .count();
        assert_eq!(created, 3, "{context}: session_created per task");
        assert!(!events.iter().any(|e| matches!(
            e.kind(),
            EventKind::SessionResumed | EventKind::SessionFallback
        )));
    }
    Ok(())
}

/// Waits until every plan completed; returns the stand-in's requests.
async fn loop_until_done(pool: &Pool, plans: &[&str]) -> anyhow::Result<Vec<Value>> {
    for plan in plans {
        pool.wait_state(
            &plan_id(plan),
            &[PlanState::Completed],
            Duration::from_secs(120),
        )
        .await?;
    }
    pool.standin.requests()
}

/// A task fails after the CLI wrote part of a turn (a file written, then the stream hangs): the
/// retry's request carries the committed conversation only.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_resumes_from_the_committed_turn_not_the_partial_one() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut a = pool.machine("a", 1);
    a.extra.extend(["--silence-timeout".into(), "3s".into()]);
    pool.add_worker(&a)?;
    let second = "Second MARK-2.\nFile: part.txt\n```\npartial\n```\n[[standin:hang after_writes=1 times=1]]";
    pool.submit(
        &doc("partial")
            .tasks(&[("one", "First MARK-1."), ("two", second)])
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("partial"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let r = pool.results(&plan_id("partial")).await?;
    assert_eq!(r[1].attempts, 2, "the task was retried");
    assert_eq!(r[0].session_id, r[1].session_id);
    let requests = pool.standin.requests()?;
    let task2: Vec<&Value> = requests
        .iter()
        .filter(|q| prompts_of(q).last().is_some_and(|p| p.contains("MARK-2")))
        .collect();
    // Attempt 1: the prompt, then the tool result (where it hung). Attempt 2 starts afresh from
    // the committed turn: task 2's prompt appears once, with no tool result of attempt 1.
    let retry_first = task2
        .iter()
        .find(|q| {
            markers(q) == ["MARK-1", "MARK-2"]
                && tool_results(q) == 0
                && !std::ptr::eq(**q, task2[0])
        })
        .expect("the retry's first request");
    assert_eq!(
        prompts_of(retry_first)
            .iter()
            .filter(|p| p.contains("MARK-2"))
            .count(),
        1
    );
    assert!(pool
        .events(&plan_id("partial"))
        .await?
        .iter()
        .any(|e| e.kind() == EventKind::TaskRetrying));
    Ok(())
}

fn tool_results(req: &Value) -> usize {
    req["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .count()
}

/// A plan whose budget its third task would exceed is paused there with reason `budget`, not
/// failed; `baton budget PLAN --usd` raises it (refusing an amount not above what was spent), and
/// the plan resumes in the same conversation: the model sees every earlier task.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_pauses_the_plan_and_a_raised_one_resumes_its_conversation(
) -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    // What tasks cost depends on the stand-in's token counts: measure the same three tasks on a
    // plan of the same shape first. Each task writes a file, so it takes two model calls, and the
    // CLI checks the budget before the second: the third task stops after its first call.
    let tasks = [
        ("one", "First MARK-1.\nFile: one.txt\n```\n1\n```\n"),
        ("two", "Second MARK-2.\nFile: two.txt\n```\n2\n```\n"),
        ("three", "Third MARK-3.\nFile: three.txt\n```\n3\n```\n"),
    ];
    pool.submit(&doc("calib").tasks(&tasks).json()).await?;
    pool.wait_done(&plan_id("calib"), 3, Duration::from_secs(120))
        .await?;
    let costs: Vec<f64> = pool
        .results(&plan_id("calib"))
        .await?
        .iter()
        .map(|r| r.cost_usd)
        .collect();
    assert!(
        costs.iter().all(|c| *c > 0.0),
        "the CLI reports a cost: {costs:?}"
    );
    let budget = costs[0] + costs[1] + costs[2] / 4.0;
    pool.submit(
        &doc("spent")
            .tasks(&tasks)
            .options(json!({"max_budget_usd": budget}))
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("spent"),
        &[PlanState::Paused],
        Duration::from_secs(120),
    )
    .await?;
    let r = pool.results(&plan_id("spent")).await?;
    assert_eq!(
        r.len(),
        2,
        "two tasks fit the budget of ${budget:.4} (costs {costs:?})"
    );
    let ev = pool
        .events(&plan_id("spent"))
        .await?
        .into_iter()
        .find(|e| e.kind() == EventKind::PlanBudgetExhausted)
        .expect("budget event");
    assert_eq!(body!(ev, PlanBudgetExhausted).reason, "budget");
    assert_eq!(ev.task_index, Some(2));
    let out = baton(&pool.redis, &["status", "spent", "--json"], None)?;
    let status: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["tasks_pending"], 1);
    assert_eq!(status["state"], "paused");
    assert_eq!(status["pause_reason"], "budget");
    let text = baton(&pool.redis, &["status", "spent"], None)?;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("baton budget spent --usd"), "{text}");

    // Not above what it spent: refused, naming the amounts; nothing submitted.
    let low = format!("{:.6}", costs[0]);
    let out = baton(&pool.redis, &["budget", "spent", "--usd", &low], None)?;
    assert_eq!(
        out.status.code(),
        Some(baton_producer::exit::BAD_INPUT.into())
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not above what plan spent has spent"),
        "{err}"
    );

    let out = baton(&pool.redis, &["budget", "spent", "--usd", "5"], None)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pool.wait_state(
        &plan_id("spent"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let events = pool.events(&plan_id("spent")).await?;
    let raised = events
        .iter()
        .find(|e| e.kind() == EventKind::PlanBudgetRaised)
        .expect("plan_budget_raised");
    assert_eq!(body!(raised, PlanBudgetRaised).max_budget_usd, 5.0);
    assert!(events.iter().any(|e| e.kind() == EventKind::PlanResumed));
    let results = pool.results(&plan_id("spent")).await?;
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].session_id, results[2].session_id,
        "one conversation"
    );
    let requests = pool.standin.requests()?;
    let last = requests
        .iter()
        .rev()
        .find(|r| prompts_of(r).iter().any(|p| p.contains("MARK-3")))
        .expect("task 3 reached the model");
    let seen = markers(last);
    for m in ["MARK-1", "MARK-2", "MARK-3"] {
        assert!(
            seen.iter().any(|s| s == m),
            "after the resume the model saw {seen:?}"
        );
    }
    Ok(())
}

/// A session's first commit stores the transcript whole; each later commit only what its turn
/// added (a chunk), so its size does not grow with the plan. A worker on another machine
/// restores base and chunks (digest checked), compacts them into one pack, and the conversation
/// goes on with every earlier turn.
#[tokio::test(flavor = "multi_thread")]
async fn later_commits_send_only_their_turn_and_a_handoff_compacts() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let pad = "y".repeat(20_000);
    let prompts: Vec<String> = (1..=4)
        .map(|k| format!("Step GROW-{k}.\nFile: grow-{k}.txt\n```\n{k}{pad}\n```\n"))
        .collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    pool.submit(&doc("chunks").prompts(&refs).json()).await?;
    pool.wait_done(&plan_id("chunks"), 4, Duration::from_secs(120))
        .await?;

    let sent: Vec<u64> = pool
        .events(&plan_id("chunks"))
        .await?
        .iter()
        .filter(|e| e.kind() == EventKind::TaskSucceeded)
        .filter_map(|e| body!(e, TaskSucceeded).transcript_bytes)
        .collect();
    assert_eq!(sent.len(), 4, "every commit says what it sent: {sent:?}");
    let plan: baton_core::PlanId = "chunks".parse()?;
    let mut conn = pool.conn().await?;
    let chunks: u64 =
        redis::AsyncCommands::llen(&mut conn, pool.keys.transcript_chunks(&plan)).await?;
    assert_eq!(chunks, 3, "tasks 2-4 appended chunks");
    // Each chunk holds one turn, not the conversation so far.
    let (smallest, largest) = (
        sent[1..].iter().min().unwrap(),
        sent[1..].iter().max().unwrap(),
    );
    assert!(
        *largest < smallest * 2,
        "chunks stay the size of a turn as the plan grows: {sent:?}"
    );

    // Another machine continues the plan: restore, compaction, one more turn.
    pool.workers[0].stop(Duration::from_secs(30));
    let mut b = pool.separate_machine("b", 1);
    b.log_filter = "info,baton_worker=debug".into();
    let ib = pool.add_worker(&b)?;
    pool.submit(&doc("chunks").task("t5", "Step GROW-5, the last.").json())
        .await?;
    pool.wait_done(&plan_id("chunks"), 5, Duration::from_secs(120))
        .await?;
    // The compaction's reply is read as written: no warning, and the worker says it compacted.
    let log = pool.workers[ib].log();
    assert!(
        !log.contains("could not compact"),
        "the handoff logged a compaction failure:\n{log}"
    );
    assert!(log.contains("transcript compacted"), "{log}");
    let chunks: u64 =
        redis::AsyncCommands::llen(&mut conn, pool.keys.transcript_chunks(&plan)).await?;
    assert_eq!(chunks, 1, "compacted on restore, then task 5's own chunk");
    let requests = pool.standin.requests()?;
    let req = first_request_with(&requests, "GROW-5").expect("task 5 reached the model");
    let want: Vec<String> = (1..=5).map(|j| format!("GROW-{j}")).collect();
    let seen: Vec<String> = prompts_of(req)
        .iter()
        .filter_map(|p| p.split("Step ").nth(1))
        .map(|s| s.split([',', '.']).next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(seen, want, "task 5 carried every earlier turn");
    let results = pool.results(&plan_id("chunks")).await?;
    assert_eq!(results.len(), 5, "every task committed");
    assert!(results
        .iter()
        .all(|r| r.session_id == results[0].session_id));
    Ok(())
}

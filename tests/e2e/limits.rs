//! Many teams, one pool: limits per concurrency key (`baton limit`) and budgets per key and day
//! (`baton budget --key`), with the real CLI, a real redis-server and the `baton` CLI a user
//! would type.

use baton_tests::cli::run;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{ensure, Context};
use baton_core::{Event, EventKind};
use baton_tests::*;
use serde_json::{json, Value};

fn at(e: &Event) -> SystemTime {
    humantime::parse_rfc3339_weak(&e.at).expect("event times are RFC 3339")
}

/// When a plan ran: its first `task_started` to its `plan_completed`.
async fn span_of(pool: &Pool, plan: &str) -> anyhow::Result<(SystemTime, SystemTime)> {
    let events = pool.events(&plan_id(plan)).await?;
    let first = events
        .iter()
        .find(|e| e.kind() == EventKind::TaskStarted)
        .context("a task started")?;
    let last = events
        .iter()
        .find(|e| e.kind() == EventKind::PlanCompleted)
        .context("the plan completed")?;
    Ok((at(first), at(last)))
}

fn overlap(a: (SystemTime, SystemTime), b: (SystemTime, SystemTime)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// A key at limit 1 runs its three plans one after another, while plans without the key run
/// alongside them; `baton limit list` shows one running and the others waiting. Bad keys and
/// limits are refused with the field named.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_at_limit_one_runs_its_plans_one_after_another() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    run(&pool, &["limit", "set", "team:a", "1"])?;
    for (args, says) in [
        (&["limit", "set", "team a", "1"][..], "KEY"),
        (&["limit", "set", "team:a", "0"][..], "LIMIT"),
        (&["limit", "set", "team:a", "many"][..], "LIMIT"),
    ] {
        let out = baton(&pool.redis, args, None)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
    let slow = |p: &str, k: usize| format!("Plan {p} step {k}. [[standin:sleep 1200]]");
    for p in ["k1", "k2", "k3"] {
        let d = doc(p)
            .prompts(&[&slow(p, 1), &slow(p, 2)])
            .options(json!({"concurrency_key": "team:a"}));
        pool.submit(&d.json()).await?;
    }
    for p in ["free1", "free2"] {
        pool.submit(&doc(p).prompts(&[&slow(p, 1), &slow(p, 2)]).json())
            .await?;
    }
    pool.add_worker(&pool.machine("a", 4))?;
    // While they run: one of the key's plans runs, the others wait.
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let out = run(&pool, &["limit", "list", "--json"])?;
        let v: Value = serde_json::from_str(&out)?;
        let key = v["keys"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["key"] == "team:a").cloned());
        if let Some(k) = key.filter(|k| k["running"] == 1 && k["waiting"] == 2) {
            break k;
        }
        ensure!(
            Instant::now() < deadline,
            "never 1 running and 2 waiting: {out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listed["limit"], 1);
    for p in ["k1", "k2", "k3", "free1", "free2"] {
        pool.wait_state(
            &plan_id(p),
            &[PlanState::Completed],
            Duration::from_secs(120),
        )
        .await?;
    }
    let mut keyed = Vec::new();
    for p in ["k1", "k2", "k3"] {
        keyed.push(span_of(&pool, p).await?);
    }
    for (i, a) in keyed.iter().enumerate() {
        for b in &keyed[i + 1..] {
            assert!(!overlap(*a, *b), "plans of team:a overlapped: {keyed:?}");
        }
    }
    let free = span_of(&pool, "free1").await?;
    assert!(
        keyed.iter().any(|k| overlap(*k, free)),
        "a plan without the key ran alongside: {free:?} vs {keyed:?}"
    );
    let text = run(&pool, &["limit", "list"])?;
    assert!(text.contains("team:a"), "{text}");
    let status = run(&pool, &["status", "k1"])?;
    assert!(status.contains("key        team:a"), "{status}");
    let (_dashboard, url) = pool.start_dashboard(None)?;
    let host = url.trim_start_matches("http://").to_owned();
    let page = crate::dashboard::get_page_as(&url, "/", &host)?;
    assert!(
        page.contains("Limits per key") && page.contains("team:a"),
        "the overview lists the key: {page}"
    );
    // Removing the limit empties nothing that is not waiting; the key stays listed.
    let removed = run(&pool, &["limit", "remove", "team:a"])?;
    assert!(removed.contains("0 waiting plans let go"), "{removed}");
    Ok(())
}

/// A document's concurrency key is checked, naming the field.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_concurrency_key_is_dead_lettered_with_the_field_named() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let d = doc("badkey")
        .prompts(&["x"])
        .options(json!({"concurrency_key": "team {a}"}));
    pool.submit(&d.json()).await?;
    let letter = pool
        .wait_dead_letter(&plan_id("badkey"), Duration::from_secs(30))
        .await?;
    assert_eq!(letter.field.as_deref(), Some("options.concurrency_key"));
    Ok(())
}

/// A key's daily budget pauses both of its plans once their tasks have spent it (the running
/// tasks finish); raising it lets both go on and complete. `baton limit list` shows the day's
/// spend.
#[tokio::test(flavor = "multi_thread")]
async fn a_team_budget_pauses_its_plans_until_raised() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    run(
        &pool,
        &["budget", "--key", "team:x", "--per-day", "0.000001"],
    )?;
    let out = baton(
        &pool.redis,
        &["budget", "--key", "team:x", "--per-day", "0"],
        None,
    )?;
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("--per-day"),
        "a negative budget is refused"
    );
    for p in ["tx1", "tx2"] {
        let d = doc(p)
            .prompts(&[
                &format!("Plan {p} MARK-1. [[standin:sleep 500]]"),
                &format!("Plan {p} MARK-2."),
            ])
            .options(json!({"concurrency_key": "team:x"}));
        pool.submit(&d.json()).await?;
    }
    pool.add_worker(&pool.machine("a", 2))?;
    for p in ["tx1", "tx2"] {
        pool.wait_state(&plan_id(p), &[PlanState::Paused], Duration::from_secs(120))
            .await?;
        let events = pool.events(&plan_id(p)).await?;
        let ev = events
            .iter()
            .find(|e| e.kind() == EventKind::PlanBudgetExhausted)
            .context("plan_budget_exhausted")?;
        let b = body!(ev, PlanBudgetExhausted);
        assert_eq!(b.key.as_deref(), Some("team:x"));
        let next_day = (baton_core::time::now_millis() / 86_400_000 + 1) * 86_400_000;
        assert_eq!(b.until_ms, Some(next_day), "until the next UTC day");
        assert_eq!(
            pool.done(&plan_id(p)).await?,
            1,
            "the first task finished, no more"
        );
        let status: Value = serde_json::from_str(&run(&pool, &["status", p, "--json"])?)?;
        assert_eq!(status["pause_key"], "team:x");
    }
    let listed: Value = serde_json::from_str(&run(&pool, &["limit", "list", "--json"])?)?;
    let key = listed["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["key"] == "team:x").cloned())
        .context("team:x listed")?;
    assert!(
        key["spent_today_usd"].as_f64().unwrap_or(0.0) > 0.0,
        "{key}"
    );
    let raised = run(&pool, &["budget", "--key", "team:x", "--per-day", "100"])?;
    assert!(raised.contains("2 paused plans let go"), "{raised}");
    for p in ["tx1", "tx2"] {
        pool.wait_state(
            &plan_id(p),
            &[PlanState::Completed],
            Duration::from_secs(120),
        )
        .await?;
        let results = pool.results(&plan_id(p)).await?;
        assert_eq!(results.len(), 2);
        assert_eq!(
            results[0].session_id, results[1].session_id,
            "one conversation"
        );
        // Its first hold after the raise resumed it (acquire.lua publishes the event).
        let events = pool.events(&plan_id(p)).await?;
        assert!(
            events
                .iter()
                .any(|e| e.kind() == baton_core::EventKind::PlanResumed),
            "{p}: plan_resumed"
        );
    }
    Ok(())
}

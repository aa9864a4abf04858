//! Session modes: a warm worker runs a held plan's tasks in one CLI process, a cold worker
//! starts one per task, and both keep the same conversation, costs and handoff. (The rest of
//! the suite runs in whichever mode `BATON_SESSION_MODE` names; `scripts/test.sh` runs it in
//! both.)

use std::time::Duration;

use baton_core::event::AttemptMode;
use baton_core::EventKind;
use baton_tests::*;
use serde_json::json;

/// Runs a 4-task plan, then a follow-up task, on one worker in `mode`; returns the CLI starts
/// seen after the plan and after the follow-up.
async fn run_plan_in(mode: &str) -> anyhow::Result<(usize, usize)> {
    let mut pool = Pool::start()?;
    let cli = CountingCli::new(pool.dir.path())?;
    let mut opts = pool.machine("a", 1);
    opts.claude_bin = cli.bin.clone();
    opts.extra.extend(cli.sandbox_flags());
    opts.extra.extend(["--session-mode".into(), mode.into()]);
    pool.add_worker(&opts)?;
    let plan = format!("modes-{mode}");
    pool.submit(&marked_plan(&plan, 4)).await?;
    pool.wait_state(
        &plan_id(&plan),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let after_plan = cli.starts().len();

    let results = pool.results(&plan_id(&plan)).await?;
    assert_eq!(results.len(), 4);
    assert!(
        results
            .iter()
            .all(|r| r.session_id == results[0].session_id),
        "{mode}: one session throughout"
    );
    // Each task's request carried every earlier task: the conversation continued.
    let requests = pool.standin.requests()?;
    for k in 1..=4 {
        let req = first_request_with(&requests, &format!("{plan}-T{k}:"))
            .unwrap_or_else(|| panic!("{mode}: task {k} reached the model"));
        let seen: Vec<bool> = (1..=k)
            .map(|j| {
                prompts_of(req)
                    .iter()
                    .any(|p| p.contains(&format!("{plan}-T{j}:")))
            })
            .collect();
        assert!(
            seen.iter().all(|s| *s),
            "{mode}: task {k} carried tasks 1..{k}: {seen:?}"
        );
    }
    // Costs are per task (a warm process reports a running total; baton takes differences),
    // and they add up to the plan's total.
    // A running total at task 4 would be at least the sum of tasks 1-3.
    assert!(results.iter().all(|r| r.cost_usd > 0.0));
    let earlier: f64 = results[..3].iter().map(|r| r.cost_usd).sum();
    assert!(
        results[3].cost_usd < earlier,
        "{mode}: task 4 cost {} is one task's cost, not a running total ({earlier} before it)",
        results[3].cost_usd
    );
    let total: f64 = pool
        .plan_field(&plan_id(&plan), PlanField::CostUsd)
        .await?
        .unwrap_or_default()
        .parse()?;
    let sum: f64 = results.iter().map(|r| r.cost_usd).sum();
    assert!(
        (total - sum).abs() < 1e-6,
        "{mode}: plan total {total} = {sum}"
    );
    let events = pool.events(&plan_id(&plan)).await?;
    let started: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == EventKind::TaskStarted)
        .collect();
    assert_eq!(started.len(), 4);
    for e in &started {
        assert_eq!(body!(e, TaskStarted).mode.as_str(), mode);
    }
    let succeeded: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == EventKind::TaskSucceeded)
        .collect();
    assert_eq!(succeeded.len(), 4, "one task_succeeded per task");
    for (i, e) in succeeded.iter().enumerate() {
        let s = body!(e, TaskSucceeded);
        let st = s
            .stamps
            .expect("task_succeeded carries the worker's stamps");
        // The claim is the hold's: only its first task says when it was.
        assert_eq!(st.claimed_ms.is_some(), i == 0, "{mode}: task {i}: {st:?}");
        let steps = [
            st.claimed_ms.unwrap_or(st.began_ms),
            st.began_ms,
            st.prepared_ms,
            s.run_started_ms,
            s.result_at_ms,
            s.run_ended_ms,
            st.committing_ms,
        ];
        assert!(
            steps.windows(2).all(|w| w[0] <= w[1]),
            "{mode}: task {i}: claim, begin, prepared, run, result, end, commit in order: {steps:?}"
        );
    }

    // A follow-up after the plan was released resumes the same conversation.
    let follow = json!({"plan_id": plan, "tasks": [{"id": "t5", "prompt": format!("Task marker {plan}-T5: one more.")}]});
    pool.submit(&follow.to_string()).await?;
    pool.wait_done(&plan_id(&plan), 5, Duration::from_secs(120))
        .await?;
    let results = pool.results(&plan_id(&plan)).await?;
    assert_eq!(results[4].session_id, results[0].session_id);
    let requests = pool.standin.requests()?;
    let req = first_request_with(&requests, &format!("{plan}-T5:")).expect("t5 ran");
    assert!(
        prompts_of(req)
            .iter()
            .any(|p| p.contains(&format!("{plan}-T1:"))),
        "{mode}: the follow-up carried the first task"
    );
    Ok((after_plan, cli.starts().len()))
}

/// Warm: the 4 tasks of one hold run in one CLI process fed stream-json messages; the
/// follow-up (after the plan was released and its process closed) starts one more.
#[tokio::test(flavor = "multi_thread")]
async fn a_warm_worker_runs_a_held_plan_in_one_cli_process() -> anyhow::Result<()> {
    let (after_plan, after_follow_up) = run_plan_in("warm").await?;
    assert_eq!(after_plan, 1, "one CLI process for the whole hold");
    assert_eq!(after_follow_up, 2, "a new process for the follow-up");
    Ok(())
}

/// Cold: one `claude -p` process per task.
#[tokio::test(flavor = "multi_thread")]
async fn a_cold_worker_starts_one_cli_process_per_task() -> anyhow::Result<()> {
    let (after_plan, after_follow_up) = run_plan_in("cold").await?;
    assert_eq!(after_plan, 4);
    assert_eq!(after_follow_up, 5);
    Ok(())
}

/// The fairness bound ends a hold: the warm process is closed with it, and the plan's next
/// hold (here on another machine) resumes from the committed transcript.
#[tokio::test(flavor = "multi_thread")]
async fn a_warm_session_hands_over_between_machines_at_every_hold() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let cli = CountingCli::new(pool.dir.path())?;
    for m in ["a", "b"] {
        let mut opts = pool.machine(m, 1);
        opts.claude_bin = cli.bin.clone();
        opts.extra.extend(cli.sandbox_flags());
        opts.extra.extend([
            "--session-mode".into(),
            "warm".into(),
            "--max-tasks-per-hold".into(),
            "2".into(),
        ]);
        pool.add_worker(&opts)?;
    }
    pool.submit(&marked_plan("handover", 6)).await?;
    pool.wait_state(
        &plan_id("handover"),
        &[PlanState::Completed],
        Duration::from_secs(180),
    )
    .await?;
    let results = pool.results(&plan_id("handover")).await?;
    assert!(!results.is_empty(), "the plan committed");
    assert!(results
        .iter()
        .all(|r| r.session_id == results[0].session_id));
    let starts = cli.starts();
    assert_eq!(
        starts.len(),
        3,
        "one process per hold of two tasks: {starts:?}"
    );
    assert!(starts
        .iter()
        .all(|s| s.contains("--input-format=stream-json")));
    assert_eq!(
        starts.iter().filter(|s| s.contains("--resume=")).count(),
        2,
        "the later holds resume"
    );
    let requests = pool.standin.requests()?;
    let last = first_request_with(&requests, "handover-T6:").expect("t6 ran");
    for j in 1..=5 {
        assert!(
            prompts_of(last)
                .iter()
                .any(|p| p.contains(&format!("handover-T{j}:"))),
            "task 6 carried task {j}"
        );
    }
    Ok(())
}

/// A benchmark executor runs no CLI, and its `task_started` events and heartbeat info say so
/// (`instant`, not a session mode it does not have).
#[tokio::test(flavor = "multi_thread")]
async fn a_benchmark_executor_says_what_ran_its_tasks() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut m = pool.machine("bench", 1);
    m.extra.extend(["--executor".into(), "instant".into()]);
    pool.add_worker(&m)?;
    let plan = plan_id("instant");
    pool.submit(&doc("instant").prompts(&["One.", "Two."]).json())
        .await?;
    pool.wait_state(&plan, &[PlanState::Completed], Duration::from_secs(60))
        .await?;
    let modes: Vec<AttemptMode> = pool
        .events(&plan)
        .await?
        .iter()
        .filter(|e| e.kind() == EventKind::TaskStarted)
        .map(|e| body!(e, TaskStarted).mode)
        .collect();
    assert_eq!(modes, [AttemptMode::Instant, AttemptMode::Instant]);
    let mut c = pool.conn().await?;
    let info: Vec<String> = redis::AsyncCommands::hvals(&mut c, pool.keys.worker_info()).await?;
    assert_eq!(info.len(), 1, "{info:?}");
    let info: serde_json::Value = serde_json::from_str(&info[0])?;
    assert_eq!(info["mode"], "instant", "{info}");
    Ok(())
}

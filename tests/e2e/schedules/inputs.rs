//! Schedules through the `baton` CLI a user types: every input refused with its field named,
//! run-now, remove, list, and a schedule whose plan runs after another schedule's.

use super::*;

/// Every new input is checked at `add`, and the refusal names what is wrong: the name, the
/// cron, the zone, the plan file, and fields of the plan document (as `baton enqueue` names
/// them, plus those a recurring plan may not set).
#[tokio::test(flavor = "multi_thread")]
async fn schedule_inputs_are_refused_with_the_field_named() -> Result<()> {
    let pool = Pool::start()?;
    let good = plan_file(&pool, "good", &one_task())?;
    let long = "x".repeat(41);
    for (name, cron, zone, plan, field) in refusals(&pool, &good, &long)? {
        let args = [
            "schedule", "add", name, "--cron", cron, "--tz", zone, "--plan", &plan,
        ];
        let err = refused(&pool, &args)?;
        ensure!(err.contains(field), "{args:?}: {err} does not name {field}");
    }
    // Nothing was stored; a good one is, once.
    ensure!(run(&pool, &["schedule", "list"])?.contains("no schedules"));
    run(
        &pool,
        &[
            "schedule",
            "add",
            "n1",
            "--cron",
            "0 0 2 * * *",
            "--tz",
            "Europe/Paris",
            "--plan",
            &good,
        ],
    )?;
    let err = refused(
        &pool,
        &[
            "schedule",
            "add",
            "n1",
            "--cron",
            "0 0 2 * * *",
            "--plan",
            &good,
        ],
    )?;
    ensure!(err.contains("exists"), "{err}");
    let err = refused(&pool, &["schedule", "remove", "nope"])?;
    ensure!(err.contains("no schedule nope"), "{err}");
    Ok(())
}

/// `run-now` submits the plan at once (a plan id of its own, the ticks untouched); `list
/// --json` shows it; `remove` stops the ticks (none fires after it) and run-now is refused.
#[tokio::test(flavor = "multi_thread")]
async fn run_now_submits_at_once_and_remove_stops_the_ticks() -> Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&instant(&pool, "a"))?;
    let file = plan_file(&pool, "often", &one_task())?;
    run(
        &pool,
        &[
            "schedule",
            "add",
            "yearly",
            "--cron",
            "0 0 3 1 1 *",
            "--plan",
            &file,
        ],
    )?;
    let plan = plan_id(run(&pool, &["schedule", "run-now", "yearly"])?.trim());
    ensure!(plan.as_str().starts_with("yearly-now-"), "{plan}");
    pool.wait_done(&plan, 1, Duration::from_secs(20)).await?;
    let list: serde_json::Value =
        serde_json::from_str(&run(&pool, &["schedule", "list", "--json"])?)?;
    ensure!(
        list[0]["last_run_now"]["plan_id"] == plan.as_str(),
        "{list}"
    );
    ensure!(
        list[0]["last_fired"].is_null()
            && list[0]["next_tick"]
                .as_str()
                .is_some_and(|t| t.contains("-01-01T03:00:00Z")),
        "{list}"
    );
    // An every-second schedule, removed after its second tick: nothing fires after that.
    run(
        &pool,
        &[
            "schedule",
            "add",
            "often",
            "--cron",
            "* * * * * *",
            "--plan",
            &file,
        ],
    )?;
    wait_ticks(&pool, "often", 2, Duration::from_secs(15)).await?;
    run(&pool, &["schedule", "remove", "often"])?;
    let at_removal = tick_plans(&pool, "often").await?.len();
    // Nothing fires after that, seen against a schedule that does: the scheduler fires every
    // schedule due in one pass, so once a marker added after the removal has ticked, the
    // passes where `often` was due have run.
    run(
        &pool,
        &[
            "schedule",
            "add",
            "marker",
            "--cron",
            "* * * * * *",
            "--plan",
            &file,
        ],
    )?;
    wait_ticks(&pool, "marker", 3, Duration::from_secs(15)).await?;
    let after = tick_plans(&pool, "often").await?;
    // A tick already fired when `remove` ran may still be ingested: at most one more.
    ensure!(
        after.len() <= at_removal + 1,
        "{after:?} after {at_removal}"
    );
    wait_ticks(&pool, "marker", 5, Duration::from_secs(15)).await?;
    ensure!(
        tick_plans(&pool, "often").await? == after,
        "ticks after remove"
    );
    run(&pool, &["schedule", "remove", "marker"])?;
    refused(&pool, &["schedule", "run-now", "often"])?;
    each_ran_once(&pool, &after).await?;
    Ok(())
}

/// A schedule whose plan names `schedule:build` in `after` runs each tick after the plan
/// `build` fired for the same tick: the reference is resolved when it fires, and the two fire
/// in that order.
#[tokio::test(flavor = "multi_thread")]
async fn after_can_name_another_schedule() -> Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&instant(&pool, "a"))?;
    let build = plan_file(&pool, "build", &one_task())?;
    let deploy = plan_file(
        &pool,
        "deploy",
        &serde_json::json!({
            "tasks": [{"prompt": "Deploy what build made."}], "options": {"after": ["schedule:build"]}
        }),
    )?;
    run(
        &pool,
        &[
            "schedule",
            "add",
            "deploy",
            "--cron",
            "*/3 * * * * *",
            "--plan",
            &deploy,
        ],
    )?;
    run(
        &pool,
        &[
            "schedule",
            "add",
            "build",
            "--cron",
            "*/3 * * * * *",
            "--plan",
            &build,
        ],
    )?;
    let deploys = wait_ticks(&pool, "deploy", 2, Duration::from_secs(20)).await?;
    run(&pool, &["schedule", "remove", "deploy"])?;
    run(&pool, &["schedule", "remove", "build"])?;
    for d in &deploys {
        let b = plan_id(d.as_str().replacen("deploy-", "build-", 1));
        pool.wait_done(d, 1, Duration::from_secs(20)).await?;
        let completed = pool
            .wait_event(&b, EventKind::PlanCompleted, Duration::from_secs(5))
            .await?;
        let started = pool
            .wait_event(d, EventKind::TaskStarted, Duration::from_secs(5))
            .await?;
        ensure!(
            started.at >= completed.at,
            "{d} started {} before {b} completed {}",
            started.at,
            completed.at
        );
    }
    Ok(())
}

/// (name, cron, zone, plan file, what the refusal names).
type Refusal<'a> = (&'a str, &'static str, &'static str, String, &'static str);

/// Inputs `schedule add` refuses: (name, cron, zone, plan file, what the refusal names).
fn refusals<'a>(pool: &Pool, good: &str, long: &'a str) -> Result<Vec<Refusal<'a>>> {
    let good = good.to_owned();
    let doc = |n: &str, d: serde_json::Value| plan_file(pool, n, &d);
    let x = serde_json::json!([{"prompt": "x"}]);
    let every = "* * * * * *";
    // (name, cron, zone, plan file, what the refusal names)
    Ok(vec![
        ("bad.name", every, "UTC", good.clone(), "NAME"),
        (long, every, "UTC", good.clone(), "NAME"),
        ("n1", "*/2 * *", "UTC", good.clone(), "--cron"),
        ("n1", "0 0 0 30 2 *", "UTC", good.clone(), "--cron"),
        ("n1", every, "Mars/Base", good.clone(), "--tz"),
        ("n1", every, "UTC", "/nonexistent.json".into(), "--plan"),
        (
            "n1",
            every,
            "UTC",
            doc("p1", serde_json::json!({"tasks": [{"prompt": ""}]}))?,
            "tasks[0].prompt",
        ),
        (
            "n1",
            every,
            "UTC",
            doc("p2", serde_json::json!({"plan_id": "x", "tasks": x}))?,
            "plan_id",
        ),
        (
            "n1",
            every,
            "UTC",
            doc("p3", serde_json::json!({"workspace": "w", "tasks": x}))?,
            "workspace",
        ),
        (
            "n1",
            every,
            "UTC",
            doc(
                "p4",
                serde_json::json!({"tasks": x, "options": {"after": ["schedule:n1"]}}),
            )?,
            "options.after[0]",
        ),
        (
            "n1",
            every,
            "UTC",
            doc(
                "p5",
                serde_json::json!({"tasks": x, "options": {"permission_mode": "bypassPermissions"}}),
            )?,
            "options.permission_mode",
        ),
    ])
}

/// A tick's plan through the real Claude CLI (against the stand-in): its two tasks run in one
/// conversation (the second answer lists the first prompt), like any enqueued plan's.
#[tokio::test(flavor = "multi_thread")]
async fn a_ticks_plan_runs_through_the_real_cli_in_one_conversation() -> Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let file = plan_file(
        &pool,
        "cli",
        &serde_json::json!({"tasks": [
            {"prompt": "Scheduled step one: note the date."},
            {"prompt": "Scheduled step two: what did I ask before?"}
        ]}),
    )?;
    run(
        &pool,
        &[
            "schedule",
            "add",
            "cli",
            "--cron",
            "*/5 * * * * *",
            "--plan",
            &file,
        ],
    )?;
    let plans = wait_ticks(&pool, "cli", 1, Duration::from_secs(20)).await?;
    run(&pool, &["schedule", "remove", "cli"])?;
    let state = pool
        .wait_done(&plans[0], 2, Duration::from_secs(90))
        .await?;
    ensure!(state == PlanState::Completed, "{state:?}");
    let results = pool.results(&plans[0]).await?;
    ensure!(
        results[1].result.contains("Scheduled step one"),
        "the second task saw the first: {}",
        results[1].result
    );
    Ok(())
}

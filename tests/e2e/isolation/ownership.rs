//! Plan isolation: a plan's workspace is its own while the plan exists (another document naming
//! it, a folder inside it or one containing it is dead-lettered, naming the plan holding it),
//! and is free again once the plan has expired; repository URLs are data (a local path is
//! refused unless the worker allows its folder, and never inside the workspace root or the
//! state dir), and a remote's own config cannot make baton's git run a command.

use std::time::{Duration, Instant};

use baton_tests::git::{self, BareRepo};
use baton_tests::*;

/// While plan `owner` exists, a plan naming its workspace, a folder inside it or a folder
/// containing it is dead-lettered with the field `workspace` and the owner named; a follow-up
/// of the owner keeps its workspace. Once the owner has expired (a short `--retention`), its
/// workspace can be taken again.
#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_belongs_to_one_live_plan_until_it_expires() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 2);
    m.extra.extend(["--retention".into(), "15s".into()]);
    pool.add_worker(&m)?;
    pool.submit(
        &doc("owner")
            .workspace("shared/app")
            .prompts(&["Task marker owner-T1."])
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("owner"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;

    for (plan, ws, relation) in [
        ("same", Some("shared/app"), "is the workspace of plan owner"),
        ("inside", Some("shared/app/sub"), "is inside \"shared/app\""),
        ("parent", Some("shared"), "contains \"shared/app\""),
        // The CLI names both transcript folders `<root>-shared-app`.
        (
            "punctuated",
            Some("shared_app"),
            "share the CLI's transcript folder",
        ),
        (
            "dotted",
            Some("shared.app"),
            "share the CLI's transcript folder",
        ),
    ] {
        let mut d = doc(plan).prompts(&["Never runs."]);
        if let Some(ws) = ws {
            d = d.workspace(ws);
        }
        pool.submit(&d.json()).await?;
        let letter = pool
            .wait_dead_letter(&plan_id(plan), Duration::from_secs(20))
            .await?;
        assert_eq!(letter.field.as_deref(), Some("workspace"), "{letter:?}");
        assert!(
            letter.reason.contains(relation) && letter.reason.contains("plan owner"),
            "{plan}: {}",
            letter.reason
        );
        assert_eq!(
            pool.state(&plan_id(plan)).await?,
            None,
            "{plan} was never written"
        );
    }
    // The owner's follow-up (naming the workspace, or not) keeps it.
    pool.submit(&doc("owner").task("t2", "Task marker owner-T2.").json())
        .await?;
    pool.wait_done(&plan_id("owner"), 2, Duration::from_secs(60))
        .await?;
    pool.submit(
        &doc("owner")
            .workspace("shared/app")
            .task("t3", "Task marker owner-T3.")
            .json(),
    )
    .await?;
    pool.wait_done(&plan_id("owner"), 3, Duration::from_secs(60))
        .await?;

    // A sibling folder is no conflict.
    pool.submit(
        &doc("sibling")
            .workspace("shared/other")
            .prompts(&["Task marker sibling-T1."])
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("sibling"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    // Once the owner's keys have expired and the sweep has seen it, the workspace is free.
    let mut conn = pool.conn().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holder: Option<String> =
            redis::AsyncCommands::hget(&mut conn, "{baton}:workspaces", "shared/app").await?;
        if holder.is_none() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the expired plan still holds its workspace"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pool.state(&plan_id("owner")).await?, None, "owner expired");
    pool.submit(
        &doc("taker")
            .workspace("shared/app/sub")
            .prompts(&["Task marker taker-T1."])
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("taker"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    let holder: Option<String> =
        redis::AsyncCommands::hget(&mut conn, "{baton}:workspaces", "shared/app/sub").await?;
    assert_eq!(holder.as_deref(), Some("taker"));
    Ok(())
}

/// The folders a test's `machine` worker must not be given as a repository, and a second pool
/// whose worker allows no local repository at all: every local path is dead-lettered (field
/// `repo.url`), each naming why; the pool's remotes folder (the one allowed) works, and the
/// remote's own config (a pre-receive hook, `core.alternateRefsCommand`) runs nothing when baton
/// pushes to it.
#[tokio::test(flavor = "multi_thread")]
async fn repository_urls_are_data_and_a_remotes_own_config_runs_nothing() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let m = pool.machine("a", 2);
    pool.add_worker(&m)?;
    let dir = pool.dir.path().to_owned();
    let remote = BareRepo::in_folder(&dir)?;
    // The remote borrows objects from another repository and says what to run to list its
    // refs; its pre-receive hook would run on a push too. Both would leave a marker outside.
    let other = BareRepo::create(
        &git::remotes_dir(&dir).join("other.git"),
        &[("o.txt", "o\n")],
    )?;
    std::fs::write(
        remote.path.join("objects/info/alternates"),
        format!("{}\n", other.path.join("objects").display()),
    )?;
    let (alt_marker, hook_marker) = (dir.join("alternate-refs-ran"), dir.join("hook-ran"));
    git::git(
        &remote.path,
        &[
            "config",
            "core.alternateRefsCommand",
            &format!("touch {}; true", alt_marker.display()),
        ],
    )?;
    let hook = remote.path.join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().expect("hooks"))?;
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ntouch {}\n", hook_marker.display()),
    )?;
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    pool.submit(
        &doc("pushed")
            .prompts(&["Task marker pushed-T1.\nFile: a.txt\n```\na\n```\n"])
            .repo(serde_json::json!({"url": remote.url()}))
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("pushed"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    assert!(
        remote.rev("baton/pushed").is_some(),
        "the branch was pushed"
    );
    assert!(
        !alt_marker.exists(),
        "the remote's core.alternateRefsCommand ran"
    );
    assert!(!hook_marker.exists(), "the remote's pre-receive hook ran");

    // Local paths outside the allowed folder, or in the worker's own folders, are refused.
    let elsewhere = BareRepo::create(&dir.join("elsewhere.git"), &[("e.txt", "e\n")])?;
    std::os::unix::fs::symlink(git::remotes_dir(&dir), dir.join("link"))?;
    std::fs::create_dir_all(m.workspace_root.join("seeded"))?;
    for (plan, url, says) in [
        (
            "outside",
            elsewhere.url(),
            "outside the folders this worker allows",
        ),
        (
            "in-workspaces",
            m.workspace_root.join("seeded").display().to_string(),
            "workspace root",
        ),
        (
            "in-state",
            format!("file://{}", m.state_dir.join("repos").display()),
            "state dir",
        ),
        (
            "linked",
            format!("{}/remote.git", dir.join("link").display()),
            "symlink",
        ),
        (
            "dotted",
            format!("{}/../elsewhere.git", git::remotes_dir(&dir).display()),
            "'..'",
        ),
    ] {
        pool.submit(
            &doc(plan)
                .prompts(&["Never runs."])
                .repo(serde_json::json!({"url": url}))
                .json(),
        )
        .await?;
        let letter = pool
            .wait_dead_letter(&plan_id(plan), Duration::from_secs(20))
            .await?;
        assert_eq!(letter.field.as_deref(), Some("repo.url"), "{letter:?}");
        assert!(letter.reason.contains(says), "{plan}: {}", letter.reason);
    }

    // A worker allowing no folder refuses every local path, and says which flag to set.
    let mut strict_pool = Pool::start()?;
    let mut strict = strict_pool.machine("s", 1);
    let at = strict
        .extra
        .iter()
        .position(|a| a == "--repo-allow-path")
        .expect("the harness allows the remotes folder");
    strict.extra.drain(at..at + 2);
    strict_pool.add_worker(&strict)?;
    let strict_remote = BareRepo::in_folder(strict_pool.dir.path())?;
    for (plan, url) in [
        ("plain", strict_remote.url()),
        ("file-url", format!("file://{}", strict_remote.url())),
    ] {
        strict_pool
            .submit(
                &doc(plan)
                    .prompts(&["Never runs."])
                    .repo(serde_json::json!({"url": url}))
                    .json(),
            )
            .await?;
        let letter = strict_pool
            .wait_dead_letter(&plan_id(plan), Duration::from_secs(20))
            .await?;
        assert_eq!(letter.field.as_deref(), Some("repo.url"), "{letter:?}");
        assert!(
            letter.reason.contains("--repo-allow-path") && letter.reason.contains("allows none"),
            "{}",
            letter.reason
        );
    }
    Ok(())
}

/// A worker whose state dir or CLI config dir is inside its workspace root (or holds it) refuses
/// to start, naming both flags: what plans' models write could change them.
#[tokio::test(flavor = "multi_thread")]
async fn a_workers_own_folders_may_not_be_in_its_workspace_root() -> anyhow::Result<()> {
    let pool = Pool::start()?;
    let base = pool.machine("a", 1);
    let mut inside = base.clone();
    inside.state_dir = base.workspace_root.join("state");
    let mut config_inside = base.clone();
    config_inside.config_dir = base.workspace_root.join("plan/.claude");
    // The worker's log is written beside its config dir.
    std::fs::create_dir_all(base.workspace_root.join("plan"))?;
    let mut holding = base.clone();
    holding.state_dir = pool.dir.path().to_owned();
    for (opts, says) in [
        (&inside, "--state-dir"),
        (&config_inside, "--claude-config-dir"),
        (&holding, "--workspace-root"),
    ] {
        let mut w = Worker::start(&pool.redis, &pool.standin, opts)?;
        let status = w.proc.wait_exit(Duration::from_secs(10)).expect("exits");
        assert_eq!(
            status.code(),
            Some(baton_worker::exit::BAD_SETTINGS.into()),
            "{}",
            w.log()
        );
        let log = w.log();
        assert!(
            log.contains(says) && log.contains("is inside") && log.contains("--workspace-root"),
            "{log}"
        );
    }
    Ok(())
}

//! The code follows the plan: plans with a `repo` on workers that share nothing but Redis and a
//! local bare repository (separate workspace roots, state dirs, HOMEs and CLI config dirs). Each
//! task reads what the earlier ones wrote (through the real CLI's `Read` tool, so the test sees
//! what the model could see) and writes a file of its own; the branch must end with one commit
//! per task, in order, whichever machine ran it.

use std::time::Duration;

use baton_core::EventKind;
use baton_tests::git::remotes_dir;
use baton_tests::*;
use redis::AsyncCommands;
use serde_json::{json, Value};

/// Task `k` of a plan: read the files of tasks 1..k-1, write `<plan>-<k>.txt`.
fn reading_task(plan: &str, k: usize) -> String {
    let reads: String = (1..k).map(|j| format!("Read: {plan}-{j}.txt\n")).collect();
    format!(
        "Step MARK-{plan}-{k} of the plan.\n{reads}File: {plan}-{k}.txt\n```\nwritten by task {k} of {plan}\n```\n"
    )
}

fn repo_doc(plan: &str, tasks: usize, repo: Value) -> String {
    let prompts: Vec<String> = (1..=tasks).map(|k| reading_task(plan, k)).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    doc(plan).prompts(&refs).repo(repo).json()
}

/// 6 plans of 4 tasks on two machines that share nothing but Redis and the remote: machine A
/// runs tasks 1-2 of every plan, then stops; machine B gets tasks 3-4 as follow-ups. Every task
/// finds the files of the tasks before it, every branch ends with 4 commits in task order each
/// holding its file, each plan is one conversation, and events and `baton status` show the
/// commits.
#[tokio::test(flavor = "multi_thread")]
async fn plans_carry_their_files_between_machines_on_their_branch() -> anyhow::Result<()> {
    const PLANS: usize = 6;
    const TASKS: usize = 4;
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let plans: Vec<String> = (0..PLANS).map(|i| format!("gp{i}")).collect();
    let ia = pool.add_worker(&pool.separate_machine("a", 2))?;
    for p in &plans {
        pool.submit(&repo_doc(p, 2, json!({"url": remote.url()})))
            .await?;
    }
    for p in &plans {
        pool.wait_state(
            &plan_id(p),
            &[PlanState::Completed],
            Duration::from_secs(300),
        )
        .await?;
    }
    assert!(
        pool.workers[ia].stop(Duration::from_secs(30)).is_some(),
        "A stops"
    );
    pool.add_worker(&pool.separate_machine("b", 2))?;
    for p in &plans {
        let follow = doc(p)
            .task("t3", &reading_task(p, 3))
            .task("t4", &reading_task(p, 4));
        pool.submit(&follow.json()).await?;
    }
    for p in &plans {
        pool.wait_done(&plan_id(p), TASKS as u64, Duration::from_secs(300))
            .await?;
    }
    let reads = pool.standin.reads()?;
    let main = remote.rev("main").expect("main");
    for p in &plans {
        // Task k found every file of tasks 1..k-1, with the content that task wrote.
        for k in 2..=TASKS {
            for j in 1..k {
                let name = format!("{p}-{j}.txt");
                let seen: Vec<&(String, bool, String)> = reads
                    .iter()
                    .filter(|(path, ..)| path.rsplit('/').next() == Some(name.as_str()))
                    .collect();
                assert!(!seen.is_empty(), "{p}: nobody read {name}");
                assert!(
                    seen.iter().all(|(_, found, content)| *found
                        && content.contains(&format!("written by task {j} of {p}"))),
                    "{p}: {name} was not there for a later task: {seen:?}"
                );
            }
        }
        // One commit per task, in order, each holding its own file and every earlier one.
        let log = remote.log(&main, &format!("baton/{p}"))?;
        let subjects: Vec<&str> = log.iter().map(|(_, s, _)| s.as_str()).collect();
        let want: Vec<String> = (1..=TASKS)
            .map(|k| format!("t{k}: Step MARK-{p}-{k} of the plan."))
            .collect();
        assert_eq!(subjects, want, "{p}: the branch's commits");
        for (k, (sha, _, parent)) in log.iter().enumerate() {
            let files = remote.files(sha)?;
            for j in 1..=k + 1 {
                assert!(
                    files.contains(&format!("{p}-{j}.txt")),
                    "{p}: commit {} lacks {p}-{j}.txt: {files:?}",
                    k + 1
                );
            }
            let expected_parent = if k == 0 { &main } else { &log[k - 1].0 };
            assert_eq!(
                parent,
                expected_parent,
                "{p}: commit {} sits on the one before",
                k + 1
            );
        }
        let msg = remote.message(&log[0].0)?;
        assert!(
            msg.contains(&format!("Baton-Plan: {p}")) && msg.contains("Baton-Task-Index: 0"),
            "{msg}"
        );

        // The same conversation throughout, on both machines; results and events carry commits.
        let results = pool.results(&plan_id(p)).await?;
        assert!(
            results
                .iter()
                .all(|r| r.session_id == results[0].session_id),
            "{p}: one session"
        );
        let workers: std::collections::HashSet<String> =
            results.iter().map(|r| r.worker.to_string()).collect();
        assert_eq!(workers.len(), 2, "{p} ran on both machines");
        let commits: Vec<Option<String>> = results.iter().map(|r| r.commit.clone()).collect();
        let shas: Vec<Option<String>> = log.iter().map(|(s, ..)| Some(s.clone())).collect();
        assert_eq!(commits, shas, "{p}: each result names its commit");
        let events = pool.events(&plan_id(p)).await?;
        let succeeded: Vec<&baton_core::Event> = events
            .iter()
            .filter(|e| e.kind() == EventKind::TaskSucceeded)
            .collect();
        assert_eq!(succeeded.len(), results.len(), "{p}: a success per task");
        for e in &succeeded {
            let d = body!(e, TaskSucceeded).diffstat.expect("a diffstat");
            assert_eq!((d.files, d.insertions), (1, 1), "{p}: {d:?}");
        }
        let done = events
            .iter()
            .rev()
            .find(|e| e.kind() == EventKind::PlanCompleted)
            .expect("completed");
        assert_eq!(
            body!(done, PlanCompleted).commit.as_deref(),
            log.last().map(|(s, ..)| s.as_str())
        );
    }
    let out = baton(&pool.redis, &["status", "gp0"], None)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let tip = remote.rev("baton/gp0").expect("branch");
    assert!(
        text.contains("baton/gp0") && text.contains(&tip[..12]) && text.contains("+1 -0"),
        "{text}"
    );
    Ok(())
}

/// Waits until `path` exists.
async fn wait_for_file(path: &std::path::Path, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while !path.exists() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The reads of `name` the CLI answered: whether each found the file.
fn reads_of(reads: &[(String, bool, String)], name: &str) -> Vec<bool> {
    reads
        .iter()
        .filter(|(path, ..)| path.rsplit('/').next() == Some(name))
        .map(|(_, found, _)| *found)
        .collect()
}

/// A task whose first attempt writes a file and then hangs; the retry on the same worker starts
/// from the checkpoint's files: the failed attempt's file is gone before it runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_starts_from_the_checkpoint_files_not_the_failed_attempts() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let mut a = pool.separate_machine("a", 1);
    a.extra.extend(["--silence-timeout".into(), "3s".into()]);
    pool.add_worker(&a)?;
    let second = "Second.\nRead: leftover.txt\nFile: leftover.txt\n```\nleft by the failed attempt\n```\n[[standin:hang after_writes=2 times=1]]";
    let d = doc("rewind")
        .prompts(&[&reading_task("rewind", 1), second])
        .repo(json!({"url": remote.url()}));
    pool.submit(&d.json()).await?;
    pool.wait_state(
        &plan_id("rewind"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let results = pool.results(&plan_id("rewind")).await?;
    assert_eq!(results[1].attempts, 2, "the task was retried");
    assert_eq!(
        reads_of(&pool.standin.reads()?, "leftover.txt"),
        [false, false],
        "neither attempt found the file: the retry's checkout was reset"
    );
    let main = remote.rev("main").expect("main");
    assert_eq!(
        remote.log(&main, "baton/rewind")?.len(),
        2,
        "one commit per task"
    );
    Ok(())
}

/// A worker killed (kill -9) after the CLI wrote a file but before the task committed: another
/// worker runs the task from the checkpoint, and nothing of the killed attempt reaches the
/// branch.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_leaves_nothing_on_the_branch() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let a = pool.separate_machine("a", 1);
    let ia = pool.add_worker(&a)?;
    let second = "Second.\nRead: partial.txt\nFile: partial.txt\n```\nwritten before the crash\n```\n[[standin:hang after_writes=2 times=1]]";
    let d = doc("crash")
        .prompts(&[&reading_task("crash", 1), second])
        .repo(json!({"url": remote.url()}));
    pool.submit(&d.json()).await?;
    wait_for_file(
        &a.workspace_root.join("crash/partial.txt"),
        Duration::from_secs(60),
    )
    .await?;
    // Kill only once the stand-in holds the request it hangs (the third of the task: prompt,
    // Read's result, Write's result): killed earlier, the retry would be the one it hangs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pool
        .standin
        .requests()?
        .iter()
        .filter(|r| r.to_string().contains("written before the crash"))
        .count()
        < 3
    {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the CLI never sent the request the stand-in hangs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.workers[ia].proc.signal(libc::SIGKILL);
    pool.add_worker(&pool.separate_machine("b", 1))?;
    pool.wait_state(
        &plan_id("crash"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let results = pool.results(&plan_id("crash")).await?;
    assert_ne!(
        results[1].worker, results[0].worker,
        "the other machine finished it"
    );
    assert_eq!(
        reads_of(&pool.standin.reads()?, "partial.txt"),
        [false, false]
    );
    let main = remote.rev("main").expect("main");
    let log = remote.log(&main, "baton/crash")?;
    assert_eq!(log.len(), 2, "no commit from the killed attempt: {log:?}");
    assert_eq!(
        Some(log[1].0.clone()),
        results[1].commit,
        "the branch holds the recorded commit"
    );
    Ok(())
}

/// A holder stalled past its lease (SIGSTOP) wakes after another worker committed the plan's
/// tasks: nothing it does reaches the branch or Redis.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_holder_reaches_neither_the_branch_nor_redis() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let ia = pool.add_worker(&pool.separate_machine("a", 1))?;
    let first = format!("{}[[standin:sleep 3000]]", reading_task("stale", 1));
    let d = doc("stale")
        .prompts(&[&first, &reading_task("stale", 2)])
        .repo(json!({"url": remote.url()}));
    pool.submit(&d.json()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !pool
        .events(&plan_id("stale"))
        .await?
        .iter()
        .any(|e| e.kind() == EventKind::TaskStarted)
    {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.workers[ia].proc.signal(libc::SIGSTOP);
    pool.add_worker(&pool.separate_machine("b", 1))?;
    pool.wait_state(
        &plan_id("stale"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let main = remote.rev("main").expect("main");
    let before = remote.log(&main, "baton/stale")?;
    pool.workers[ia].proc.signal(libc::SIGCONT);
    // Give the stale holder time to finish its turn and try.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !pool.workers[ia].log().contains("lease lost") {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the stale worker never noticed: {}",
            pool.workers[ia].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its hold is over once it handed the plan back: whatever it tried came before that.
    pool.wait_unheld(&plan_id("stale"), Duration::from_secs(20))
        .await?;
    assert_eq!(
        remote.log(&main, "baton/stale")?,
        before,
        "the branch did not move"
    );
    assert_eq!(before.len(), 2);
    let results = pool.results(&plan_id("stale")).await?;
    assert_eq!(results.len(), 2, "nothing committed twice");
    assert!(results.iter().all(|r| r.worker == results[0].worker));
    assert_eq!(
        pool.plan_field(&plan_id("stale"), PlanField::Checkpoint)
            .await?,
        Some(before[1].0.clone())
    );
    Ok(())
}

/// A follow-up continues the plan's branch; a plan whose base is another branch starts from that
/// branch's files.
#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_continue_the_branch_and_base_picks_the_start() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let feature = remote.commit_on(
        "feature",
        &[("feature.txt", "from the feature branch\n")],
        "feature",
    )?;
    pool.add_worker(&pool.separate_machine("a", 1))?;
    pool.submit(&repo_doc("fu", 1, json!({"url": remote.url()})))
        .await?;
    pool.wait_state(
        &plan_id("fu"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let follow = doc("fu").task("t2", &reading_task("fu", 2)).json();
    pool.submit(&follow).await?;
    pool.wait_done(&plan_id("fu"), 2, Duration::from_secs(120))
        .await?;
    let main = remote.rev("main").expect("main");
    let log = remote.log(&main, "baton/fu")?;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        log[1].2, log[0].0,
        "the follow-up's commit sits on the plan's last one"
    );
    assert_eq!(reads_of(&pool.standin.reads()?, "fu-1.txt"), [true]);

    let based = doc("fb")
        .task(
            "t1",
            "Start.\nRead: feature.txt\nFile: fb-1.txt\n```\n1\n```\n",
        )
        .repo(json!({"url": remote.url(), "base": "feature", "branch": "work/fb"}));
    pool.submit(&based.json()).await?;
    pool.wait_state(
        &plan_id("fb"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    assert_eq!(reads_of(&pool.standin.reads()?, "feature.txt"), [true]);
    let log = remote.log(&feature, "work/fb")?;
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].2, feature,
        "the plan started from the feature branch"
    );
    Ok(())
}

/// Unsafe repository URLs are refused naming the field; an unknown base fails the plan with
/// that reason; an unreachable remote is retried, then fails the plan; the worker keeps
/// serving.
#[tokio::test(flavor = "multi_thread")]
async fn bad_repositories_are_refused_or_fail_with_their_reason() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let mut a = pool.separate_machine("a", 1);
    a.extra.extend(["--max-attempts".into(), "2".into()]);
    pool.add_worker(&a)?;
    for (plan, url) in [
        ("u1", "ext::sh -c touch% /tmp/baton-pwned"),
        ("u2", "https://user:secret@example.com/app.git"),
        ("u3", "-oProxyCommand=touch /tmp/baton-pwned"),
        ("u4", "relative/path.git"),
    ] {
        pool.submit(&doc(plan).prompts(&["x"]).repo(json!({"url": url})).json())
            .await?;
    }
    pool.submit(
        &doc("nobase")
            .prompts(&["x"])
            .repo(json!({"url": remote.url(), "base": "no-such-branch"}))
            .json(),
    )
    .await?;
    let missing = baton_tests::git::remotes_dir(pool.dir.path()).join("no-such-remote.git");
    pool.submit(
        &doc("gone")
            .prompts(&["x"])
            .repo(json!({"url": format!("file://{}", missing.display())}))
            .json(),
    )
    .await?;
    pool.submit(&repo_doc("fine", 1, json!({"url": remote.url()})))
        .await?;
    pool.wait_state(
        &plan_id("fine"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    pool.wait_state(
        &plan_id("nobase"),
        &[PlanState::Failed],
        Duration::from_secs(60),
    )
    .await?;
    pool.wait_state(
        &plan_id("gone"),
        &[PlanState::Failed],
        Duration::from_secs(60),
    )
    .await?;

    let letters = pool.dead_letters().await?;
    for plan in ["u1", "u2", "u3", "u4"] {
        let l = letters
            .iter()
            .find(|l| l.plan_id.as_ref().map(|p| p.as_str()) == Some(plan))
            .unwrap_or_else(|| panic!("{plan} was not dead-lettered"));
        assert_eq!(l.field.as_deref(), Some("repo.url"), "{plan}: {}", l.reason);
        assert!(
            !l.reason.contains("secret"),
            "no credential in a reason: {}",
            l.reason
        );
    }
    assert!(!std::path::Path::new("/tmp/baton-pwned").exists());
    let failed = |plan: &str| {
        letters
            .iter()
            .find(|l| l.plan_id.as_ref().map(|p| p.as_str()) == Some(plan))
            .map(|l| l.reason.clone())
            .unwrap_or_default()
    };
    assert!(
        failed("nobase").contains("no-such-branch"),
        "{}",
        failed("nobase")
    );
    assert!(
        failed("gone").contains("failed after 2 attempts"),
        "{}",
        failed("gone")
    );
    let retried = pool
        .events(&plan_id("gone"))
        .await?
        .into_iter()
        .find(|e| e.kind() == EventKind::TaskRetrying)
        .expect("the unreachable remote was retried");
    assert!(
        body!(retried, TaskRetrying).reason.contains("cannot reach"),
        "{retried:?}"
    );
    Ok(())
}

/// A commit of the plan that no task recorded (what a holder leaves when it pushes and then
/// loses its lease before its Redis commit) is replaced by the next push; a commit of anyone
/// else on the plan's branch is never overwritten: the plan stops with that reason.
#[tokio::test(flavor = "multi_thread")]
async fn an_unrecorded_commit_is_replaced_and_a_foreign_one_is_kept() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let mut a = pool.separate_machine("a", 1);
    a.extra.extend(["--max-attempts".into(), "1".into()]);
    pool.add_worker(&a)?;
    let main = remote.rev("main").expect("main");
    for plan in ["orphan", "foreign"] {
        pool.submit(&repo_doc(plan, 1, json!({"url": remote.url()})))
            .await?;
        pool.wait_state(
            &plan_id(plan),
            &[PlanState::Completed],
            Duration::from_secs(120),
        )
        .await?;
    }
    // A stale holder's push, on top of the recorded checkpoint, carrying the plan's trailer.
    remote.commit_on(
        "baton/orphan",
        &[("stale.txt", "from a stale holder\n")],
        "t2: a stale attempt\n\nBaton-Plan: orphan\n",
    )?;
    let recorded = pool
        .plan_field(&plan_id("orphan"), PlanField::Checkpoint)
        .await?
        .expect("checkpoint");
    let second = "Second.\nRead: stale.txt\nFile: orphan-2.txt\n```\n2\n```\n";
    pool.submit(&doc("orphan").task("t2", second).json())
        .await?;
    pool.wait_done(&plan_id("orphan"), 2, Duration::from_secs(120))
        .await?;
    let log = remote.log(&main, "baton/orphan")?;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        log[1].2, recorded,
        "the new commit replaced the unrecorded one"
    );
    assert!(!remote
        .files("baton/orphan")?
        .contains(&"stale.txt".to_owned()));
    assert_eq!(reads_of(&pool.standin.reads()?, "stale.txt"), [false]);

    // Someone else's commit on the plan's branch.
    let theirs = remote.commit_on(
        "baton/foreign",
        &[("theirs.txt", "mine\n")],
        "a user's commit",
    )?;
    pool.submit(
        &doc("foreign")
            .task("t2", &reading_task("foreign", 2))
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("foreign"),
        &[PlanState::Failed],
        Duration::from_secs(120),
    )
    .await?;
    assert_eq!(
        remote.rev("baton/foreign"),
        Some(theirs),
        "their commit stays"
    );
    let reason = pool
        .plan_field(&plan_id("foreign"), PlanField::LastError)
        .await?
        .unwrap_or_default();
    assert!(reason.contains("changed outside baton"), "{reason}");
    Ok(())
}

/// A plan id used again after the old plan's keys are gone (as expiry leaves it) for another
/// repository starts clean on the worker that ran the old one: its git state is the new
/// plan's, not the old one's (whose objects are another repository's), and the new
/// repository's branch gets the commit.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_id_used_again_for_another_repository_starts_clean() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let remotes = remotes_dir(pool.dir.path());
    let a = BareRepo::create(&remotes.join("a.git"), &[("a.txt", "repository a\n")])?;
    let b = BareRepo::create(&remotes.join("b.git"), &[("b.txt", "repository b\n")])?;
    pool.add_worker(&pool.separate_machine("a", 1))?;
    pool.submit(&repo_doc("again", 1, json!({"url": a.url()})))
        .await?;
    pool.wait_state(
        &plan_id("again"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;

    let mut c = pool.conn().await?;
    let plan: baton_core::PlanId = "again".parse()?;
    let pattern = format!("{}:{{{plan}}}:*", pool.keys.prefix());
    let gone: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut c).await?;
    assert!(!gone.is_empty(), "the plan has keys to remove");
    let _: () = c.del(&gone).await?;

    pool.submit(&repo_doc("again", 1, json!({"url": b.url()})))
        .await?;
    pool.wait_state(
        &plan_id("again"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let main = b.rev("main").expect("main");
    let log = b.log(&main, "baton/again")?;
    assert_eq!(
        log.len(),
        1,
        "repository b's branch has the commit: {log:?}"
    );
    assert!(b.files(&log[0].0)?.contains(&"b.txt".to_owned()));
    Ok(())
}

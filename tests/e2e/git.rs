//! The code follows the plan: plans with a `repo` on workers that share nothing but Redis and a
//! local bare repository (separate workspace roots, state dirs, HOMEs and CLI config dirs). Each
//! task reads what the earlier ones wrote (through the real CLI's `Read` tool, so the test sees
//! what the model could see) and writes a file of its own; the branch must end with one commit
//! per task, in order, whichever machine ran it.

use std::time::Duration;

use baton_core::EventKind;
use baton_tests::*;
use serde_json::{json, Value};

/// Task `k` of a plan: read the files of tasks 1..k-1, write `<plan>-<k>.txt`.
fn reading_task(plan: &str, k: usize) -> String {
    let mut p = format!("Step MARK-{plan}-{k} of the plan.\n");
    for j in 1..k {
        p.push_str(&format!("Read: {plan}-{j}.txt\n"));
    }
    p.push_str(&format!(
        "File: {plan}-{k}.txt\n```\nwritten by task {k} of {plan}\n```\n"
    ));
    p
}

fn repo_doc(plan: &str, tasks: usize, repo: Value) -> String {
    let prompts: Vec<String> = (1..=tasks).map(|k| reading_task(plan, k)).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    doc(plan).prompts(&refs).repo(repo).json()
}

/// Two machines take turns on 6 plans of 4 tasks: every task finds the files of the tasks before
/// it, every branch ends with 4 commits in task order each holding its file, every plan ran on
/// both machines in one conversation, and events and `baton status` show the commits.
#[tokio::test(flavor = "multi_thread")]
async fn plans_carry_their_files_between_machines_on_their_branch() -> anyhow::Result<()> {
    const PLANS: usize = 6;
    const TASKS: usize = 4;
    let mut pool = Pool::start()?;
    let remote = BareRepo::create(
        &pool.dir.path().join("remote.git"),
        &[("README.md", "hi\n")],
    )?;
    for m in ["a", "b"] {
        let mut opts = pool.separate_machine(m, 2);
        opts.extra
            .extend(["--max-tasks-per-hold".into(), "1".into()]);
        pool.add_worker(&opts)?;
    }
    let plans: Vec<String> = (0..PLANS).map(|i| format!("gp{i}")).collect();
    for p in &plans {
        pool.submit(&repo_doc(p, TASKS, json!({"url": remote.url()})))
            .await?;
    }
    for p in &plans {
        pool.wait_state(p, &["completed"], Duration::from_secs(300))
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
        let results = pool.results(p).await?;
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
        let events = pool.events(p).await?;
        let succeeded: Vec<&baton_core::Event> = events
            .iter()
            .filter(|e| e.kind == EventKind::TaskSucceeded)
            .collect();
        assert!(
            succeeded
                .iter()
                .all(|e| e.fields["diffstat"]["files"] == 1
                    && e.fields["diffstat"]["insertions"] == 1)
        );
        let done = events
            .iter()
            .find(|e| e.kind == EventKind::PlanCompleted)
            .expect("completed");
        assert_eq!(
            done.field_str("commit"),
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

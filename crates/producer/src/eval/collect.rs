//! What each plan of an eval did (from the pool, through baton-client) and what its checker
//! found in the code it left (a clone of its branch from the plan's remote).

use std::path::Path;

use anyhow::Result;
use baton_core::{Counter, PlanId};
use baton_eval::arm::Arm;
use baton_eval::check::{Language, Toolchains};
use baton_eval::report::PlanRun;
use baton_eval::suite::Project;

/// The plan's run as the pool recorded it (not checked yet).
pub(super) async fn plan_run(
    client: &baton_client::Client,
    arm: Arm,
    repeat: u32,
    project: &Project,
    plan: &PlanId,
) -> Result<PlanRun> {
    let view = client.plan(plan).await?;
    let state = view
        .as_ref()
        .and_then(baton_client::PlanView::state)
        .map_or_else(|| "missing".to_owned(), |s| s.as_str().to_owned());
    let results = client.results(plan).await?;
    // The plan's own counters, as `baton stats` counts them: a resume succeeds at its commit
    // (an attempt that resumed and then failed is not a success).
    let counter = |c: Counter| {
        view.as_ref().map_or(0, |v| {
            u32::try_from(v.counter(c).max(0)).unwrap_or(u32::MAX)
        })
    };
    let handoffs = results
        .windows(2)
        .filter(|w| w[0].worker != w[1].worker)
        .count();
    Ok(PlanRun {
        arm,
        repeat,
        project: project.name.clone(),
        language: project.language,
        plan_id: plan.to_string(),
        state,
        tasks: u32::try_from(project.tasks.len()).unwrap_or(u32::MAX),
        tasks_done: u32::try_from(results.len()).unwrap_or(u32::MAX),
        task_ms: results.iter().map(|r| r.duration_ms).collect(),
        cost_usd: results.iter().map(|r| r.cost_usd).sum(),
        resumes_attempted: counter(Counter::ResumesAttempted),
        resumes_ok: counter(Counter::ResumesSucceeded),
        handoffs: u32::try_from(handoffs).unwrap_or(u32::MAX),
        checked: None,
        check_error: None,
    })
}

/// Clones the plan's branch into `tree` and checks it; the outcome goes into `run`.
pub(super) async fn check_plan(
    tools: &Toolchains,
    project: &Project,
    remote: &Path,
    branch: &str,
    tree: &Path,
    work: &Path,
    run: &mut PlanRun,
) {
    let _ = std::fs::remove_dir_all(tree);
    // The branch holds code a model wrote: links in it are checked out as plain files
    // (`core.symlinks=false`), so neither the checkers nor `own_workspace` follow one out of
    // the tree; no hook or filter of the remote's runs (a clone of a bare repo of our own).
    let cloned = tokio::process::Command::new("git")
        .args([
            "-c",
            "core.symlinks=false",
            "clone",
            "--quiet",
            "--no-local",
        ])
        .args(["--branch", branch])
        .arg(remote)
        .arg(tree)
        .output()
        .await;
    match cloned {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            run.check_error = Some(if err.contains("not found in upstream") {
                "the plan left no commit on its branch".into()
            } else {
                one_line(&format!("git clone of {branch}: {err}"))
            });
            return;
        }
        Err(e) => {
            run.check_error = Some(format!("git clone: {e}"));
            return;
        }
    }
    let _ = std::fs::create_dir_all(work);
    if project.language == Language::Rust {
        own_workspace(tree);
    }
    match tools
        .check(project.language, tree, &project.check, work)
        .await
    {
        Ok(checked) => run.checked = Some(checked),
        Err(e) => run.check_error = Some(one_line(&format!("could not check: {e}"))),
    }
}

/// `text` on one line (whitespace runs as one space), at most 300 characters: a report's cell.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = joined.chars().take(300).collect();
    if cut.len() < joined.len() {
        cut.push_str(" [...]");
    }
    cut.replace('|', "/")
}

/// Makes the clone's crate a workspace of its own (an empty `[workspace]` table, when its
/// `Cargo.toml` has none): `--out` may lie inside another cargo workspace (baton's own tree,
/// by default), which cargo would otherwise take the crate for a stray member of.
fn own_workspace(tree: &Path) {
    let manifest = tree.join("Cargo.toml");
    // A regular file only (the clone has no links; this holds even if that changes).
    if !std::fs::symlink_metadata(&manifest).is_ok_and(|m| m.file_type().is_file()) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return;
    };
    let is_workspace_table = |l: &str| {
        let table = l.split('#').next().unwrap_or("");
        table
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            == "[workspace]"
    };
    if !text.lines().any(is_workspace_table) {
        let _ = std::fs::write(&manifest, format!("{text}\n[workspace]\n"));
    }
}

/// A bare repository at `remote` with one commit on `main` (a README naming the project), as a
/// hosted repository would be.
pub(super) async fn make_remote(remote: &Path, project: &Project, scratch: &Path) -> Result<()> {
    let git = |args: &[&str], dir: &Path| {
        let mut c = tokio::process::Command::new("git");
        c.args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    let run = |mut c: tokio::process::Command, what: String| async move {
        let out = c.output().await?;
        anyhow::ensure!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        anyhow::Ok(())
    };
    let parent = remote.parent().unwrap_or(remote);
    std::fs::create_dir_all(parent)?;
    let remote_s = remote.display().to_string();
    run(
        git(
            &["init", "-q", "--bare", "--initial-branch=main", &remote_s],
            parent,
        ),
        format!("git init {remote_s}"),
    )
    .await?;
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch)?;
    run(
        git(&["init", "-q", "--initial-branch=main"], scratch),
        "git init".into(),
    )
    .await?;
    let readme = format!("# {}\n\n{}\n", project.name, project.summary);
    std::fs::write(scratch.join("README.md"), readme)?;
    run(git(&["add", "README.md"], scratch), "git add".into()).await?;
    let commit = [
        "-c",
        "user.name=baton eval",
        "-c",
        "user.email=eval@localhost",
        "commit",
        "-q",
        "-m",
        "initial commit",
    ];
    run(git(&commit, scratch), "git commit".into()).await?;
    run(
        git(&["push", "-q", &remote_s, "main"], scratch),
        format!("git push to {remote_s}"),
    )
    .await?;
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs")
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    /// A branch a model wrote that links `Cargo.toml` (and a source file) to a file outside the
    /// clone: the check writes nothing there and reads nothing from there.
    #[tokio::test]
    async fn links_in_a_plans_branch_do_not_reach_out_of_the_clone() {
        let dir = std::env::temp_dir().join(format!("baton-eval-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (src, remote, tree, work) = (
            dir.join("src"),
            dir.join("r.git"),
            dir.join("tree"),
            dir.join("work"),
        );
        std::fs::create_dir_all(src.join("src")).unwrap();
        let victim = dir.join("victim.toml");
        std::fs::write(&victim, "SECRET=1\n").unwrap();
        git(&dir, &["init", "-q", "--bare", "r.git"]);
        git(&src, &["init", "-q", "-b", "eval/p"]);
        std::os::unix::fs::symlink(&victim, src.join("Cargo.toml")).unwrap();
        std::os::unix::fs::symlink(&victim, src.join("src/lib.rs")).unwrap();
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", "links"]);
        git(&src, &["push", "-q", remote.to_str().unwrap(), "eval/p"]);
        let project: Project = serde_json::from_value(serde_json::json!({
            "name": "p", "language": "rust",
            "tasks": [{"id": "t1", "prompt": "x"}],
            "check": {"entry_points": ["src/lib.rs"]}
        }))
        .unwrap();
        let tools = Toolchains {
            dir: dir.join("tools"),
        };
        let mut run = PlanRun {
            arm: Arm::Session,
            repeat: 0,
            project: "p".into(),
            language: Language::Rust,
            plan_id: "p".into(),
            state: "completed".into(),
            tasks: 1,
            tasks_done: 1,
            task_ms: vec![],
            cost_usd: 0.0,
            resumes_attempted: 0,
            resumes_ok: 0,
            handoffs: 0,
            checked: None,
            check_error: None,
        };
        check_plan(&tools, &project, &remote, "eval/p", &tree, &work, &mut run).await;
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "SECRET=1\n");
        let manifest = std::fs::symlink_metadata(tree.join("Cargo.toml")).unwrap();
        assert!(
            !manifest.file_type().is_symlink(),
            "checked out as a plain file"
        );
        let report = serde_json::to_string(&run).unwrap();
        assert!(!report.contains("SECRET"), "{report}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

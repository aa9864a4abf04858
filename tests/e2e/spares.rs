//! Spare CLIs (`--spare-cli`): a CLI started and parked before its plan arrives serves the
//! plan's first task, in the plan's own workspace, and the conversation goes on from it; a
//! document cannot reach the spares' folder; a CLI without `--await-claim` turns spares off by
//! itself and plans run as before.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_core::PlanField;
use baton_tests::*;

/// The session ids of this machine's parked spares: processes whose command line asks for a
/// claim (`--await-claim`) and names the machine's CLI config dir, in the command line (a box)
/// or the environment (no box).
fn parked_spares(config_dir: &Path) -> Vec<String> {
    let config = config_dir.display().to_string();
    let mut ids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let args = cmdline(&entry.file_name().to_string_lossy());
        let Some(id) = spare_session(&args) else {
            continue;
        };
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let mine = args.iter().any(|a| a.contains(&config))
            || String::from_utf8_lossy(&environ).contains(&format!("CLAUDE_CONFIG_DIR={config}"));
        if mine && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Waits until the machine has a parked spare; its session id.
async fn a_parked_spare(config_dir: &Path, not: &[String]) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(id) = parked_spares(config_dir)
            .into_iter()
            .find(|id| !not.contains(id))
        {
            // Parked, not just spawned: the claim may come at once.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return Ok(id);
        }
        anyhow::ensure!(Instant::now() < deadline, "no spare CLI was parked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plan's first task runs in the spare that was parked before the plan came (its session
/// is the spare's), writes into the plan's own workspace, and the next task resumes that
/// conversation; the worker then parks a new spare, which a plan with options of its own does
/// not take. In a box (the spare's folders handed over) and without one (the claim names the
/// plan's folder); the e2e suite's cold pass runs it in cold mode too, where the claimed spare
/// exits with its task.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_task_runs_in_a_parked_spare_and_its_conversation_goes_on() -> anyhow::Result<()> {
    first_task_in_a_spare(true).await
}

/// [`a_first_task_runs_in_a_parked_spare_and_its_conversation_goes_on`], with `--sandbox off`.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_task_runs_in_a_parked_spare_without_a_box() -> anyhow::Result<()> {
    first_task_in_a_spare(false).await
}

async fn first_task_in_a_spare(boxed: bool) -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 1);
    m.extra.extend(["--spare-cli".into(), "1".into()]);
    if !boxed {
        m.extra.extend(["--sandbox".into(), "off".into()]);
    }
    pool.add_worker(&m)?;
    let spare = a_parked_spare(&m.config_dir, &[]).await?;
    let d = doc("spared").tasks(&[
        (
            "t1",
            "Step MARK-1.\nFile: first.txt\n```\nwritten by the spare\n```\n",
        ),
        ("t2", "Step MARK-2."),
    ]);
    pool.submit(&d.json()).await?;
    let plan = plan_id("spared");
    pool.wait_state(&plan, &[PlanState::Completed], Duration::from_secs(120))
        .await?;
    let session = pool.plan_field(&plan, PlanField::SessionId).await?;
    assert_eq!(
        session.as_deref(),
        Some(spare.as_str()),
        "the plan's session is the parked spare's"
    );
    assert!(
        pool.workers[0].log().contains("claimed a spare CLI"),
        "the worker says it claimed the spare"
    );
    // The spare's folder became the plan's: the file is in the plan's workspace.
    let ws = m.workspace_root.join("spared");
    assert_eq!(
        std::fs::read_to_string(ws.join("first.txt"))?,
        "written by the spare\n"
    );
    // One parking folder, this worker's, which no longer holds the claimed spare's folder.
    let spares_dir = m.workspace_root.join(".baton-spares");
    let workers: Vec<_> = std::fs::read_dir(&spares_dir)?.flatten().collect();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert!(
        !workers[0].path().join(&spare).exists(),
        "the claimed spare's parking folder is gone"
    );
    // The second task resumed the conversation the spare began.
    let requests = pool.standin.requests()?;
    let last = requests.last().expect("requests");
    let prompts = prompts_of(last).join("\n");
    assert!(
        prompts.contains("MARK-1") && prompts.contains("MARK-2"),
        "the second task's request carries the first: {prompts}"
    );
    let results = pool.results(&plan).await?;
    assert_eq!(results.len(), 2);
    // A new spare is parked for the next plan; a plan whose CLI would be started with other
    // arguments (here `--max-turns`) does not take it.
    let next = a_parked_spare(&m.config_dir, std::slice::from_ref(&spare)).await?;
    let own = doc("own-options")
        .options(serde_json::json!({"max_turns": 5}))
        .prompts(&["Step one."]);
    pool.submit(&own.json()).await?;
    let plan = plan_id("own-options");
    pool.wait_state(&plan, &[PlanState::Completed], Duration::from_secs(120))
        .await?;
    let session = pool.plan_field(&plan, PlanField::SessionId).await?;
    assert!(session.is_some_and(|s| s != next));
    assert!(parked_spares(&m.config_dir).contains(&next), "still parked");
    Ok(())
}

/// A document cannot name the spares' folder as its workspace (a box there could write into
/// the folder a later plan gets): the plan is refused, naming the field and why, and kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_cannot_take_the_spares_folder_as_its_workspace() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 1);
    m.extra.extend(["--spare-cli".into(), "1".into()]);
    pool.add_worker(&m)?;
    let spare = a_parked_spare(&m.config_dir, &[]).await?;
    let d = doc("into-spares")
        .workspace(".baton-spares")
        .prompts(&["Bash: ls"]);
    pool.submit(&d.json()).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let letter = loop {
        if let Some(l) = pool.dead_letters().await?.into_iter().next() {
            break l;
        }
        anyhow::ensure!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letter.field.as_deref(), Some("workspace"), "{letter:?}");
    assert!(letter.reason.contains(".baton-spares"), "{}", letter.reason);
    assert!(
        letter
            .document
            .as_deref()
            .is_some_and(|d| d.contains("into-spares")),
        "the document is kept"
    );
    // The spare is still parked, untouched.
    assert!(parked_spares(&m.config_dir).contains(&spare));
    Ok(())
}

/// A CLI that does not know `--await-claim` (an older one): the spares it is started as die at
/// once, the worker turns spares off by itself, says so, and plans run with a CLI started for
/// them.
#[tokio::test(flavor = "multi_thread")]
async fn a_cli_without_await_claim_turns_spares_off_and_plans_still_run() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 1);
    let folder = pool.dir.path().join("old-cli");
    std::fs::create_dir_all(&folder)?;
    let bin = folder.join("claude");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --await-claim ] && {{ echo \"error: unknown option '--await-claim'\" >&2; exit 1; }}; done\nexec '{}' \"$@\"\n",
            claude_bin().display()
        ),
    )?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    m.claude_bin = bin;
    m.extra.extend([
        "--spare-cli".into(),
        "1".into(),
        "--sandbox".into(),
        "off".into(),
    ]);
    pool.add_worker(&m)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pool.workers[0].log().contains("spare CLIs off") {
        anyhow::ensure!(Instant::now() < deadline, "spares were not turned off");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pool.submit(&doc("no-spares").prompts(&["Step one."]).json())
        .await?;
    pool.wait_state(
        &plan_id("no-spares"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    assert!(!pool.workers[0].log().contains("claimed a spare CLI"));
    Ok(())
}

/// Workers sharing one workspace root park their spares apart: a worker that starts removes
/// the parking folder of a worker that is gone (`kill -9`), never a live one's, whose spare
/// stays parked.
#[tokio::test(flavor = "multi_thread")]
async fn a_starting_worker_removes_only_the_spares_of_workers_that_are_gone() -> anyhow::Result<()>
{
    let mut pool = Pool::start()?;
    let mut a = pool.machine("a", 1);
    a.extra.extend(["--spare-cli".into(), "1".into()]);
    let mut b = pool.machine("b", 1);
    b.extra.extend(["--spare-cli".into(), "1".into()]);
    pool.add_worker(&a)?;
    pool.add_worker(&b)?;
    let spare_a = a_parked_spare(&a.config_dir, &[]).await?;
    a_parked_spare(&b.config_dir, &[]).await?;
    let spares_dir = a.workspace_root.join(".baton-spares");
    let folder_of = |id: &str| {
        std::fs::read_dir(&spares_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|w| w.join(id).is_dir())
    };
    // b dies without a word; its parking folder stays behind.
    pool.workers[1].proc.signal(libc::SIGKILL);
    pool.workers[1].proc.wait_exit(Duration::from_secs(10));
    let stale = std::fs::read_dir(&spares_dir)?
        .flatten()
        .map(|e| e.path())
        .find(|w| Some(w) != folder_of(&spare_a).as_ref())
        .expect("b's parking folder is left");
    // c starts on the same root.
    let mut c = pool.machine("c", 1);
    c.extra.extend(["--spare-cli".into(), "1".into()]);
    pool.add_worker(&c)?;
    a_parked_spare(&c.config_dir, &[]).await?;
    assert!(
        !stale.exists(),
        "the gone worker's parking folder is removed"
    );
    assert!(
        folder_of(&spare_a).is_some() && parked_spares(&a.config_dir).contains(&spare_a),
        "the live worker's spare is still parked"
    );
    Ok(())
}

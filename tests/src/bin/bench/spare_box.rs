//! The spare section's box check (`spare.rs`): can a spare started in a bubblewrap box serve a
//! plan whose workspace was not known when the box was made? The box binds a spare folder at a
//! fixed path (`/workspace`) and a spare project folder where the CLI keeps that path's
//! transcripts; once the spare is parked, both folders are renamed on the host to the plan's
//! (a bind mount follows the folder, not its name) and the plan's file is written into it;
//! then the spare is claimed for `/workspace` and asked to read that file and write another.
//! The box is the worker's without its network part (no relay: the box shares the host's
//! network so the CLI reaches the stand-in directly): what is checked is the folders.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::cli::Place;

/// The workspace's path inside every box of this layout.
const IN_BOX: &str = "/workspace";

/// What the check found: the claim → `result` time (ms), and whether the plan's file was read
/// and the model's file and the transcript landed in the plan's folders on the host.
pub(super) struct Boxed {
    pub(super) to_result: f64,
    pub(super) read_plan_file: bool,
    pub(super) wrote_in_plan: bool,
    pub(super) transcript_in_plan: bool,
}

/// bubblewrap's arguments for a spare boxed with its workspace at [`IN_BOX`].
fn bwrap_args(place: &Place, ws: &Path, project: &Path, cli: &Path) -> Result<Vec<String>> {
    let s = |p: &Path| p.display().to_string();
    let cli_dir = cli.parent().context("the CLI has a folder")?;
    let in_box_project = place.config.join("projects").join("-workspace");
    let mut a: Vec<String> = [
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--share-net",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    .map(str::to_owned)
    .to_vec();
    for top in ["/bin", "/sbin", "/lib", "/lib64"] {
        if let Ok(target) = std::fs::read_link(top) {
            a.extend(["--symlink".into(), s(&target), top.into()]);
        }
    }
    for f in [
        "/etc/passwd",
        "/etc/group",
        "/etc/hosts",
        "/etc/ld.so.cache",
    ] {
        a.extend(["--ro-bind-try".into(), f.into(), f.into()]);
    }
    a.extend(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"].map(str::to_owned));
    a.extend(["--tmpfs".into(), s(&place.config)]);
    a.extend(["--bind".into(), s(project), s(&in_box_project)]);
    a.extend(["--ro-bind".into(), s(cli_dir), s(cli_dir)]);
    a.extend([
        "--bind".into(),
        s(ws),
        IN_BOX.into(),
        "--chdir".into(),
        IN_BOX.into(),
    ]);
    a.push("--clearenv".into());
    for (k, v) in [
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/tmp"),
        ("CLAUDE_CONFIG_DIR", &s(&place.config)),
        ("ANTHROPIC_BASE_URL", &place.base_url),
        ("ANTHROPIC_API_KEY", "bench-key-not-real"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
    ] {
        a.extend(["--setenv".into(), k.into(), v.into()]);
    }
    a.extend(["--".into(), s(cli)]);
    let id = uuid::Uuid::new_v4().to_string();
    a.extend(super::cli::args(super::cli::Kind::Spare, &id, false));
    Ok(a)
}

/// Runs the check; `None` when this machine has no bubblewrap.
pub(super) async fn check(place: &Place, root: &Path) -> Result<Option<Boxed>> {
    let cli = baton_tests::claude_bin().canonicalize()?;
    let (spare_ws, spare_project) = (root.join("ws/.spare-1"), root.join("spare-project-1"));
    let (plan_ws, plan_project) = (root.join("ws/plan-box"), root.join("plan-box-project"));
    for d in [&spare_ws, &spare_project] {
        std::fs::create_dir_all(d)?;
    }
    let mut cmd = tokio::process::Command::new("bwrap");
    cmd.args(bwrap_args(place, &spare_ws, &spare_project, &cli)?)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let Ok(mut child) = cmd.spawn() else {
        return Ok(None);
    };
    let mut stdin = child.stdin.take().context("stdin was piped")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout was piped")?).lines();
    // The spare parks in its box; then the plan arrives and takes the spare's folders.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    std::fs::rename(&spare_ws, &plan_ws)?;
    std::fs::rename(&spare_project, &plan_project)?;
    std::fs::write(
        plan_ws.join("PLAN.md"),
        "written by the plan after the box was made\n",
    )?;
    let claim = json!({"type": "control_request", "request_id": "claim-box",
        "request": {"subtype": "claim_session", "cwd": IN_BOX}});
    let task = super::user("Read: PLAN.md\nFile: out.txt\n```\nwritten in the box\n```\n");
    let claimed = Instant::now();
    stdin
        .write_all(format!("{claim}\n{task}\n").as_bytes())
        .await?;
    let mut read_plan_file = false;
    let result = loop {
        let line = lines.next_line().await?.context("the boxed spare ended")?;
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        // The Read's tool result carries the file's text.
        read_plan_file |= super::is_type(&v, "user") && line.contains("written by the plan");
        if super::is_type(&v, "result") {
            break v;
        }
    };
    let to_result = super::rel(Instant::now(), claimed);
    drop(stdin);
    let _ = child.wait().await;
    ensure!(
        result["is_error"] == false,
        "the boxed spare failed: {result}"
    );
    let transcript_in_plan = std::fs::read_dir(&plan_project)?
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "jsonl"));
    Ok(Some(Boxed {
        to_result,
        read_plan_file,
        wrote_in_plan: plan_ws.join("out.txt").is_file(),
        transcript_in_plan,
    }))
}

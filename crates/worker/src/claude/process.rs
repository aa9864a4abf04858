//! Starting and stopping the CLI process: its command line (the plan's options on every run,
//! since a resumed run restores none of them), a scrubbed environment, its own process group
//! (so the helpers it starts are stopped with it), and a terminate that gives it a grace period
//! before SIGKILL.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, Command};

use super::{ClaudeError, Invocation, SessionArg};

/// How long a CLI gets between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(3);

/// Environment variables the child must not inherit: they would make the CLI believe it runs
/// inside another Claude Code session, or change its behaviour behind baton's back.
fn scrubbed(name: &str) -> bool {
    name == "CLAUDECODE" || name.starts_with("CLAUDE_CODE_")
}

/// The command for `inv`; `warm`: reading stream-json messages on stdin.
fn command(inv: &Invocation<'_>, warm: bool) -> Command {
    let mut cmd = Command::new(inv.bin);
    cmd.arg("-p");
    if warm {
        cmd.arg("--input-format=stream-json");
    }
    cmd.arg("--output-format=stream-json")
        .arg("--verbose")
        .arg(format!(
            "--permission-mode={}",
            inv.options.permission_mode.unwrap_or_default().as_cli_arg()
        ));
    match inv.session {
        SessionArg::New(id) => cmd.arg(format!("--session-id={id}")),
        SessionArg::Resume(id) => cmd.arg(format!("--resume={id}")),
    };
    if let Some(m) = &inv.options.model {
        cmd.arg(format!("--model={m}"));
    }
    for t in inv.options.allowed_tools.iter().flatten() {
        cmd.arg(format!("--allowed-tools={t}"));
    }
    if let Some(s) = &inv.options.append_system_prompt {
        cmd.arg(format!("--append-system-prompt={s}"));
    }
    if let Some(b) = inv.budget_left_usd {
        cmd.arg(format!("--max-budget-usd={b:.4}"));
    }
    cli_controls(&mut cmd, inv.options);
    if let Some(schema) = inv.json_schema {
        cmd.arg(format!("--json-schema={schema}"));
    }
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(scrubbed) {
            cmd.env_remove(&name);
        }
    }
    cmd.env("CLAUDE_CONFIG_DIR", inv.config_dir)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .current_dir(inv.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// The settings the CLI loads: the project's own (`.claude/settings.json` in the workspace,
/// which the plan's repository carries), never a machine's user or local settings, so two
/// workers with different local Claude settings run a plan alike.
pub(crate) const SETTING_SOURCES: &str = "project";

/// The plan's own CLI controls (validated at ingest), and the setting sources.
fn cli_controls(cmd: &mut Command, o: &baton_core::PlanOptions) {
    cmd.arg(format!("--setting-sources={SETTING_SOURCES}"));
    if let Some(t) = o.max_turns {
        cmd.arg(format!("--max-turns={t}"));
    }
    if let Some(f) = &o.fallback_model {
        cmd.arg(format!("--fallback-model={f}"));
    }
    if let Some(e) = o.effort {
        cmd.arg(format!("--effort={e}"));
    }
    for t in o.disallowed_tools.iter().flatten() {
        cmd.arg(format!("--disallowed-tools={t}"));
    }
    // MCP servers come from the plan only: the worker's own configuration never leaks in.
    let mcp = o.mcp_config.clone().unwrap_or_else(|| {
        let mut empty = serde_json::Map::new();
        empty.insert(
            "mcpServers".into(),
            serde_json::Value::Object(Default::default()),
        );
        empty
    });
    cmd.arg(format!("--mcp-config={}", serde_json::Value::Object(mcp)))
        .arg("--strict-mcp-config");
    if let Some(a) = &o.agents {
        cmd.arg(format!("--agents={}", serde_json::Value::Object(a.clone())));
    }
}

/// Starts the CLI for `inv` (`warm`: reading stream-json messages on stdin).
pub(super) fn spawn(inv: &Invocation<'_>, warm: bool) -> Result<Child, ClaudeError> {
    command(inv, warm)
        .spawn()
        .map_err(|source| ClaudeError::Spawn {
            bin: inv.bin.display().to_string(),
            source,
        })
}

/// Reads the child's stderr to its end (at most 1 MiB) and keeps the last 2,000 characters,
/// for error messages.
pub(super) async fn stderr_tail(mut stderr: ChildStderr) -> String {
    let mut buf = Vec::new();
    let _ = (&mut stderr).take(1 << 20).read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    let skip = text.chars().count().saturating_sub(2000);
    text.chars()
        .skip(skip)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Sends `signal` to the child's whole process group (the CLI starts helpers of its own).
#[expect(
    unsafe_code,
    reason = "kill(2) on the child's process group; libc has no safe wrapper"
)]
fn signal_group(child: &Child, signal: i32) {
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory of ours.
    // The group was created for this child (`process_group(0)`), so its id is the pid.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Stops the child: SIGTERM to its group, a short grace, then SIGKILL.
pub(super) async fn terminate(child: &mut Child) {
    signal_group(child, libc::SIGTERM);
    if tokio::time::timeout(TERMINATE_GRACE, child.wait())
        .await
        .is_err()
    {
        signal_group(child, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

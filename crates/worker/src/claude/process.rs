//! Starting and stopping the CLI process: its command line (the plan's options on every run,
//! since a resumed run restores none of them), a clean environment, the box around it
//! (`sandbox`), its own process group
//! (so the helpers it starts are stopped with it), and a terminate that gives it a grace period
//! before SIGKILL.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, Command};

use super::{ClaudeError, Invocation, SessionArg};
use crate::sandbox::{BoxedRun, BOX_HOME, BOX_PATH, BOX_PORT};
use crate::transcript::SessionFiles;

/// How long a CLI gets between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(3);

/// The environment of a CLI run, whole: the child inherits nothing of the worker's (no
/// `BATON_*`, no Redis URL, no webhook or dashboard secret, no API key). The CLI gets the
/// gateway as its endpoint and the hold's token as its key; in a box, HOME and PATH of the box,
/// and the gateway as the proxy for the operator's allowed hosts.
pub(super) fn child_env(inv: &Invocation<'_>, boxed: bool) -> Vec<(String, String)> {
    let worker = |k: &str| std::env::var(k).unwrap_or_default();
    let (path, home, base_url) = if boxed {
        (
            BOX_PATH.to_owned(),
            BOX_HOME.to_owned(),
            format!("http://localhost:{BOX_PORT}"),
        )
    } else {
        (
            worker("PATH"),
            worker("HOME"),
            inv.reach.loopback_url.to_owned(),
        )
    };
    let mut env = vec![
        ("PATH".to_owned(), path),
        ("HOME".to_owned(), home),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        (
            "CLAUDE_CONFIG_DIR".to_owned(),
            inv.config_dir.display().to_string(),
        ),
        ("ANTHROPIC_BASE_URL".to_owned(), base_url),
        ("ANTHROPIC_API_KEY".to_owned(), inv.reach.token.to_owned()),
        (
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".to_owned(),
            "1".to_owned(),
        ),
        ("DISABLE_AUTOUPDATER".to_owned(), "1".to_owned()),
    ];
    // The attempt's span: the CLI's own spans (when it exports any) and the traceparent of its
    // requests join the plan's trace; behind a custom base URL it needs the propagate switch.
    if let Some(tp) = &inv.traceparent {
        env.push(("TRACEPARENT".to_owned(), tp.clone()));
        env.push((
            "CLAUDE_CODE_PROPAGATE_TRACEPARENT".to_owned(),
            "1".to_owned(),
        ));
    }
    if boxed {
        env.push(("TMPDIR".to_owned(), "/tmp".to_owned()));
        // Tools reach allowed hosts through the gateway's CONNECT proxy; the model's base URL
        // (localhost) goes direct to the relay.
        let proxy = format!("http://127.0.0.1:{BOX_PORT}");
        for k in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
        ] {
            env.push((k.to_owned(), proxy.clone()));
        }
        for k in ["NO_PROXY", "no_proxy"] {
            env.push((k.to_owned(), "localhost".to_owned()));
        }
    }
    env
}

/// The command for `inv`; `warm`: reading stream-json messages on stdin; `parked`: a spare
/// that waits for a `claim_session` (`--await-claim`). In a box when the worker has one.
fn command(inv: &Invocation<'_>, warm: bool, parked: bool) -> Command {
    let mut args = cli_args(inv, warm);
    if parked {
        args.push("--await-claim".into());
    }
    let mut cmd = match inv.reach.sandbox {
        Some(sandbox) => {
            let env = child_env(inv, true);
            let project_dir = SessionFiles::new(inv.config_dir, inv.cwd, inv.session.id()).dir();
            // The box binds it: it must exist (a first task's session has no folder yet).
            let _ = std::fs::create_dir_all(&project_dir);
            sandbox.command(&BoxedRun {
                cwd: inv.cwd,
                config_dir: inv.config_dir,
                project_dir: &project_dir,
                program: sandbox.cli(),
                args: &args,
                env: &env,
            })
        }
        None => {
            let mut cmd = Command::new(inv.bin);
            cmd.args(&args).env_clear().envs(child_env(inv, false));
            cmd
        }
    };
    cmd.current_dir(inv.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// The CLI's arguments for `inv`: the plan's options on every run (a resumed run restores none).
fn cli_args(inv: &Invocation<'_>, warm: bool) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["-p".into()];
    if warm {
        a.push("--input-format=stream-json".into());
    }
    a.push("--output-format=stream-json".into());
    a.push("--verbose".into());
    a.push(
        format!(
            "--permission-mode={}",
            inv.options.permission_mode.unwrap_or_default().as_cli_arg()
        )
        .into(),
    );
    a.push(match inv.session {
        SessionArg::New(id) => format!("--session-id={id}").into(),
        SessionArg::Resume(id) => format!("--resume={id}").into(),
    });
    if let Some(m) = &inv.options.model {
        a.push(format!("--model={m}").into());
    }
    for t in inv.options.allowed_tools.iter().flatten() {
        a.push(format!("--allowed-tools={t}").into());
    }
    if let Some(s) = &inv.options.append_system_prompt {
        a.push(format!("--append-system-prompt={s}").into());
    }
    if let Some(b) = inv.budget_left_usd {
        a.push(format!("--max-budget-usd={b:.4}").into());
    }
    cli_controls(&mut a, inv.options, inv.reach.trust_repo_settings);
    if let Some(schema) = inv.json_schema {
        a.push(format!("--json-schema={schema}").into());
    }
    a
}

/// The settings the CLI loads. None by default: a plan's repository is data, so its
/// `.claude/settings.json` (hooks, env, permissions) does not configure the CLI, and neither do
/// the worker's own user settings (two workers run a plan alike). With
/// `--trust-repo-settings`, the project's (the repository's) own, still inside the box.
/// (`--setting-sources=` with nothing loads no source: checked on the pinned CLI, whose
/// repository hooks run under `project` and not under an empty list.)
pub(crate) fn setting_sources(trust_repo_settings: bool) -> &'static str {
    if trust_repo_settings {
        "project"
    } else {
        ""
    }
}

/// The plan's own CLI controls (validated at ingest), and the setting sources.
fn cli_controls(a: &mut Vec<OsString>, o: &baton_core::PlanOptions, trust_repo_settings: bool) {
    a.push(format!("--setting-sources={}", setting_sources(trust_repo_settings)).into());
    if let Some(t) = o.max_turns {
        a.push(format!("--max-turns={t}").into());
    }
    if let Some(f) = &o.fallback_model {
        a.push(format!("--fallback-model={f}").into());
    }
    if let Some(e) = o.effort {
        a.push(format!("--effort={e}").into());
    }
    for t in o.disallowed_tools.iter().flatten() {
        a.push(format!("--disallowed-tools={t}").into());
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
    a.push(format!("--mcp-config={}", serde_json::Value::Object(mcp)).into());
    a.push("--strict-mcp-config".into());
    if let Some(agents) = &o.agents {
        a.push(format!("--agents={}", serde_json::Value::Object(agents.clone())).into());
    }
}

/// What a spare started for `inv` would be started with: its program, arguments and
/// environment, less the session id and the gateway token (a claimed spare keeps its own; the
/// gateway counts it as the hold's), the trace context and the working directory (the claim
/// moves it). A spare
/// serves a task only when these are equal.
pub(crate) fn spawn_key(inv: &Invocation<'_>) -> String {
    let args = cli_args(inv, true);
    let args = args
        .iter()
        .map(|a| a.to_string_lossy())
        .filter(|a| !a.starts_with("--session-id="));
    let env = child_env(inv, inv.reach.sandbox.is_some());
    let env = env
        .iter()
        // The trace context is the attempt's: a spare cannot have it (a claimed spare's CLI
        // runs without it; baton's own spans are the same).
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "ANTHROPIC_API_KEY" | "TRACEPARENT" | "CLAUDE_CODE_PROPAGATE_TRACEPARENT"
            )
        })
        .map(|(k, v)| format!("{k}={v}"));
    let mut key = format!("{}\n{}", inv.bin.display(), inv.config_dir.display());
    for part in args.map(|a| a.into_owned()).chain(env) {
        key.push('\n');
        key.push_str(&part);
    }
    key
}

/// Starts the CLI for `inv` (`warm`: reading stream-json messages on stdin; `parked`: a spare).
pub(super) fn spawn(inv: &Invocation<'_>, warm: bool, parked: bool) -> Result<Child, ClaudeError> {
    command(inv, warm, parked)
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

/// Stops the child: SIGTERM to its group, a short grace, then SIGKILL. A box's processes are in a
/// session of their own: they get the SIGTERM directly (bubblewrap itself would die of it at once
/// and take them down with SIGKILL, no grace).
pub(super) async fn terminate(child: &mut Child) {
    let boxed = child.id().is_some_and(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "bwrap")
    });
    if boxed {
        // Not bubblewrap itself: it waits for the box and ends when the box has.
        if let Some(pid) = child.id() {
            crate::sandbox::freeze::signal_tree(pid, libc::SIGTERM);
        }
    } else {
        signal_group(child, libc::SIGTERM);
    }
    if tokio::time::timeout(TERMINATE_GRACE, child.wait())
        .await
        .is_err()
    {
        signal_group(child, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::{ClaudeSessionId, PlanOptions};
    use std::path::Path;

    fn inv<'a>(options: &'a PlanOptions, token: &'a str, trace: Option<&str>) -> Invocation<'a> {
        Invocation {
            bin: Path::new("/opt/claude"),
            cwd: Path::new("/srv/ws/p"),
            config_dir: Path::new("/srv/config"),
            session: SessionArg::New(ClaudeSessionId::generate()),
            options,
            json_schema: None,
            budget_left_usd: None,
            prompt: "",
            timeout: Duration::from_secs(60),
            silence_timeout: Duration::from_secs(60),
            reach: crate::claude::Reach {
                sandbox: None,
                loopback_url: "http://127.0.0.1:1",
                token,
                trust_repo_settings: false,
            },
            traceparent: trace.map(str::to_owned),
        }
    }

    /// A spare serves a task only when it was started as the task's CLI would be: the session
    /// id, the token and the trace context do not count; any option, a schema or a budget does.
    #[test]
    fn a_spare_matches_only_the_command_line_it_was_started_with() {
        let default = PlanOptions::default();
        let spare = spawn_key(&inv(&default, "baton-gw-spare", None));
        let task = inv(&default, "baton-gw-hold", Some("00-ab-cd-01"));
        assert_eq!(spawn_key(&task), spare);
        let turns = PlanOptions {
            max_turns: Some(5),
            ..PlanOptions::default()
        };
        assert_ne!(spawn_key(&inv(&turns, "t", None)), spare);
        let mut schema = inv(&default, "t", None);
        schema.json_schema = Some("{}");
        assert_ne!(spawn_key(&schema), spare);
        let mut budget = inv(&default, "t", None);
        budget.budget_left_usd = Some(1.0);
        assert_ne!(spawn_key(&budget), spare);
        let mut other_bin = inv(&default, "t", None);
        other_bin.bin = Path::new("/opt/other-claude");
        assert_ne!(spawn_key(&other_bin), spare);
    }
}

use super::*;
use clap::CommandFactory;

/// Parses a command line of the worker.
pub(crate) fn parse(args: &[&str]) -> Result<Config, clap::Error> {
    Config::try_parse_from(std::iter::once("baton-worker").chain(args.iter().copied()))
}

#[test]
fn the_command_line_is_consistent() {
    Config::command().debug_assert();
}

/// Command lines and what they come to (the environment is not read for the flags given).
#[test]
fn command_lines_parse_to_their_settings_or_name_the_problem() {
    let c = parse(&["--redis-url", "redis://r:1", "--concurrency", "8"]).unwrap();
    assert_eq!(
        (c.redis.redis_url.as_str(), c.concurrency),
        ("redis://r:1", 8)
    );
    let c = parse(&["--session-ttl", "90", "--retry-delay", "200ms"]).unwrap();
    assert_eq!(c.session_ttl, Duration::from_secs(90));
    assert_eq!(c.retry_base_delay, Duration::from_millis(200));
    assert_eq!(
        parse(&["--session-ttl", "1h"]).unwrap().session_ttl,
        Duration::from_secs(3600)
    );
    assert_eq!(
        parse(&["--executor", "spawn:/bin/true"]).unwrap().executor,
        Executor::Spawn("/bin/true".into())
    );
    assert!(parse(&[]).unwrap().check().is_ok(), "the defaults agree");
    if std::env::var_os("HOME").is_some_and(|h| PathBuf::from(h).is_absolute()) {
        let state = parse(&[]).unwrap().resolved_state_dir().unwrap();
        assert!(state.is_absolute(), "the default state dir: {state:?}");
    }
    let given = parse(&["--state-dir", "/srv/baton"]).unwrap();
    assert_eq!(given.resolved_state_dir(), Ok(PathBuf::from("/srv/baton")));
    let e = parse(&["--lease", "30s"]).unwrap().check().unwrap_err();
    assert!(
        e.contains("--dead-after (12s)") && e.contains("--lease (30s)"),
        "{e}"
    );
    let c = parse(&[
        "--allow-mcp-command",
        "npx,uvx",
        "--allow-mcp-command",
        "mcp-git",
        "--sandbox-allow-host",
        "mcp.example.com,*.corp.example",
    ])
    .unwrap();
    assert_eq!(c.allow_mcp_command, ["npx", "uvx", "mcp-git"]);
    assert_eq!(c.sandbox_allow_host, ["mcp.example.com", "*.corp.example"]);
    let d = parse(&[]).unwrap();
    assert!(d.allow_mcp_command.is_empty() && d.sandbox_allow_host.is_empty());
    let mut c = parse(&["--webhook-allow", "a.example,*.b.example"]).unwrap();
    assert_eq!(c.webhook_allow, ["a.example", "*.b.example"]);
    c.webhook_secret = None;
    assert!(c.check().unwrap_err().contains("BATON_WEBHOOK_SECRET"));
    assert!(parse(&["--lease", "30s", "--dead-after", "40s"])
        .unwrap()
        .check()
        .is_ok());
    let v = parse(&["--repo-allow-path", "/srv/git,/opt/repos"]).unwrap();
    assert_eq!(
        v.repo_allow_paths,
        [PathBuf::from("/srv/git"), PathBuf::from("/opt/repos")]
    );
    for (args, says) in [
        (
            &["--workspace-root", "/w", "--state-dir", "/w/state"][..],
            "--state-dir (/w/state) is inside --workspace-root",
        ),
        (
            &["--workspace-root", "/w/ws", "--state-dir", "/w"],
            "--workspace-root (/w/ws) is inside --state-dir",
        ),
        (
            &[
                "--workspace-root",
                "/w",
                "--claude-config-dir",
                "/w/a/.claude",
            ],
            "--claude-config-dir (/w/a/.claude) is inside",
        ),
        (
            &["--workspace-root", "/c/ws", "--claude-config-dir", "/c"],
            "is inside --claude-config-dir",
        ),
    ] {
        let e = parse(args).unwrap().check().unwrap_err();
        assert!(e.contains(says), "{args:?}: {e}");
    }
    assert!(parse(&[
        "--workspace-root",
        "/w/ws",
        "--state-dir",
        "/w/state",
        "--claude-config-dir",
        "/w/claude"
    ])
    .unwrap()
    .check()
    .is_ok());
    for (bad, flag) in [
        (&["--concurrency", "0"][..], "--concurrency"),
        (&["--dead-after", "0s"], "--dead-after"),
        (&["--max-attempts", "0"], "--max-attempts"),
        (&["--max-tasks-per-hold", "0"], "--max-tasks-per-hold"),
        (&["--session-ttl", "0"], "--session-ttl"),
        (&["--lease", "10ms"], "--lease"),
        (&["--prefix", "a{b}"], "--prefix"),
        (&["--session-mode", "hot"], "--session-mode"),
        (&["--git-author", "nobody"], "--git-author"),
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains(flag), "{bad:?}: {e}");
    }
}

#[test]
fn a_cli_in_a_folder_holding_the_state_dir_is_refused_when_boxed() {
    // Every box gets the CLI's folder read-only: it may not hold the worker's own state.
    let home = std::env::temp_dir().join(format!("baton-cli-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let cli = home.join("claude");
    std::fs::write(&cli, "#!/bin/sh\n").unwrap();
    let (cli, state) = (
        cli.display().to_string(),
        home.join("state").display().to_string(),
    );
    let boxed = [
        "--claude-bin",
        &cli,
        "--state-dir",
        &state,
        "--workspace-root",
        "/w/ws",
    ];
    let e = parse(&boxed).unwrap().check().unwrap_err();
    assert!(
        e.contains("the CLI's folder") && e.contains("--state-dir"),
        "{e}"
    );
    let mut unboxed = boxed.to_vec();
    unboxed.extend(["--sandbox", "off"]);
    assert!(parse(&unboxed).unwrap().check().is_ok());
    std::fs::remove_dir_all(&home).unwrap();
}

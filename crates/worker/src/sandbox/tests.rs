//! The box's command line: what it binds, for every kind of run.

use super::*;

fn sandbox() -> Sandbox {
    Sandbox {
        bwrap: "bwrap".into(),
        relay: "/opt/baton/baton-worker".into(),
        cli: "/opt/claude/claude".into(),
        socket: "/var/run/gw.sock".into(),
        read: vec!["/opt/claude".into()],
        write: vec![],
    }
}

#[test]
fn a_boxed_run_sees_its_workspace_and_project_folder_and_no_worker_environment() {
    let env = vec![("HOME".to_owned(), BOX_HOME.to_owned())];
    let args = [OsString::from("-p")];
    let run = BoxedRun {
        cwd: Path::new("/srv/ws/p1"),
        config_dir: Path::new("/root/.claude"),
        project_dir: Path::new("/root/.claude/projects/-srv-ws-p1"),
        program: Path::new("/opt/claude/claude"),
        args: &args,
        env: &env,
    };
    let a: Vec<String> = sandbox()
        .bwrap_args(&run)
        .into_iter()
        .map(|s| s.into_string().unwrap())
        .collect();
    let joined = a.join(" ");
    for must in [
        "--unshare-all",
        "--cap-drop ALL",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--tmpfs /tmp",
        "--tmpfs /root/.claude --bind /root/.claude/projects/-srv-ws-p1 /root/.claude/projects/-srv-ws-p1",
        "--bind /srv/ws/p1 /srv/ws/p1 --chdir /srv/ws/p1",
        "--ro-bind /var/run/gw.sock /run/baton/gateway.sock",
        "--setenv HOME /tmp/home",
        "-- /opt/baton/baton-worker __baton-box-relay 41001 /run/baton/gateway.sock /opt/claude/claude -p",
    ] {
        assert!(joined.contains(must), "{must:?} missing from {joined}");
    }
    // Nothing is bound from the workspace root, the state dir or HOME.
    assert!(!joined.contains("/srv/ws "), "{joined}");
    assert!(!a.iter().any(|x| x == "/etc"), "{joined}");
    // The config dir's tmpfs comes before the project folder's bind (later mounts win).
    let tmpfs = a.iter().position(|x| x == "/root/.claude").unwrap();
    let bind = a
        .iter()
        .position(|x| x == "/root/.claude/projects/-srv-ws-p1")
        .unwrap();
    assert!(tmpfs < bind);
}

//! bubblewrap's arguments for one boxed run: which paths the box sees and how (the list in the
//! parent module's docs), its namespaces and environment, and the relay that starts first.
//! The workspace is always `/workspace` inside ([`BOX_WORKSPACE`]).
//! This is the part that changes when the box should see more or less.

use std::ffi::OsString;
use std::path::Path;

use super::{BoxedRun, Sandbox, BOX_HOME, BOX_PORT, BOX_SOCKET, BOX_WORKSPACE, RELAY_ARG};

/// Files of `/etc` the box may read: names, users, certificates, the loader's cache. Not
/// `/etc` itself (shadow, the worker's own configuration, credentials of other programs).
const ETC_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/os-release",
    "/etc/mime.types",
];

impl Sandbox {
    /// bubblewrap's arguments for `run`: the relay starts first and runs the program.
    pub(super) fn bwrap_args(&self, run: &BoxedRun<'_>) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(96);
        let mut push = |parts: &[&dyn AsRef<std::ffi::OsStr>]| {
            a.extend(parts.iter().map(|p| p.as_ref().to_owned()));
        };
        // A user namespace of its own even as root, and none nested inside it (where the
        // box could regain capabilities); every capability dropped.
        push(&[
            &"--die-with-parent",
            &"--new-session",
            &"--unshare-all",
            &"--unshare-user",
            &"--disable-userns",
            &"--cap-drop",
            &"ALL",
            &"--ro-bind",
            &"/usr",
            &"/usr",
        ]);
        // Merged-/usr systems keep /bin, /lib, ... as links into /usr; others as folders.
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(top) {
                Ok(target) => push(&[&"--symlink", &target, &top]),
                Err(_) if Path::new(top).is_dir() => push(&[&"--ro-bind", &top, &top]),
                Err(_) => {}
            }
        }
        for f in ETC_FILES {
            push(&[&"--ro-bind-try", f, f]);
        }
        push(&[
            &"--proc", &"/proc", &"--dev", &"/dev", &"--tmpfs", &"/tmp", &"--dir", &BOX_HOME,
        ]);
        push(&[&"--ro-bind", &self.relay, &self.relay]);
        // The config dir is empty and private; only this session's project folder is shared,
        // where the CLI looks for the sessions of a run in `/workspace`.
        let in_box_project =
            run.config_dir
                .join("projects")
                .join(crate::transcript::project_dir_name(Path::new(
                    BOX_WORKSPACE,
                )));
        push(&[
            &"--tmpfs",
            &run.config_dir,
            &"--bind",
            &run.project_dir,
            &in_box_project,
        ]);
        // After the config dir's tmpfs: a CLI installed under the config dir stays visible.
        for r in &self.read {
            push(&[&"--ro-bind", r, r]);
        }
        for w in &self.write {
            push(&[&"--bind", w, w]);
        }
        let ws = BOX_WORKSPACE;
        push(&[&"--bind", &run.cwd, &ws, &"--chdir", &ws]);
        push(&[&"--ro-bind", &self.socket, &BOX_SOCKET]);
        push(&[&"--clearenv"]);
        for (k, v) in run.env {
            push(&[&"--setenv", k, v]);
        }
        // The relay first: it runs the program.
        push(&[
            &"--",
            &self.relay,
            &RELAY_ARG,
            &BOX_PORT.to_string(),
            &BOX_SOCKET,
            &run.program,
        ]);
        for arg in run.args {
            push(&[arg]);
        }
        a
    }
}

#[cfg(test)]
mod tests {
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
            "--tmpfs /root/.claude --bind /root/.claude/projects/-srv-ws-p1 /root/.claude/projects/-workspace",
            "--bind /srv/ws/p1 /workspace --chdir /workspace",
            "--ro-bind /var/run/gw.sock /run/baton/gateway.sock",
            "--setenv HOME /tmp/home",
            "-- /opt/baton/baton-worker __baton-box-relay 41001 /run/baton/gateway.sock /opt/claude/claude -p",
        ] {
            assert!(joined.contains(must), "{must:?} missing from {joined}");
        }
        // Nothing is bound from the workspace root, the state dir or HOME, and the workspace's
        // real path is nowhere in the box.
        assert!(!joined.contains("/srv/ws "), "{joined}");
        assert!(!joined.contains("/srv/ws/p1 /srv/ws/p1"), "{joined}");
        assert!(!a.iter().any(|x| x == "/etc"), "{joined}");
        // The config dir's tmpfs comes before the project folder's bind (later mounts win).
        let tmpfs = a.iter().position(|x| x == "/root/.claude").unwrap();
        let bind = a
            .iter()
            .position(|x| x == "/root/.claude/projects/-workspace")
            .unwrap();
        assert!(tmpfs < bind);
    }
}

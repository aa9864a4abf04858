//! The checks of a plan's grants that depend on this worker's settings, made at ingest (the
//! document's own checks, in `baton_core`, cannot see them): `Bash` only with the sandbox on,
//! MCP servers only with commands and hosts this worker allows. A document that fails one is
//! dead-lettered with the field and the problem, like any invalid document.

use baton_core::{McpServer, PlanOptions, ValidationError};

use crate::hosts::HostList;
use crate::Config;

/// What this worker lets a plan use.
#[derive(Debug, Clone, Default)]
pub(crate) struct Allowed {
    /// The CLI runs in the worker's sandbox: `Bash` may be granted.
    pub(crate) sandboxed: bool,
    /// `--allow-mcp-command`: commands MCP servers may start, by exact name.
    pub(crate) mcp_commands: Vec<String>,
    /// `--sandbox-allow-host`: hosts remote MCP servers may be at.
    pub(crate) hosts: HostList,
}

impl Allowed {
    /// What `cfg` allows.
    pub(crate) fn new(cfg: &Config) -> Self {
        Self {
            sandboxed: cfg.sandbox_on(),
            mcp_commands: cfg
                .allow_mcp_command
                .iter()
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect(),
            hosts: HostList::new(&cfg.sandbox_allow_host),
        }
    }

    /// Checks a plan's options against what this worker allows.
    ///
    /// # Errors
    /// The first field this worker refuses (`options.allowed_tools[i]`,
    /// `options.mcp_config.mcpServers.<name>.command` or `.url`) and why.
    pub(crate) fn check(&self, o: &PlanOptions) -> Result<(), ValidationError> {
        if !self.sandboxed {
            if let Some(i) = o
                .allowed_tools
                .iter()
                .flatten()
                .position(|g| g.runs_commands())
            {
                return Err(ValidationError::new(
                    format!("options.allowed_tools[{i}]"),
                    "grants running commands, which this worker allows only with its sandbox on",
                ));
            }
            // `auto` lets the CLI's own classifier approve commands that no grant names.
            if o.permission_mode == Some(baton_core::PermissionMode::Auto) {
                return Err(ValidationError::new(
                    "options.permission_mode",
                    "auto approves commands no grant names, which this worker allows only with \
                     its sandbox on",
                ));
            }
        }
        let Some(config) = &o.mcp_config else {
            return Ok(());
        };
        let servers = McpServer::all(config).map_err(|(f, p)| ValidationError::new(f, p))?;
        for (at, server) in servers {
            match server {
                McpServer::Stdio { command } => {
                    if !self.mcp_commands.contains(&command) {
                        return Err(ValidationError::new(
                            format!("{at}.command"),
                            format!(
                                "{command:?} is not a command this worker lets MCP servers start \
                                 (its --allow-mcp-command names them exactly)"
                            ),
                        ));
                    }
                }
                McpServer::Remote { url } => {
                    let host = url.host_str().unwrap_or_default();
                    if !self.hosts.allows(host) {
                        return Err(ValidationError::new(
                            format!("{at}.url"),
                            format!(
                                "host {host:?} is not on this worker's --sandbox-allow-host list"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(json: &str) -> PlanOptions {
        serde_json::from_str(json).unwrap()
    }

    fn allowed(sandboxed: bool) -> Allowed {
        Allowed {
            sandboxed,
            mcp_commands: vec!["npx".into(), "sh".into()],
            hosts: HostList::new(&["mcp.example.com", "*.corp.example"]),
        }
    }

    #[test]
    fn auto_permissions_need_the_sandbox() {
        let o = options(r#"{"permission_mode":"auto"}"#);
        assert!(allowed(true).check(&o).is_ok());
        let e = allowed(false).check(&o).unwrap_err();
        assert_eq!(e.field, "options.permission_mode");
    }

    #[test]
    fn bash_is_granted_only_with_the_sandbox_on() {
        for tools in [
            r#"["Read","Bash"]"#,
            r#"["Read","Bash(npm test:*)"]"#,
            r#"["Read","mcp__workspace__bash"]"#,
        ] {
            let o = options(&format!(r#"{{"allowed_tools":{tools}}}"#));
            assert!(allowed(true).check(&o).is_ok(), "{tools}");
            let e = allowed(false).check(&o).unwrap_err();
            assert_eq!(e.field, "options.allowed_tools[1]", "{tools}");
            assert!(e.problem.contains("sandbox"), "{e}");
        }
        let o = options(r#"{"allowed_tools":["Read","Edit(src/**)"],"disallowed_tools":["Bash"]}"#);
        assert!(allowed(false).check(&o).is_ok(), "no command grant");
    }

    #[test]
    fn mcp_servers_need_an_allowed_command_or_host() {
        let ok = options(
            r#"{"mcp_config":{"mcpServers":{"a":{"command":"npx","args":["-y","/bin/sh"]},
                "b":{"type":"stdio","command":"sh"},"c":{"type":"http","url":"https://mcp.example.com/m"},
                "d":{"type":"sse","url":"http://x.corp.example:8080/"}}}}"#,
        );
        assert!(allowed(true).check(&ok).is_ok());
        for (server, field, why) in [
            (r#"{"command":"/bin/sh"}"#, "command", "--allow-mcp-command"),
            (r#"{"command":"./npx"}"#, "command", "--allow-mcp-command"),
            (r#"{"command":"npx "}"#, "command", "--allow-mcp-command"),
            (
                r#"{"type":"stdio","command":"bash"}"#,
                "command",
                "--allow-mcp-command",
            ),
            (
                r#"{"type":"http","url":"https://evil.example.com/"}"#,
                "url",
                "--sandbox-allow-host",
            ),
            (
                r#"{"type":"sse","url":"http://corp.example/"}"#,
                "url",
                "--sandbox-allow-host",
            ),
            (
                r#"{"type":"http","url":"http://169.254.169.254/"}"#,
                "url",
                "--sandbox-allow-host",
            ),
        ] {
            let o = options(&format!(
                r#"{{"mcp_config":{{"mcpServers":{{"s":{server}}}}}}}"#
            ));
            let e = allowed(true).check(&o).unwrap_err();
            assert_eq!(
                e.field,
                format!("options.mcp_config.mcpServers.s.{field}"),
                "{server}"
            );
            assert!(e.problem.contains(why), "{server}: {e}");
        }
        let none = Allowed::new(&crate::config::tests::parse(&[]).unwrap());
        let e = none.check(&options(
            r#"{"mcp_config":{"mcpServers":{"s":{"command":"npx"}}}}"#,
        ));
        assert!(e.is_err(), "by default no MCP command is allowed");
    }
}

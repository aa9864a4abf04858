//! What a plan may let the model use: tool grants (`options.allowed_tools`,
//! `options.disallowed_tools`) and MCP servers (`options.mcp_config`), parsed into types at
//! ingest so that nothing the CLI would read differently from baton reaches it.
//!
//! The checks here need nothing but the document. Those that depend on a worker's settings
//! (whether its sandbox is on, which MCP commands and hosts it allows) are the worker's, at
//! ingest, on these types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest tool grant accepted, in bytes.
pub const MAX_GRANT_LEN: usize = 200;

/// The CLI's built-in tools a plan may name, as the CLI spells them (names are
/// case-sensitive: the CLI would not read `bash` as `Bash`, and baton refuses what it does not
/// know rather than guess).
pub const BUILTIN_TOOLS: &[&str] = &[
    "Agent",
    "Bash",
    "Edit",
    "ExitPlanMode",
    "Glob",
    "Grep",
    "MultiEdit",
    "NotebookEdit",
    "Read",
    "Skill",
    "Task",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
    "Write",
];

/// Tools whose rule is a path pattern: `Read(./src/**)`.
const PATH_TOOLS: &[&str] = &[
    "Read",
    "Write",
    "Edit",
    "MultiEdit",
    "NotebookEdit",
    "Glob",
    "Grep",
];

/// The MCP server name the CLI uses for its own workspace tools (`mcp__workspace__bash` runs
/// commands like `Bash`).
const WORKSPACE_MCP_SERVER: &str = "workspace";

/// One entry of `allowed_tools` or `disallowed_tools`: a tool, and the CLI's rule for it where
/// the tool takes one.
///
/// The shapes accepted:
/// - a built-in tool, bare: `Read`, `Bash`, `WebSearch` (see [`BUILTIN_TOOLS`]);
/// - `Bash(<command pattern>)`, e.g. `Bash(npm test:*)`;
/// - a path tool with a path pattern **inside the workspace**: `Read(./src/**)`,
///   `Edit(docs/*.md)`. Absolute paths (`/x`, and `//x`, the CLI's absolute form), `~`, `..`
///   components, `$`, `\` and brace patterns are refused: they would name files outside the
///   workspace;
/// - `WebFetch(domain:<host>)`, e.g. `WebFetch(domain:example.com)`;
/// - `Agent(<name>)` / `Task(<name>)`, a subagent type;
/// - an MCP tool: `mcp__<server>`, `mcp__<server>__<tool>` or `mcp__<server>__*`.
///
/// A bare `Read`, `Write` or `Edit` grants the tool **for the workspace only**: the worker's
/// sandbox confines file tools to the plan's workspace, whatever the grant says.
///
/// A rule never holds a parenthesis, a backslash or a control character, and a name never holds
/// a space or a comma: the CLI splits its tool lists on spaces and commas outside parentheses,
/// so `Read Bash` or `Read(x) Bash(y)` would grant two tools where baton checked one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ToolGrant {
    text: String,
    tool: Tool,
    rule: Option<Rule>,
}

/// The tool a grant names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// One of [`BUILTIN_TOOLS`].
    Builtin(&'static str),
    /// An MCP server's tools: all of them (`tool: None`, or `*`), or one.
    Mcp {
        server: String,
        tool: Option<String>,
    },
}

/// A grant's rule, by the kind of tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `Bash(...)`: a command or command prefix pattern.
    Command(String),
    /// A path tool's pattern, relative to the workspace.
    Path(String),
    /// `WebFetch(domain:...)`: a host name.
    Domain(String),
    /// `Agent(...)`: a subagent type.
    Agent(String),
}

impl ToolGrant {
    /// The grant as written (and as passed to the CLI).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tool it names.
    pub fn tool(&self) -> &Tool {
        &self.tool
    }

    /// Its rule, if it has one.
    pub fn rule(&self) -> Option<&Rule> {
        self.rule.as_ref()
    }

    /// Whether the grant lets the model run commands: `Bash` (bare or with a rule), or the
    /// CLI's own workspace shell over MCP. Workers allow it only with their sandbox on.
    pub fn runs_commands(&self) -> bool {
        match &self.tool {
            Tool::Builtin(name) => *name == "Bash",
            Tool::Mcp { server, .. } => server == WORKSPACE_MCP_SERVER,
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn parse_mcp(rest: &str) -> Result<Tool, String> {
    let (server, tool) = match rest.split_once("__") {
        Some((s, t)) => (s, Some(t)),
        None => (rest, None),
    };
    let name_ok = |s: &str| !s.is_empty() && s.chars().all(is_name_char);
    if !name_ok(server) {
        return Err(
            "is not an MCP tool name: use mcp__<server>, mcp__<server>__<tool> or mcp__<server>__* (letters, digits, '_' and '-')"
                .into(),
        );
    }
    let tool = match tool {
        None | Some("*") => None,
        Some(t) if name_ok(t) => Some(t.to_owned()),
        Some(_) => {
            return Err(
                "is not an MCP tool name: use mcp__<server>, mcp__<server>__<tool> or mcp__<server>__* (letters, digits, '_' and '-')"
                    .into(),
            )
        }
    };
    Ok(Tool::Mcp {
        server: server.to_owned(),
        tool,
    })
}

/// A path pattern that stays inside the workspace.
fn check_path_rule(p: &str) -> Result<(), String> {
    if p.starts_with('/') {
        return Err(format!(
            "names the absolute path {p:?}; a plan's file tools may only name paths inside its workspace (./src/**)"
        ));
    }
    if p.starts_with('~') {
        return Err(format!(
            "names {p:?} in a home folder; a plan's file tools may only name paths inside its workspace (./src/**)"
        ));
    }
    if let Some(c) = p.chars().find(|c| matches!(c, '\\' | '$' | '{' | '}')) {
        return Err(format!(
            "contains {c:?}, which could name paths outside the workspace; use a plain relative pattern (./src/**)"
        ));
    }
    if p.split('/').any(|part| part == "..") {
        return Err(format!(
            "climbs out of the workspace with '..' in {p:?}; a plan's file tools may only name paths inside it"
        ));
    }
    if p.len() >= 2 && p.as_bytes()[1] == b':' && p.as_bytes()[0].is_ascii_alphabetic() {
        return Err(format!(
            "names the drive path {p:?}; name a path inside the workspace"
        ));
    }
    Ok(())
}

fn check_domain(d: &str) -> Result<(), String> {
    let host = d.strip_prefix("*.").unwrap_or(d);
    let ok = !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "has the domain {d:?}, which is not a host name (example.com, *.example.com)"
        ))
    }
}

impl FromStr for ToolGrant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_GRANT_LEN {
            return Err(format!(
                "must be a tool name or rule of 1-{MAX_GRANT_LEN} characters"
            ));
        }
        if s.chars().any(char::is_control) {
            return Err("contains a control character".into());
        }
        let (name, rule) = match s.split_once('(') {
            None => (s, None),
            Some((name, rest)) => match rest.strip_suffix(')') {
                Some(rule) => (name, Some(rule)),
                None => {
                    return Err(format!(
                        "is not a tool grant: {s:?} opens a rule with '(' but does not end with ')'"
                    ))
                }
            },
        };
        if let Some(rest) = name.strip_prefix("mcp__").filter(|_| rule.is_none()) {
            return Ok(Self {
                text: s.to_owned(),
                tool: parse_mcp(rest)?,
                rule: None,
            });
        }
        if !name.chars().all(is_name_char) || name.starts_with('-') || name.is_empty() {
            return Err(format!(
                "is not a tool grant: {name:?} is not a tool name (one name, or Name(rule); spaces and commas would make the CLI read several)"
            ));
        }
        if name.starts_with("mcp__") {
            return Err("is an MCP tool, which takes no rule in parentheses".into());
        }
        let Some(builtin) = BUILTIN_TOOLS.iter().copied().find(|t| *t == name) else {
            return Err(format!(
                "names the unknown tool {name:?}; known: {}, and mcp__<server>__<tool>",
                BUILTIN_TOOLS.join(", ")
            ));
        };
        let rule = match rule {
            None => None,
            Some("") => {
                return Err(format!(
                    "has an empty rule; write {builtin} without parentheses to grant it whole"
                ))
            }
            Some(r) => {
                if let Some(c) = r.chars().find(|c| matches!(c, '(' | ')' | '\\')) {
                    return Err(format!(
                        "has {c:?} inside its rule, which the CLI would read as the end of one rule and the start of another"
                    ));
                }
                Some(match builtin {
                    "Bash" => Rule::Command(r.to_owned()),
                    t if PATH_TOOLS.contains(&t) => {
                        check_path_rule(r)?;
                        Rule::Path(r.to_owned())
                    }
                    "WebFetch" => {
                        let d = r.strip_prefix("domain:").ok_or_else(|| {
                            format!("has the rule {r:?}; WebFetch takes domain:<host>")
                        })?;
                        check_domain(d)?;
                        Rule::Domain(d.to_owned())
                    }
                    "Agent" | "Task" => {
                        if !r.chars().all(|c| is_name_char(c) || c == ':') {
                            return Err(format!(
                                "has the rule {r:?}, which is not a subagent name"
                            ));
                        }
                        Rule::Agent(r.to_owned())
                    }
                    other => return Err(format!("{other} takes no rule in parentheses")),
                })
            }
        };
        Ok(Self {
            text: s.to_owned(),
            tool: Tool::Builtin(builtin),
            rule,
        })
    }
}

impl TryFrom<String> for ToolGrant {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ToolGrant> for String {
    fn from(g: ToolGrant) -> String {
        g.text
    }
}

impl fmt::Display for ToolGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One server of `options.mcp_config.mcpServers`, by how the CLI reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpServer {
    /// A program the CLI starts (`command`, or `type: "stdio"`): a worker runs it only if its
    /// `--allow-mcp-command` names the command exactly. `args` are data.
    Stdio { command: String },
    /// A server the CLI calls (`type: "http"` or `"sse"`): a worker calls it only if the URL's
    /// host is on its `--sandbox-allow-host` list.
    Remote { url: url::Url },
}

/// Environment variables a stdio server may not set: they change which program runs, or what
/// it loads, past the worker's `--allow-mcp-command` list.
fn is_loader_variable(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n == "PATH"
        || n.starts_with("LD_")
        || n.starts_with("DYLD_")
        || matches!(
            n.as_str(),
            "NODE_OPTIONS"
                | "NODE_PATH"
                | "PYTHONPATH"
                | "PYTHONSTARTUP"
                | "PYTHONHOME"
                | "BASH_ENV"
                | "ENV"
                | "PERL5LIB"
                | "PERL5OPT"
                | "RUBYOPT"
                | "RUBYLIB"
        )
}

impl McpServer {
    /// Parses one server's object. The error is the sub-field at fault (`command`, `url`, …;
    /// empty for the server itself) and the problem.
    ///
    /// # Errors
    /// Unknown types and fields, a missing or non-string `command` or `url`, a URL that is not
    /// `http(s)` or carries credentials, `env` entries that change what runs.
    pub fn parse(v: &serde_json::Value) -> Result<Self, (String, String)> {
        let err = |f: &str, p: String| Err((f.to_owned(), p));
        let Some(o) = v.as_object() else {
            return err("", "is not an object".into());
        };
        let kind = match o.get("type") {
            None => None,
            Some(serde_json::Value::String(t)) => Some(t.as_str()),
            Some(_) => return err("type", "is not a string".into()),
        };
        let stdio = match kind {
            Some("stdio") => true,
            Some("http" | "sse") => false,
            None => true,
            Some(t) => {
                return err(
                    "type",
                    format!("is {t:?}; known: stdio (a command), http and sse (a url)"),
                )
            }
        };
        let allowed: &[&str] = if stdio {
            &["type", "command", "args", "env"]
        } else {
            &["type", "url", "headers"]
        };
        if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
            return err(
                k,
                format!(
                    "is not known for a {} server; known: {}",
                    if stdio { "stdio" } else { "remote" },
                    allowed.join(", ")
                ),
            );
        }
        if stdio {
            let Some(command) = o.get("command").and_then(serde_json::Value::as_str) else {
                return err("command", "is missing or not a string".into());
            };
            if let Some(args) = o.get("args") {
                if !args
                    .as_array()
                    .is_some_and(|a| a.iter().all(serde_json::Value::is_string))
                {
                    return err("args", "is not a list of strings".into());
                }
            }
            if let Some(env) = o.get("env") {
                let Some(env) = env.as_object() else {
                    return err("env", "is not an object of strings".into());
                };
                if let Some(k) = env.keys().find(|k| is_loader_variable(k)) {
                    return err(
                        &format!("env.{k}"),
                        "changes which program runs or what it loads; a plan may not set it".into(),
                    );
                }
            }
            return Ok(Self::Stdio {
                command: command.to_owned(),
            });
        }
        let Some(raw) = o.get("url").and_then(serde_json::Value::as_str) else {
            return err("url", "is missing or not a string".into());
        };
        let url = match url::Url::parse(raw) {
            Ok(u) => u,
            Err(e) => return err("url", format!("is not a URL: {e}")),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return err(
                "url",
                format!("uses {:?}; only http and https are reached", url.scheme()),
            );
        }
        if url.host_str().is_none_or(str::is_empty) {
            return err("url", "has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return err(
                "url",
                "carries credentials; put them in headers if the server needs them".into(),
            );
        }
        Ok(Self::Remote { url })
    }

    /// Every server of an `mcp_config` object (`{"mcpServers": {...}}`), in order, with the
    /// path of its field (`options.mcp_config.mcpServers.<name>`).
    ///
    /// # Errors
    /// The full field path and the problem of the first server found wrong.
    pub fn all(
        config: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<(String, Self)>, (String, String)> {
        let Some(servers) = config
            .get("mcpServers")
            .and_then(serde_json::Value::as_object)
        else {
            return Ok(Vec::new());
        };
        servers
            .iter()
            .map(|(name, v)| {
                let at = format!("options.mcp_config.mcpServers.{name}");
                if name.is_empty() || !name.chars().all(is_name_char) {
                    return Err((
                        at,
                        "is not a server name (letters, digits, '_' and '-')".into(),
                    ));
                }
                Self::parse(v).map(|s| (at.clone(), s)).map_err(|(f, p)| {
                    (
                        if f.is_empty() {
                            at
                        } else {
                            format!("{at}.{f}")
                        },
                        p,
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

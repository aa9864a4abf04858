//! What a plan may let the model use: tool grants (`options.allowed_tools`,
//! `options.disallowed_tools`) and MCP servers (`options.mcp_config`), parsed into types at
//! ingest so that nothing the CLI would read differently from baton reaches it.
//!
//! The checks here need nothing but the document. Those that depend on a worker's settings
//! (whether its sandbox is on, which MCP commands and hosts it allows) are the worker's, at
//! ingest, on these types.
//!
//! # Layout
//! - this module: [`ToolGrant`], a tool's name and how a grant's text splits into name and rule;
//! - `rule`: what each built-in tool takes inside its parentheses, and the checks that keep a
//!   path rule inside the workspace and a domain rule a host name;
//! - `mcp`: [`McpServer`], one server of `options.mcp_config`.

mod mcp;
mod rule;

pub use mcp::McpServer;

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

/// A character of a tool, server or subagent name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The tool of an `mcp__...` grant without a rule (`rest` is what follows `mcp__`).
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

/// Splits a grant into its name and the rule inside its parentheses, if it has one.
fn split_rule(s: &str) -> Result<(&str, Option<&str>), String> {
    match s.split_once('(') {
        None => Ok((s, None)),
        Some((name, rest)) => match rest.strip_suffix(')') {
            Some(rule) => Ok((name, Some(rule))),
            None => Err(format!(
                "is not a tool grant: {s:?} opens a rule with '(' but does not end with ')'"
            )),
        },
    }
}

/// The built-in tool a grant's name (not an MCP tool without a rule) names.
fn builtin_tool(name: &str) -> Result<&'static str, String> {
    if !name.chars().all(is_name_char) || name.starts_with('-') || name.is_empty() {
        return Err(format!(
            "is not a tool grant: {name:?} is not a tool name (one name, or Name(rule); spaces and commas would make the CLI read several)"
        ));
    }
    if name.starts_with("mcp__") {
        return Err("is an MCP tool, which takes no rule in parentheses".into());
    }
    BUILTIN_TOOLS
        .iter()
        .copied()
        .find(|t| *t == name)
        .ok_or_else(|| {
            format!(
                "names the unknown tool {name:?}; known: {}, and mcp__<server>__<tool>",
                BUILTIN_TOOLS.join(", ")
            )
        })
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
        let (name, rule) = split_rule(s)?;
        if let Some(rest) = name.strip_prefix("mcp__").filter(|_| rule.is_none()) {
            return Ok(Self {
                text: s.to_owned(),
                tool: parse_mcp(rest)?,
                rule: None,
            });
        }
        let builtin = builtin_tool(name)?;
        let rule = rule.map(|r| rule::parse(builtin, r)).transpose()?;
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

#[cfg(test)]
mod tests;

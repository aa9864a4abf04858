//! MCP servers a plan names in `options.mcp_config.mcpServers`, parsed into [`McpServer`] by how
//! the CLI reaches each one (a program it starts, or a URL it calls). Which commands and hosts a
//! worker allows is the worker's check, at ingest, on these values.

use serde_json::{Map, Value};

use super::is_name_char;

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

/// A problem with one server: the sub-field at fault (`command`, `url`, …; empty for the server
/// itself) and what is wrong with it.
type Fault = (String, String);

fn fault<T>(field: &str, problem: impl Into<String>) -> Result<T, Fault> {
    Err((field.to_owned(), problem.into()))
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

/// Whether the server's `type` makes it a stdio server (true) or a remote one (false).
fn is_stdio(o: &Map<String, Value>) -> Result<bool, Fault> {
    match o.get("type") {
        None => Ok(true),
        Some(Value::String(t)) => match t.as_str() {
            "stdio" => Ok(true),
            "http" | "sse" => Ok(false),
            t => fault(
                "type",
                format!("is {t:?}; known: stdio (a command), http and sse (a url)"),
            ),
        },
        Some(_) => fault("type", "is not a string"),
    }
}

/// Refuses a field the server's kind does not know.
fn check_fields(o: &Map<String, Value>, stdio: bool) -> Result<(), Fault> {
    let allowed: &[&str] = if stdio {
        &["type", "command", "args", "env"]
    } else {
        &["type", "url", "headers"]
    };
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => fault(
            k,
            format!(
                "is not known for a {} server; known: {}",
                if stdio { "stdio" } else { "remote" },
                allowed.join(", ")
            ),
        ),
        None => Ok(()),
    }
}

/// A stdio server: its command, with `args` strings and an `env` that changes nothing of what
/// runs.
fn parse_stdio(o: &Map<String, Value>) -> Result<McpServer, Fault> {
    let Some(command) = o.get("command").and_then(Value::as_str) else {
        return fault("command", "is missing or not a string");
    };
    if let Some(args) = o.get("args") {
        if !args
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
        {
            return fault("args", "is not a list of strings");
        }
    }
    if let Some(env) = o.get("env") {
        let Some(env) = env.as_object() else {
            return fault("env", "is not an object of strings");
        };
        if let Some(k) = env.keys().find(|k| is_loader_variable(k)) {
            return fault(
                &format!("env.{k}"),
                "changes which program runs or what it loads; a plan may not set it",
            );
        }
    }
    Ok(McpServer::Stdio {
        command: command.to_owned(),
    })
}

/// A remote server: an `http(s)` URL with a host and no credentials.
fn parse_remote(o: &Map<String, Value>) -> Result<McpServer, Fault> {
    let Some(raw) = o.get("url").and_then(Value::as_str) else {
        return fault("url", "is missing or not a string");
    };
    let url = match url::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => return fault("url", format!("is not a URL: {e}")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return fault(
            "url",
            format!("uses {:?}; only http and https are reached", url.scheme()),
        );
    }
    if url.host_str().is_none_or(str::is_empty) {
        return fault("url", "has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return fault(
            "url",
            "carries credentials; put them in headers if the server needs them",
        );
    }
    Ok(McpServer::Remote { url })
}

impl McpServer {
    /// Parses one server's object. The error is the sub-field at fault (`command`, `url`, …;
    /// empty for the server itself) and the problem.
    ///
    /// # Errors
    /// Unknown types and fields, a missing or non-string `command` or `url`, a URL that is not
    /// `http(s)` or carries credentials, `env` entries that change what runs.
    pub fn parse(v: &Value) -> Result<Self, (String, String)> {
        let Some(o) = v.as_object() else {
            return fault("", "is not an object");
        };
        let stdio = is_stdio(o)?;
        check_fields(o, stdio)?;
        if stdio {
            parse_stdio(o)
        } else {
            parse_remote(o)
        }
    }

    /// Every server of an `mcp_config` object (`{"mcpServers": {...}}`), in order, with the
    /// path of its field (`options.mcp_config.mcpServers.<name>`).
    ///
    /// # Errors
    /// The full field path and the problem of the first server found wrong.
    pub fn all(config: &Map<String, Value>) -> Result<Vec<(String, Self)>, (String, String)> {
        let Some(servers) = config.get("mcpServers").and_then(Value::as_object) else {
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

//! The checks of a plan's `options`: the CLI's own settings (model names, tools, MCP servers,
//! agents, turns, effort), the budget and session TTL, scheduling (`not_before`, `after`) and the
//! webhook. Each problem names the option's field.

use std::collections::HashSet;

use super::{check_prompt, ValidationError};
use crate::plan::{PlanOptions, MAX_SESSION_TTL_SECS};

fn is_model_name(m: &str) -> bool {
    !(m.is_empty()
        || m.len() > 100
        || m.starts_with('-')
        || m.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ','))
}

/// `mcp_config` and `agents`: JSON objects the CLI reads, bounded in size.
fn check_cli_object(
    field: &str,
    v: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), ValidationError> {
    let Some(v) = v else { return Ok(()) };
    let len = serde_json::to_string(v)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if len > crate::plan::MAX_CLI_OBJECT_BYTES {
        return Err(ValidationError::new(
            format!("options.{field}"),
            format!(
                "is {len} bytes of JSON; the limit is {}",
                crate::plan::MAX_CLI_OBJECT_BYTES
            ),
        ));
    }
    if field == "mcp_config" {
        if !v
            .get("mcpServers")
            .is_some_and(serde_json::Value::is_object)
        {
            return Err(ValidationError::new(
                "options.mcp_config.mcpServers",
                "is missing or not an object; the CLI reads {\"mcpServers\": {\"name\": {...}}}",
            ));
        }
        if let Some(k) = v.keys().find(|k| *k != "mcpServers") {
            return Err(ValidationError::new(
                format!("options.mcp_config.{k}"),
                "is not known; only mcpServers is",
            ));
        }
        // The shape of each server; whether this worker may start or call it is the worker's
        // check, at ingest.
        crate::grants::McpServer::all(v).map_err(|(f, p)| ValidationError::new(f, p))?;
        return Ok(());
    }
    for (name, agent) in v {
        let at = format!("options.agents.{name}");
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ValidationError::new(
                at,
                "is not an agent name (1-64 letters, digits, '-' or '_')",
            ));
        }
        for part in ["description", "prompt"] {
            if agent
                .get(part)
                .and_then(serde_json::Value::as_str)
                .is_none_or(|s| s.trim().is_empty())
            {
                return Err(ValidationError::new(
                    format!("{at}.{part}"),
                    "is missing or not a non-empty string",
                ));
            }
        }
    }
    Ok(())
}

/// Checks every option a plan sets; the first problem found, in the order of the fields below.
pub(super) fn check_options(o: &PlanOptions) -> Result<(), ValidationError> {
    check_cli_settings(o)?;
    check_budget(o)?;
    check_schedule(o)?;
    if let Some(k) = &o.concurrency_key {
        crate::limits::check_key(k)
            .map_err(|problem| ValidationError::new("options.concurrency_key", problem))?;
    }
    if let Some(n) = &o.notify {
        n.check().map_err(|(field, problem)| {
            ValidationError::new(format!("options.notify.{field}"), problem)
        })?;
    }
    if let Some(t) = o.session_ttl_secs {
        if t == 0 || t > MAX_SESSION_TTL_SECS {
            return Err(ValidationError::new(
                "options.session_ttl_secs",
                format!("must be between 1 and {MAX_SESSION_TTL_SECS} seconds"),
            ));
        }
    }
    Ok(())
}

/// The options passed to the CLI as they are: models, turns, MCP servers, agents and the
/// appended system prompt.
fn check_cli_settings(o: &PlanOptions) -> Result<(), ValidationError> {
    if o.model.as_deref().is_some_and(|m| !is_model_name(m)) {
        return Err(ValidationError::new(
            "options.model",
            "must be a model name (1-100 characters, no spaces or commas, not starting with '-')",
        ));
    }
    if let Some(f) = &o.fallback_model {
        if !f.split(',').all(is_model_name) {
            return Err(ValidationError::new(
                "options.fallback_model",
                "must be model names separated by commas (each 1-100 characters, no spaces, not starting with '-')",
            ));
        }
    }
    if let Some(t) = o.max_turns {
        if t == 0 || t > crate::plan::MAX_TURNS {
            return Err(ValidationError::new(
                "options.max_turns",
                format!("must be between 1 and {}", crate::plan::MAX_TURNS),
            ));
        }
    }
    // allowed_tools and disallowed_tools are typed (`ToolGrant`): serde has checked them.
    check_cli_object("mcp_config", o.mcp_config.as_ref())?;
    check_cli_object("agents", o.agents.as_ref())?;
    if let Some(s) = &o.append_system_prompt {
        check_prompt(s).map_err(|p| ValidationError::new("options.append_system_prompt", p))?;
        if s.len() > crate::plan::MAX_APPEND_SYSTEM_PROMPT_BYTES {
            return Err(ValidationError::new(
                "options.append_system_prompt",
                format!(
                    "is {} bytes; the limit is {} (it is passed as one command-line argument, \
                     and Linux caps an argument at {} bytes)",
                    s.len(),
                    crate::plan::MAX_APPEND_SYSTEM_PROMPT_BYTES,
                    crate::plan::MAX_ARG_STRLEN
                ),
            ));
        }
    }
    Ok(())
}

/// `max_budget_usd`: a positive amount.
fn check_budget(o: &PlanOptions) -> Result<(), ValidationError> {
    if let Some(b) = o.max_budget_usd {
        if !(b.is_finite() && b > 0.0) {
            return Err(ValidationError::new(
                "options.max_budget_usd",
                "must be a positive number of US dollars",
            ));
        }
    }
    Ok(())
}

/// When the plan may start: `not_before` a UTC time, `after` a short list of distinct plans.
fn check_schedule(o: &PlanOptions) -> Result<(), ValidationError> {
    if let Some(t) = &o.not_before {
        let utc = t.ends_with('Z') || t.ends_with('z');
        if !utc || o.not_before_ms().is_none() {
            return Err(ValidationError::new(
                "options.not_before",
                format!("{t:?} is not an RFC 3339 time in UTC, such as \"2026-12-01T08:00:00Z\""),
            ));
        }
    }
    if let Some(after) = &o.after {
        if after.len() > crate::plan::MAX_AFTER {
            return Err(ValidationError::new(
                "options.after",
                format!(
                    "names {} plans; the limit is {}",
                    after.len(),
                    crate::plan::MAX_AFTER
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, p) in after.iter().enumerate() {
            if !seen.insert(p) {
                return Err(ValidationError::new(
                    format!("options.after[{i}]"),
                    format!("{p} is named twice"),
                ));
            }
        }
    }
    Ok(())
}

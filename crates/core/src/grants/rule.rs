//! What a built-in tool takes inside its parentheses (`Bash(npm test:*)`, `Read(./src/**)`,
//! `WebFetch(domain:example.com)`, `Agent(reviewer)`), and the checks that keep a path rule
//! inside the workspace and a domain rule a host name. A grant's name is parsed in the parent
//! module; this is the part that changes when the CLI learns a new kind of rule.

use super::{is_name_char, Rule};

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

/// The rule `r` of the built-in tool `builtin`, checked.
pub(super) fn parse(builtin: &'static str, r: &str) -> Result<Rule, String> {
    if r.is_empty() {
        return Err(format!(
            "has an empty rule; write {builtin} without parentheses to grant it whole"
        ));
    }
    if let Some(c) = r.chars().find(|c| matches!(c, '(' | ')' | '\\')) {
        return Err(format!(
            "has {c:?} inside its rule, which the CLI would read as the end of one rule and the start of another"
        ));
    }
    Ok(match builtin {
        "Bash" => Rule::Command(r.to_owned()),
        t if PATH_TOOLS.contains(&t) => {
            check_path_rule(r)?;
            Rule::Path(r.to_owned())
        }
        "WebFetch" => {
            let d = r
                .strip_prefix("domain:")
                .ok_or_else(|| format!("has the rule {r:?}; WebFetch takes domain:<host>"))?;
            check_domain(d)?;
            Rule::Domain(d.to_owned())
        }
        "Agent" | "Task" => {
            if !r.chars().all(|c| is_name_char(c) || c == ':') {
                return Err(format!("has the rule {r:?}, which is not a subagent name"));
            }
            Rule::Agent(r.to_owned())
        }
        other => return Err(format!("{other} takes no rule in parentheses")),
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

//! Facts: names an earlier task chose, found in the conversation a request carries.
//!
//! The conversation is read the way the model receives it: every user text block (system
//! reminders and recaps included), every tool result's text, every assistant text and every
//! assistant tool use's input, as the plain text of its values (a `Write`'s `file_path`, then its
//! `content`, unescaped), so a pattern matches source code as written. The system prompt is never
//! read: a fact must have come through the conversation.

use regex::{Captures, Regex};
use serde_json::Value;

use crate::prompt::result_text;

/// How a fact is found: a pattern, how its match is written, and what to write without one.
#[derive(Debug)]
pub(crate) struct Fact {
    pub(crate) pattern: Regex,
    /// `$1`..`$9` stand for the match's capture groups.
    pub(crate) render: String,
    /// Written as is when the conversation holds no match: what a model without context invents.
    pub(crate) guess: String,
}

/// What a fact resolved to in one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) value: String,
    /// Whether the value came from the conversation (false: it is the guess).
    pub(crate) found: bool,
}

/// A request's conversation as text, one part per block, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    parts: Vec<String>,
}

impl Conversation {
    /// The conversation of a Messages API request body (its `messages`, never its `system`).
    pub(crate) fn of_request(body: &Value) -> Self {
        let mut parts = Vec::new();
        let messages = body.get("messages").and_then(Value::as_array);
        for m in messages.into_iter().flatten() {
            match m.get("content") {
                Some(Value::String(s)) => parts.push(s.clone()),
                Some(Value::Array(blocks)) => parts.extend(blocks.iter().filter_map(block_text)),
                _ => {}
            }
        }
        Self { parts }
    }

    /// The fact's value here: its pattern's last match in the conversation, written with
    /// `render`; the guess when nothing matches.
    pub(crate) fn resolve(&self, fact: &Fact) -> Resolved {
        let last = self
            .parts
            .iter()
            .rev()
            .find_map(|part| fact.pattern.captures_iter(part).last());
        match last {
            Some(caps) => Resolved {
                value: expand(&fact.render, &caps),
                found: true,
            },
            None => Resolved {
                value: fact.guess.clone(),
                found: false,
            },
        }
    }
}

/// The text a content block shows the model: a text block's text, a tool result's text, a tool
/// use's input values. Other blocks (images, thinking) hold no facts.
fn block_text(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str)? {
        "text" => block.get("text").and_then(Value::as_str).map(str::to_owned),
        "tool_result" => Some(result_text(block)),
        "tool_use" => {
            let mut out = String::new();
            plain_text(block.get("input")?, &mut out);
            Some(out)
        }
        _ => None,
    }
}

/// A JSON value's strings and scalars as plain text, one per line. An object's `file_path`
/// comes first (the request's own key order is not kept), then its other values by key.
fn plain_text(value: &Value, out: &mut String) {
    let mut push = |s: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    };
    match value {
        Value::Null => {}
        Value::String(s) => push(s),
        Value::Bool(_) | Value::Number(_) => push(&value.to_string()),
        Value::Array(items) => items.iter().for_each(|v| plain_text(v, out)),
        Value::Object(fields) => {
            let path = fields.get("file_path");
            path.into_iter().for_each(|v| plain_text(v, out));
            fields
                .iter()
                .filter(|(k, _)| *k != "file_path")
                .for_each(|(_, v)| plain_text(v, out));
        }
    }
}

/// `render` with `$1`..`$9` replaced by the capture groups (a group that took no part in the
/// match is empty); any other `$` stays as written.
pub(crate) fn expand(render: &str, caps: &Captures<'_>) -> String {
    let mut out = String::with_capacity(render.len());
    let mut chars = render.chars().peekable();
    while let Some(c) = chars.next() {
        let group = chars
            .peek()
            .and_then(|d| d.to_digit(10))
            .filter(|d| *d >= 1);
        match (c, group) {
            ('$', Some(d)) => {
                chars.next();
                out.push_str(caps.get(d as usize).map_or("", |m| m.as_str()));
            }
            _ => out.push(c),
        }
    }
    out
}

/// The highest group `render` names (`$1`..`$9`), 0 if none: checked against the pattern's
/// groups when the key is loaded.
pub(crate) fn highest_group(render: &str) -> usize {
    render
        .as_bytes()
        .windows(2)
        .filter(|w| w[0] == b'$' && (b'1'..=b'9').contains(&w[1]))
        .map(|w| usize::from(w[1] - b'0'))
        .max()
        .unwrap_or(0)
}

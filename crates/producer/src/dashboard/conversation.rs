//! A plan's conversation as a person reads it, from the committed transcript: each prompt, the
//! assistant's text, and what each tool use did (a file written or edited, a command run). The
//! transcript's line format is the CLI's own and changes between versions, so anything this
//! does not recognize is left out rather than guessed at.

use serde_json::Value;

/// One step of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Turn {
    /// A user prompt (a task's, or a recap that opened a new session).
    Prompt(String),
    /// The assistant's text.
    Text(String),
    /// A tool the assistant used, and what on.
    Tool { name: String, target: String },
}

/// The turns of a transcript (`<session>.jsonl`), in order.
pub(super) fn turns(jsonl: &[u8]) -> Vec<Turn> {
    let text = String::from_utf8_lossy(jsonl);
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let content = v.pointer("/message/content");
        match v.get("type").and_then(Value::as_str) {
            Some("user") => match content {
                Some(Value::String(s)) => push_prompt(&mut out, s),
                Some(Value::Array(blocks)) => {
                    for b in blocks {
                        if b.get("type").and_then(Value::as_str) == Some("text") {
                            push_prompt(
                                &mut out,
                                b.get("text").and_then(Value::as_str).unwrap_or(""),
                            );
                        }
                    }
                }
                _ => {}
            },
            Some("assistant") => {
                for b in content.and_then(Value::as_array).into_iter().flatten() {
                    match b.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            let t = b.get("text").and_then(Value::as_str).unwrap_or("").trim();
                            if !t.is_empty() {
                                out.push(Turn::Text(t.to_owned()));
                            }
                        }
                        Some("tool_use") => out.push(tool(b)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn push_prompt(out: &mut Vec<Turn>, text: &str) {
    let t = text.trim();
    // The CLI's own context notes are not the user's words.
    if !t.is_empty() && !t.starts_with("<system-reminder>") {
        out.push(Turn::Prompt(t.to_owned()));
    }
}

fn tool(block: &Value) -> Turn {
    let name = block
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("tool")
        .to_owned();
    let input = block.get("input");
    let field = |k: &str| input.and_then(|i| i.get(k)).and_then(Value::as_str);
    let target = field("file_path")
        .or_else(|| field("notebook_path"))
        .or_else(|| field("command"))
        .or_else(|| field("pattern"))
        .or_else(|| field("url"))
        .unwrap_or("")
        .to_owned();
    Turn::Tool { name, target }
}

/// What a tool use did, in words.
pub(super) fn describe(name: &str) -> &'static str {
    match name {
        "Write" => "wrote",
        "Edit" | "MultiEdit" | "NotebookEdit" => "edited",
        "Read" => "read",
        "Bash" => "ran",
        "Glob" | "Grep" => "searched",
        _ => "used",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_read_as_a_chat() {
        let jsonl = br#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"<system-reminder>ctx</system-reminder>"},{"type":"text","text":"Create a.py"}]}}
{"type":"assistant","message":{"content":[{"type":"text","text":"Sure."},{"type":"tool_use","name":"Write","input":{"file_path":"/w/a.py","content":"x"}}]}}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"ok"}]}}
{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"pytest"}}]}}
{"type":"cost-state","whatever":1}
not json
{"type":"user","message":{"role":"user","content":"Now tests"}}"#;
        assert_eq!(
            turns(jsonl),
            [
                Turn::Prompt("Create a.py".into()),
                Turn::Text("Sure.".into()),
                Turn::Tool {
                    name: "Write".into(),
                    target: "/w/a.py".into()
                },
                Turn::Tool {
                    name: "Bash".into(),
                    target: "pytest".into()
                },
                Turn::Prompt("Now tests".into()),
            ]
        );
        assert_eq!(describe("Edit"), "edited");
    }
}

//! Reading a Messages API request: the conversation's prompts, and the tool results the CLI
//! sent back since the newest one (how far the model's script has got this turn).

use serde_json::Value;

/// What the newest turn of a request asks for.
pub(crate) struct Turn {
    /// Every user prompt of the conversation, oldest first (system reminders left out).
    pub(crate) prompts: Vec<String>,
    /// Tool results since the newest prompt (how many files were written this turn).
    pub(crate) tool_results_since_prompt: usize,
    /// The text of each tool result since the newest prompt, in order (reads, then commands,
    /// then writes): what the commands printed, as the CLI sent it back.
    pub(super) result_texts: Vec<String>,
    /// The request offers the CLI's `StructuredOutput` tool (a run with `--json-schema`).
    pub(super) offers_structured: bool,
}

/// A tool result's text: a string, or its text blocks joined.
pub(crate) fn result_text(block: &Value) -> String {
    match block.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A user message's prompts (system reminders left out), how many tool results it holds and
/// their texts.
fn prompt_texts(content: &Value) -> (Vec<String>, usize, Vec<String>) {
    match content {
        Value::String(s) => (vec![s.clone()], 0, Vec::new()),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            let mut results = 0;
            let mut outputs = Vec::new();
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                        if !t.trim_start().starts_with("<system-reminder>") {
                            texts.push(t.to_owned());
                        }
                    }
                    Some("tool_result") => {
                        results += 1;
                        outputs.push(result_text(b));
                    }
                    _ => {}
                }
            }
            (texts, results, outputs)
        }
        _ => (Vec::new(), 0, Vec::new()),
    }
}

/// The turn a request's body asks for: its prompts, and the tool results since the newest one.
pub(crate) fn read_turn(body: &Value) -> Turn {
    let mut prompts = Vec::new();
    let mut since = 0;
    let mut outputs: Vec<String> = Vec::new();
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let (texts, results, out) = prompt_texts(m.get("content").unwrap_or(&Value::Null));
        if texts.is_empty() {
            since += results;
            outputs.extend(out);
        } else {
            prompts.extend(texts);
            since = results;
            outputs = out;
        }
    }
    let offers_structured = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools
                .iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(STRUCTURED_TOOL))
        });
    Turn {
        prompts,
        tool_results_since_prompt: since,
        result_texts: outputs,
        offers_structured,
    }
}

/// The tool the CLI offers the model for a structured answer when run with `--json-schema`.
pub(super) const STRUCTURED_TOOL: &str = "StructuredOutput";

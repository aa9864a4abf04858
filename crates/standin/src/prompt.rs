//! What a request asks of the model: the conversation's prompts, the tool results of the turn
//! so far, the working directory, and the prompt's instructions (`Read:` and `File:` lines,
//! `[[standin:...]]` faults), turned into the next reply.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::wire::{Ending, Reply};
use crate::{Fault, Shared};

/// What the newest turn of a request asks for.
pub(crate) struct Turn {
    /// Every user prompt of the conversation, oldest first (system reminders left out).
    pub(crate) prompts: Vec<String>,
    /// Tool results since the newest prompt (how many files were written this turn).
    tool_results_since_prompt: usize,
    /// The text of each tool result since the newest prompt, in order (reads, then commands,
    /// then writes): what the commands printed, as the CLI sent it back.
    result_texts: Vec<String>,
    /// The request offers the CLI's `StructuredOutput` tool (a run with `--json-schema`).
    offers_structured: bool,
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
const STRUCTURED_TOOL: &str = "StructuredOutput";

/// `File: path` lines each followed by a fenced block, in order.
fn files_in(prompt: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = prompt.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(path) = line.trim().strip_prefix("File:") else {
            continue;
        };
        let path = path.trim().trim_matches('`').to_owned();
        // Skip to the opening fence.
        let mut opened = false;
        while let Some(l) = lines.peek() {
            if l.trim_start().starts_with("```") {
                lines.next();
                opened = true;
                break;
            }
            if !l.trim().is_empty() {
                break;
            }
            lines.next();
        }
        if !opened {
            continue;
        }
        let mut content = String::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            content.push_str(l);
            content.push('\n');
        }
        out.push((path, content));
    }
    out
}

/// `Read: path` lines, in order.
fn reads_in(prompt: &str) -> Vec<String> {
    prompt
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Read:"))
        .map(|p| p.trim().trim_matches('`').to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `Bash: command` lines, in order: shell commands the model runs with the CLI's Bash tool.
fn commands_in(prompt: &str) -> Vec<String> {
    prompt
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Bash:"))
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// A `[[standin:NAME ARGS]]` directive's arguments, if the prompt has it.
fn directive<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("[[standin:{name}");
    let mut from = 0;
    while let Some(i) = prompt[from..].find(&open) {
        let rest = &prompt[from + i + open.len()..];
        // The whole name: `structured` is not `structured-once`.
        if rest.starts_with(|c: char| c.is_whitespace() || c == ']') {
            let end = rest.find("]]")?;
            return Some(rest[..end].trim());
        }
        from += i + open.len();
    }
    None
}

/// A note baton puts before a task's prompt when the session moved to another working directory
/// (`[baton] This conversation continues in another working directory: ...`, then a blank line).
const MOVED_NOTE: &str = "[baton] This conversation continues in another working directory";

/// The task's own text: the prompt without baton's note about a moved working directory, so that
/// `times=N` counts attempts of the same task wherever they run.
fn task_text(prompt: &str) -> &str {
    match prompt.strip_prefix(MOVED_NOTE) {
        Some(rest) => rest.split_once("\n\n").map_or(prompt, |(_, task)| task),
        None => prompt,
    }
}

pub(crate) fn decide(
    shared: &mut Shared,
    turn: &Turn,
    prompt: &str,
    fault: Option<Fault>,
) -> (Reply, Ending, Duration) {
    let prompt = task_text(prompt);
    let sleep = directive(prompt, "sleep")
        .and_then(|a| a.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_default();
    if let Some(f) = fault {
        if f.stall {
            return (Reply::Text(String::new()), Ending::Hang, sleep);
        }
        return (Reply::Error(f.status), Ending::Normal, sleep);
    }
    if let Some(secs) = directive(prompt, "limit").and_then(|a| a.parse::<u64>().ok()) {
        let seen = shared
            .fail_counts
            .entry(format!("limit\u{0}{prompt}"))
            .or_default();
        *seen += 1;
        if *seen == 1 {
            return (Reply::Limited(secs), Ending::Normal, sleep);
        }
    }
    if let Some(args) = directive(prompt, "fail") {
        let mut parts = args.split_whitespace();
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(500);
        let times = parts
            .find_map(|p| p.strip_prefix("times="))
            .and_then(|n| n.parse::<u32>().ok());
        let seen = shared.fail_counts.entry(prompt.to_owned()).or_default();
        *seen += 1;
        if times.is_none_or(|t| *seen <= t) {
            return (Reply::Error(status), Ending::Normal, sleep);
        }
    }
    let hang = directive(prompt, "hang").is_some_and(|args| {
        let arg = |name: &str| {
            args.split_whitespace()
                .find_map(|p| p.strip_prefix(name))
                .and_then(|n| n.parse::<usize>().ok())
        };
        if arg("after_writes=").is_some_and(|n| turn.tool_results_since_prompt < n) {
            return false;
        }
        let seen = shared
            .fail_counts
            .entry(format!("hang\u{0}{prompt}"))
            .or_default();
        *seen += 1;
        arg("times=").is_none_or(|t| *seen as usize <= t)
    });
    let ending = if hang {
        Ending::Hang
    } else if directive(prompt, "cut").is_some() {
        Ending::Cut
    } else {
        Ending::Normal
    };
    // One tool use per request: the reads first, then the commands, then the writes, then the
    // closing text.
    let reads = reads_in(prompt);
    let commands = commands_in(prompt);
    let files = files_in(prompt);
    // Paths go to the CLI as the prompt gives them: it resolves a relative one against its own
    // working directory (what the request says of that directory can be stale right after a
    // session moved between machines).
    let step = turn.tool_results_since_prompt;
    if let Some(path) = reads.get(step) {
        let input = json!({"file_path": path});
        return (
            Reply::Tool {
                name: "Read",
                input,
            },
            ending,
            sleep,
        );
    }
    if let Some(command) = step.checked_sub(reads.len()).and_then(|i| commands.get(i)) {
        let input = json!({"command": command, "description": "run a command"});
        return (
            Reply::Tool {
                name: "Bash",
                input,
            },
            ending,
            sleep,
        );
    }
    let done = reads.len() + commands.len();
    if let Some((path, content)) = step.checked_sub(done).and_then(|i| files.get(i)) {
        let input = json!({"file_path": path, "content": content});
        return (
            Reply::Tool {
                name: "Write",
                input,
            },
            ending,
            sleep,
        );
    }
    // A structured answer, after the reads and writes: `[[standin:structured JSON]]`, or
    // `[[standin:structured-once JSON]]` for the first request that asks (a wrong answer to
    // be refused, say), then `structured`.
    if turn.offers_structured && step == done + files.len() {
        let chosen = match directive(prompt, "structured-once") {
            Some(args) => {
                let seen = shared
                    .fail_counts
                    .entry(format!("structured-once\u{0}{args}"))
                    .or_default();
                *seen += 1;
                if *seen == 1 {
                    Some(args)
                } else {
                    directive(prompt, "structured")
                }
            }
            None => directive(prompt, "structured"),
        };
        if let Some(input) = chosen.and_then(|a| serde_json::from_str::<Value>(a).ok()) {
            return (
                Reply::Tool {
                    name: STRUCTURED_TOOL,
                    input,
                },
                ending,
                sleep,
            );
        }
    }
    if directive(prompt, "brief").is_some() {
        // A short closing answer, the same size at every turn (for measuring growth).
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        return (
            Reply::Text(format!("[standin] Done. Wrote {}.", names.join(", "))),
            ending,
            sleep,
        );
    }
    let ran = reads.len()..reads.len() + commands.len();
    (Reply::Text(report(turn, &files, ran)), ending, sleep)
}

/// The default answer: what the conversation held, so context can be checked from outside.
fn report(turn: &Turn, files: &[(String, String)], commands: std::ops::Range<usize>) -> String {
    let n = turn.prompts.len();
    let mut s = format!("[standin] This conversation holds {n} prompt(s).");
    for (i, p) in turn.prompts.iter().enumerate() {
        let head: String = p
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(60)
            .collect();
        let _ = write!(s, " #{}: \"{head}\"", i + 1);
    }
    if !files.is_empty() {
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        let _ = write!(s, " Wrote {}.", names.join(", "));
    }
    // What each command printed (the tool results after the reads), so a test can see what a
    // shell in the CLI's environment saw.
    for out in turn.result_texts.get(commands).into_iter().flatten() {
        let _ = write!(s, "\n[bash output] {out}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_blocks_are_found_in_order() {
        let p = "Make two files.\nFile: a/b.py\n```python\nprint(1)\n```\ntext\nFile: `c.txt`\n\n```\nhi\n```\n";
        let f = files_in(p);
        assert_eq!(
            f,
            vec![
                ("a/b.py".into(), "print(1)\n".into()),
                ("c.txt".into(), "hi\n".into())
            ]
        );
    }

    #[test]
    fn commands_come_after_reads_and_before_writes_and_their_output_is_reported() {
        let p = "Read: a.txt\nBash: env | sort\nBash: id\nFile: b.txt\n```\nb\n```\n";
        assert_eq!(commands_in(p), ["env | sort", "id"]);
        let mut shared = Shared::default();
        let turn = |n, texts: &[&str]| Turn {
            prompts: vec![p.into()],
            tool_results_since_prompt: n,
            result_texts: texts.iter().map(|t| (*t).to_owned()).collect(),
            offers_structured: false,
        };
        let tool = |t: &Turn, shared: &mut Shared| match decide(shared, t, p, None).0 {
            Reply::Tool { name, input } => {
                format!("{name} {}", input["command"].as_str().unwrap_or(""))
            }
            Reply::Text(s) => s,
            _ => "other".into(),
        };
        assert_eq!(tool(&turn(0, &[]), &mut shared), "Read ");
        assert_eq!(tool(&turn(1, &["a"]), &mut shared), "Bash env | sort");
        assert_eq!(tool(&turn(2, &["a", "HOME=/x"]), &mut shared), "Bash id");
        assert_eq!(
            tool(&turn(3, &["a", "HOME=/x", "uid=0"]), &mut shared),
            "Write "
        );
        let end = tool(&turn(4, &["a", "HOME=/x", "uid=0", "ok"]), &mut shared);
        assert!(
            end.ends_with("\n[bash output] HOME=/x\n[bash output] uid=0"),
            "{end}"
        );
    }

    #[test]
    fn reads_come_before_writes() {
        let p = "Read: one.txt\nRead: `two.txt`\nFile: three.txt\n```\n3\n```\n";
        assert_eq!(reads_in(p), ["one.txt", "two.txt"]);
        let mut shared = Shared::default();
        let turn = |n| Turn {
            prompts: vec![p.into()],
            tool_results_since_prompt: n,
            result_texts: Vec::new(),
            offers_structured: false,
        };
        let names: Vec<String> = (0..4)
            .map(|n| match decide(&mut shared, &turn(n), p, None).0 {
                Reply::Tool { name, input } => {
                    format!("{name} {}", input["file_path"].as_str().unwrap_or(""))
                }
                Reply::Text(_) => "text".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            ["Read one.txt", "Read two.txt", "Write three.txt", "text"]
        );
    }

    #[test]
    fn baton_notes_about_a_moved_directory_are_not_part_of_the_task() {
        let moved = format!("{MOVED_NOTE}: /b (it was /a). Use paths relative to it.\n\nDo it.");
        assert_eq!(task_text(&moved), "Do it.");
        assert_eq!(task_text("Do it.\n\nNow."), "Do it.\n\nNow.");
    }

    #[test]
    fn directives_parse() {
        assert_eq!(
            directive("x [[standin:fail 529 times=2]] y", "fail"),
            Some("529 times=2")
        );
        assert_eq!(directive("x [[standin:hang]]", "hang"), Some(""));
        assert_eq!(directive("nothing", "hang"), None);
    }

    #[test]
    fn turns_count_prompts_and_tool_results() {
        let body = json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "one"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": [{"type": "tool_use"}]},
            {"role": "user", "content": [{"type": "tool_result"}]}
        ]});
        let t = read_turn(&body);
        assert_eq!(t.prompts, vec!["one", "two"]);
        assert_eq!(t.tool_results_since_prompt, 1);
    }
}

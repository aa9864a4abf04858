//! What a request asks of the model: the conversation's prompts, the tool results of the turn
//! so far, the working directory, and the prompt's instructions (`Read:` and `File:` lines,
//! `[[standin:...]]` faults), turned into the next reply.
//!
//! # Layout
//! - `turn`: reading the request (prompts, tool results since the newest prompt);
//! - `script`: the instructions in a prompt's text (tool lines and directives);
//! - this module: [`decide`], the next reply from both, step by step.

mod script;
mod turn;

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::wire::{Ending, Reply};
use crate::{Fault, Shared};
use script::{commands_in, directive, files_in, reads_in, task_text};
use turn::STRUCTURED_TOOL;
pub(crate) use turn::{read_turn, result_text, Turn};

/// The next reply to a request: the reply itself, how its stream ends and how long to wait
/// before sending it.
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
    if let Some((reply, ending)) = scripted_failure(shared, prompt, fault) {
        return (reply, ending, sleep);
    }
    let ending = ending(shared, turn, prompt);
    (answer(shared, turn, prompt), ending, sleep)
}

/// A failure instead of an answer: the fault the stand-in was told to inject, a first
/// `[[standin:limit SECS]]` (a 429), or a `[[standin:fail STATUS times=N]]` not yet used up.
fn scripted_failure(
    shared: &mut Shared,
    prompt: &str,
    fault: Option<Fault>,
) -> Option<(Reply, Ending)> {
    if let Some(f) = fault {
        if f.stall {
            return Some((Reply::Text(String::new()), Ending::Hang));
        }
        return Some((Reply::Error(f.status), Ending::Normal));
    }
    if let Some(secs) = directive(prompt, "limit").and_then(|a| a.parse::<u64>().ok()) {
        let seen = shared
            .fail_counts
            .entry(format!("limit\u{0}{prompt}"))
            .or_default();
        *seen += 1;
        if *seen == 1 {
            return Some((Reply::Limited(secs), Ending::Normal));
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
            return Some((Reply::Error(status), Ending::Normal));
        }
    }
    None
}

/// How the reply's stream ends: it hangs (`[[standin:hang after_writes=N times=N]]`), is cut
/// off (`[[standin:cut]]`), or ends normally.
fn ending(shared: &mut Shared, turn: &Turn, prompt: &str) -> Ending {
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
    if hang {
        Ending::Hang
    } else if directive(prompt, "cut").is_some() {
        Ending::Cut
    } else {
        Ending::Normal
    }
}

/// The answer of this step: one tool use per request (the reads first, then the commands, then
/// the writes, then a structured answer if one is asked for), then the closing text.
fn answer(shared: &mut Shared, turn: &Turn, prompt: &str) -> Reply {
    let reads = reads_in(prompt);
    let commands = commands_in(prompt);
    let files = files_in(prompt);
    let step = turn.tool_results_since_prompt;
    if let Some(tool) = tool_step(step, &reads, &commands, &files) {
        return tool;
    }
    let done = reads.len() + commands.len() + files.len();
    if turn.offers_structured && step == done {
        if let Some(input) = structured_answer(shared, prompt) {
            return Reply::Tool {
                name: STRUCTURED_TOOL,
                input,
            };
        }
    }
    if directive(prompt, "brief").is_some() {
        // A short closing answer, the same size at every turn (for measuring growth).
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        return Reply::Text(format!("[standin] Done. Wrote {}.", names.join(", ")));
    }
    let ran = reads.len()..reads.len() + commands.len();
    Reply::Text(report(turn, &files, ran))
}

/// The tool use of step `step` (the tool results so far this turn), if the prompt's reads,
/// commands and writes are not all done.
///
/// Paths go to the CLI as the prompt gives them: it resolves a relative one against its own
/// working directory (what the request says of that directory can be stale right after a
/// session moved between machines).
fn tool_step(
    step: usize,
    reads: &[String],
    commands: &[String],
    files: &[(String, String)],
) -> Option<Reply> {
    if let Some(path) = reads.get(step) {
        return Some(Reply::Tool {
            name: "Read",
            input: json!({"file_path": path}),
        });
    }
    if let Some(command) = step.checked_sub(reads.len()).and_then(|i| commands.get(i)) {
        return Some(Reply::Tool {
            name: "Bash",
            input: json!({"command": command, "description": "run a command"}),
        });
    }
    let done = reads.len() + commands.len();
    let (path, content) = step.checked_sub(done).and_then(|i| files.get(i))?;
    Some(Reply::Tool {
        name: "Write",
        input: json!({"file_path": path, "content": content}),
    })
}

/// The structured answer asked for: `[[standin:structured JSON]]`, or
/// `[[standin:structured-once JSON]]` for the first request that asks (a wrong answer to be
/// refused, say), then `structured`.
fn structured_answer(shared: &mut Shared, prompt: &str) -> Option<Value> {
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
    chosen.and_then(|a| serde_json::from_str::<Value>(a).ok())
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
mod tests;

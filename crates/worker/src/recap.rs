//! The recap that seeds a new session when the old one cannot be resumed (expired, transcript
//! lost or corrupt, not found) or grew too large: each earlier task's prompt, a trimmed result
//! and the files it wrote, then the task to run now.

use std::fmt::Write;

use baton_core::records::TaskResult;

/// Longest part of an earlier prompt or result quoted in a recap.
const QUOTE_CHARS: usize = 600;

fn trimmed(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= QUOTE_CHARS {
        return s.to_owned();
    }
    let head: String = s.chars().take(QUOTE_CHARS).collect();
    format!("{head} [...]")
}

/// The first prompt of a new session: why, what happened so far, and the task at hand.
pub(crate) fn prompt_with_recap(why: &str, earlier: &[TaskResult], task_prompt: &str) -> String {
    let mut s = format!(
        "[baton] This plan continues in a new conversation ({why}). Recap of the {} task(s) done so far, in order:\n",
        earlier.len()
    );
    for r in earlier {
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "\nTask {} (id {}):\n  Prompt: {}\n  Result: {}\n",
            r.task_index + 1,
            r.task_id,
            trimmed(&r.prompt),
            trimmed(&r.result)
        );
        if !r.files.is_empty() {
            let _ = writeln!(s, "  Files written or edited: {}", r.files.join(", "));
        }
        if let Some(c) = &r.commit {
            let _ = writeln!(s, "  Commit: {c}");
        }
    }
    s.push_str("\nThose files are in the working directory. Now the next task:\n\n");
    s.push_str(task_prompt);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recap_names_every_earlier_task_and_ends_with_the_task() {
        let r = TaskResult {
            task_id: "a".parse().unwrap(),
            task_index: 0,
            kind: None,
            prompt: "make x.py".into(),
            result: "y".repeat(2000),
            session_id: baton_core::ClaudeSessionId::generate(),
            worker: "w".parse().unwrap(),
            attempts: 1,
            cost_usd: 0.0,
            input_tokens: 0,
            output_tokens: 0,
            duration_ms: 0,
            files: vec!["x.py".into()],
            finished_at: String::new(),
            commit: Some("0123abcd".into()),
            diffstat: None,
            structured: None,
        };
        let p = prompt_with_recap("session expired", &[r], "now test it");
        assert!(p.contains("make x.py") && p.contains("x.py") && p.contains("[...]"));
        assert!(p.contains("Commit: 0123abcd"));
        assert!(p.ends_with("now test it"));
        assert!(p.len() < 2000);
    }
}

//! The instructions a prompt's text gives the stand-in: `Read:`, `Bash:` and `File:` lines
//! (the tools the model uses, in order) and `[[standin:...]]` directives (faults, timing, answers).

/// `File: path` lines each followed by a fenced block, in order.
pub(super) fn files_in(prompt: &str) -> Vec<(String, String)> {
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
pub(super) fn reads_in(prompt: &str) -> Vec<String> {
    prompt
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Read:"))
        .map(|p| p.trim().trim_matches('`').to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `Bash: command` lines, in order: shell commands the model runs with the CLI's Bash tool.
pub(super) fn commands_in(prompt: &str) -> Vec<String> {
    prompt
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Bash:"))
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// A `[[standin:NAME ARGS]]` directive's arguments, if the prompt has it.
pub(super) fn directive<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
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
pub(super) const MOVED_NOTE: &str =
    "[baton] This conversation continues in another working directory";

/// The task's own text: the prompt without baton's note about a moved working directory, so that
/// `times=N` counts attempts of the same task wherever they run.
pub(super) fn task_text(prompt: &str) -> &str {
    match prompt.strip_prefix(MOVED_NOTE) {
        Some(rest) => rest.split_once("\n\n").map_or(prompt, |(_, task)| task),
        None => prompt,
    }
}

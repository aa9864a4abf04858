//! `baton-standin render`: the files a project's tasks would leave, rendered without a model or
//! a pool, so an author can check a new key before running the suite.
//!
//! Each task is played step by step against a conversation built as the CLI would send it: the
//! task's prompt, then its own writes so far; with `--knowing all` every earlier task's prompt,
//! writes and closing text before it (one conversation: the `session` arm), with `none` nothing
//! (a fresh session per task: the `isolated` arm).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{step_reply, Answers, FactRecord};
use crate::prompt::read_turn;
use crate::wire::Reply;

/// What the conversation of each task holds of the earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Knowing {
    /// Every earlier task's prompt, writes and closing text.
    All,
    /// Nothing: the task's prompt only.
    None,
}

/// Why a project could not be rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    #[error("rendering project `{0}`: no answer key has that name")]
    UnknownProject(String),
    #[error("rendering: writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the files of project `name`'s tasks into `out` (a later write of a path replaces an
/// earlier one) and returns what each task's facts resolved to when it started.
///
/// # Errors
/// [`RenderError::UnknownProject`] when no key has that name; [`RenderError::Write`] when a
/// file cannot be written.
pub(crate) fn render(
    answers: &Answers,
    name: &str,
    knowing: Knowing,
    out: &Path,
) -> Result<Vec<FactRecord>, RenderError> {
    let project = answers
        .project(name)
        .ok_or_else(|| RenderError::UnknownProject(name.to_owned()))?;
    let mut history: Vec<Value> = Vec::new();
    let mut records = Vec::new();
    for task in &project.tasks {
        let mut messages = match knowing {
            Knowing::All => history.clone(),
            Knowing::None => Vec::new(),
        };
        messages.push(json!({"role": "user", "content": [{"type": "text", "text": task.prompt}]}));
        loop {
            let body = json!({ "messages": messages });
            let step = read_turn(&body).tool_results_since_prompt;
            let play = step_reply(project, task, &body, step);
            records.extend(play.facts);
            match play.reply {
                Reply::Tool { name, input } => {
                    write_file(out, &input)?;
                    let id = format!("toolu_render_{}_{step}", task.id);
                    messages.push(json!({"role": "assistant", "content": [
                        {"type": "tool_use", "id": id, "name": name, "input": input}]}));
                    // What the CLI's Write answers.
                    let done = format!(
                        "File created successfully at: {}",
                        input["file_path"].as_str().unwrap_or_default()
                    );
                    messages.push(json!({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": id, "content": done}]}));
                }
                Reply::Text(text) => {
                    messages.push(json!({"role": "assistant", "content": [
                        {"type": "text", "text": text}]}));
                    break;
                }
                // A task's step is a tool use or a text, never an error.
                Reply::Error(_) | Reply::Limited(_) => break,
            }
        }
        history = messages;
    }
    Ok(records)
}

/// Writes a `Write` tool use's file under `out` (its path was checked to stay inside when the
/// key was loaded).
fn write_file(out: &Path, input: &Value) -> Result<(), RenderError> {
    let rel = input["file_path"].as_str().unwrap_or_default();
    let content = input["content"].as_str().unwrap_or_default();
    let path = out.join(rel);
    let err = |source| RenderError::Write {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(err)?;
    }
    fs::write(&path, content).map_err(err)
}

//! Answer keys (`--answers DIR`): what the stand-in writes for the tasks of the eval suite's
//! projects, with the names an earlier task chose filled from the conversation each request
//! carries (see `eval/README.md`, "standin.json").
//!
//! A request plays a task when its newest prompt contains the task's prompt: one `Write` per
//! request for each of the task's files, in order (the step is the number of tool results since
//! the prompt, as with `File:` lines), then its closing text. Each `{{fact}}` is the fact's value
//! in that request's conversation, or its guess when the conversation holds no trace of it; what
//! each fact resolved to when a task started is kept for `GET /_facts`.
//!
//! # Layout
//! - `load`: reading and checking `DIR/*/project.json` and `standin.json`;
//! - `template`: `{{fact}}` placeholders;
//! - `facts`: the conversation as text, and a fact's value in it;
//! - `render`: the `render` subcommand, a project's files without a model;
//! - this module: which task a request plays, and the reply of its step.

mod facts;
mod load;
mod render;
mod template;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use crate::prompt::Turn;
use crate::wire::Reply;
use facts::{Conversation, Fact, Resolved};
pub(crate) use load::LoadError;
pub(crate) use render::{render, Knowing};
use template::Template;

/// Every project's answer key.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    projects: Vec<Project>,
}

/// One project: its tasks in the plan's order, and the facts its key defines.
#[derive(Debug)]
pub(crate) struct Project {
    name: String,
    /// Its `project.json`, for errors that name it.
    file: PathBuf,
    facts: BTreeMap<String, Fact>,
    tasks: Vec<Task>,
}

/// One task: the prompt that asks for it and what the model answers.
#[derive(Debug)]
struct Task {
    id: String,
    /// Trimmed: a request plays the task when its newest prompt contains this.
    prompt: String,
    /// Path and content, written in this order.
    files: Vec<(String, Template)>,
    say: Template,
    /// The facts its files and closing text name, in order of first use.
    facts: Vec<String>,
}

/// What one fact resolved to when a task started (`GET /_facts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FactRecord {
    pub(crate) project: String,
    pub(crate) task: String,
    pub(crate) fact: String,
    pub(crate) value: String,
    pub(crate) found: bool,
}

/// The reply of a request that plays a task, and, at the task's first step, what its facts
/// resolved to.
#[derive(Debug)]
pub(crate) struct Play {
    pub(crate) reply: Reply,
    pub(crate) facts: Vec<FactRecord>,
}

impl Answers {
    /// The keys of every project in `dir`.
    ///
    /// # Errors
    /// A file that cannot be read, parsed or checked, naming it and the field; see
    /// [`LoadError`].
    pub(crate) fn load(dir: &Path) -> Result<Self, LoadError> {
        Ok(Self {
            projects: load::load_dir(dir)?,
        })
    }

    /// The reply to a request whose newest prompt is `prompt`, if that prompt asks for a task
    /// of a key.
    pub(crate) fn play(&self, body: &Value, turn: &Turn, prompt: &str) -> Option<Play> {
        let (project, task) = self.task_asked(prompt)?;
        Some(step_reply(
            project,
            task,
            body,
            turn.tool_results_since_prompt,
        ))
    }

    /// The task `prompt` asks for: the one whose prompt ends last in it (a recap quotes the
    /// earlier tasks' prompts before the task at hand), the longest if two end there.
    fn task_asked(&self, prompt: &str) -> Option<(&Project, &Task)> {
        self.projects
            .iter()
            .flat_map(|p| p.tasks.iter().map(move |t| (p, t)))
            .filter_map(|(p, t)| {
                let end = prompt.rfind(t.prompt.as_str())? + t.prompt.len();
                Some(((end, t.prompt.len()), (p, t)))
            })
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, found)| found)
    }

    fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }
}

/// The reply of step `step` of a task (the tool results since its prompt), its facts resolved
/// in the conversation of `body`; at step 0 also what each of them resolved to.
fn step_reply(project: &Project, task: &Task, body: &Value, step: usize) -> Play {
    let conversation = Conversation::of_request(body);
    let mut known: HashMap<String, Resolved> = HashMap::new();
    let mut value = |name: &str| -> Resolved {
        if let Some(r) = known.get(name) {
            return r.clone();
        }
        // Every placeholder was checked against the key's facts when it was loaded.
        let r = conversation.resolve(&project.facts[name]);
        known.insert(name.to_owned(), r.clone());
        r
    };
    let facts = if step == 0 {
        task.facts
            .iter()
            .map(|name| record(project, task, name, value(name)))
            .collect()
    } else {
        Vec::new()
    };
    let reply = match task.files.get(step) {
        Some((path, content)) => Reply::Tool {
            name: "Write",
            input: json!({"file_path": path, "content": content.fill(|n| value(n).value)}),
        },
        None => Reply::Text(task.say.fill(|n| value(n).value)),
    };
    Play { reply, facts }
}

fn record(project: &Project, task: &Task, fact: &str, resolved: Resolved) -> FactRecord {
    FactRecord {
        project: project.name.clone(),
        task: task.id.clone(),
        fact: fact.to_owned(),
        value: resolved.value,
        found: resolved.found,
    }
}

#[cfg(test)]
mod tests;

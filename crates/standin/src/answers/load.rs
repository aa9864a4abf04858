//! Loading answer keys: every `DIR/*/project.json` (its `name` and its tasks' `id` and
//! `prompt`; the checker's fields are not the stand-in's business) with the `standin.json` next
//! to it, checked whole at start-up so that a mistake in a key is an error naming the file and
//! the field, not a wrong answer in the middle of a run.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use regex::Regex;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::facts::{highest_group, Fact};
use super::template::Template;
use super::{Project, Task};

/// Why the answer keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: field `{field}`")]
    Parse {
        path: PathBuf,
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("checking {path}: field `{field}`")]
    Invalid {
        path: PathBuf,
        field: String,
        #[source]
        problem: Problem,
    },
    #[error("loading answer keys from {path}: no folder in it holds a project.json")]
    Empty { path: PathBuf },
}

/// What is wrong with a field that parsed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Problem {
    #[error("the project's name `{0}` is not its folder's name")]
    NameNotFolder(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("task id `{0}` comes twice")]
    DuplicateTask(String),
    #[error("the same prompt as task `{task}` of {other}")]
    DuplicatePrompt { task: String, other: PathBuf },
    #[error("project.json has no task `{0}`")]
    UnknownTask(String),
    #[error("task `{0}` of project.json has no answer")]
    MissingAnswer(String),
    #[error("`{{{{{0}}}}}` names no fact of this key")]
    UnknownFact(String),
    #[error("`${group}` names a group the pattern does not have (it has {groups})")]
    MissingGroup { group: usize, groups: usize },
    #[error("not a relative path inside the project")]
    BadPath,
    #[error("the pattern does not compile")]
    Pattern(#[source] regex::Error),
}

#[derive(Deserialize)]
struct RawProject {
    name: String,
    tasks: Vec<RawProjectTask>,
}

#[derive(Deserialize)]
struct RawProjectTask {
    id: String,
    prompt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    facts: BTreeMap<String, RawFact>,
    #[serde(default)]
    tasks: BTreeMap<String, RawAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFact {
    pattern: String,
    render: Option<String>,
    guess: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    #[serde(default)]
    files: OrderedFiles,
    say: String,
}

/// A JSON object of path to content, kept in the file's order (the order the files are written).
#[derive(Default)]
struct OrderedFiles(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedFiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedFiles;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of file path to content")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedFiles, A::Error> {
                let mut files: Vec<(String, String)> = Vec::new();
                while let Some((path, content)) = map.next_entry::<String, String>()? {
                    if files.iter().any(|(p, _)| *p == path) {
                        return Err(serde::de::Error::custom(format!("`{path}` comes twice")));
                    }
                    files.push((path, content));
                }
                Ok(OrderedFiles(files))
            }
        }
        d.deserialize_map(V)
    }
}

/// Every project of `dir` (each folder holding a `project.json`), in the folders' name order.
///
/// # Errors
/// The first file that cannot be read, parsed or checked, with the field at fault; a prompt
/// that comes in two projects; a `dir` with no project.
pub(crate) fn load_dir(dir: &Path) -> Result<Vec<Project>, LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut folders = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.join("project.json").is_file() {
            folders.push(path);
        }
    }
    folders.sort();
    if folders.is_empty() {
        return Err(LoadError::Empty {
            path: dir.to_owned(),
        });
    }
    let projects = folders
        .iter()
        .map(|f| load_project(f))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique_prompts(&projects)?;
    Ok(projects)
}

fn parse<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| LoadError::Parse {
        path: path.to_owned(),
        field: e.path().to_string(),
        source: e.into_inner(),
    })
}

/// One project: its plan's tasks with their answers from the key next to it.
fn load_project(folder: &Path) -> Result<Project, LoadError> {
    let file = folder.join("project.json");
    let raw: RawProject = parse(&file)?;
    let invalid = |path: &Path, field: String, problem| LoadError::Invalid {
        path: path.to_owned(),
        field,
        problem,
    };
    if folder.file_name().and_then(|n| n.to_str()) != Some(raw.name.as_str()) {
        return Err(invalid(
            &file,
            "name".into(),
            Problem::NameNotFolder(raw.name),
        ));
    }
    for (i, t) in raw.tasks.iter().enumerate() {
        if t.prompt.trim().is_empty() {
            return Err(invalid(
                &file,
                format!("tasks[{i}].prompt"),
                Problem::EmptyPrompt,
            ));
        }
        if raw.tasks[..i].iter().any(|o| o.id == t.id) {
            let problem = Problem::DuplicateTask(t.id.clone());
            return Err(invalid(&file, format!("tasks[{i}].id"), problem));
        }
    }
    let key_file = folder.join("standin.json");
    let mut key: RawKey = parse(&key_file)?;
    if let Some(id) = key
        .tasks
        .keys()
        .find(|id| !raw.tasks.iter().any(|t| t.id == **id))
    {
        let problem = Problem::UnknownTask(id.clone());
        return Err(invalid(&key_file, format!("tasks.{id}"), problem));
    }
    let facts = key
        .facts
        .into_iter()
        .map(|(name, f)| {
            Ok((
                name.clone(),
                fact(f, &name).map_err(|(field, p)| invalid(&key_file, field, p))?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>, LoadError>>()?;
    let mut tasks = Vec::new();
    for t in raw.tasks {
        let Some(answer) = key.tasks.remove(&t.id) else {
            return Err(invalid(
                &key_file,
                "tasks".into(),
                Problem::MissingAnswer(t.id),
            ));
        };
        let task = task(t, answer, &facts).map_err(|(field, p)| invalid(&key_file, field, p))?;
        tasks.push(task);
    }
    Ok(Project {
        name: raw.name,
        file,
        facts,
        tasks,
    })
}

/// A fact from its raw form, or the field at fault (`facts.NAME.pattern`, `facts.NAME.render`).
fn fact(raw: RawFact, name: &str) -> Result<Fact, (String, Problem)> {
    let pattern = Regex::new(&raw.pattern)
        .map_err(|e| (format!("facts.{name}.pattern"), Problem::Pattern(e)))?;
    let render = raw.render.unwrap_or_else(|| "$1".to_owned());
    // captures_len counts the whole match as group 0.
    let groups = pattern.captures_len() - 1;
    let group = highest_group(&render);
    if group > groups {
        let problem = Problem::MissingGroup { group, groups };
        return Err((format!("facts.{name}.render"), problem));
    }
    Ok(Fact {
        pattern,
        render,
        guess: raw.guess,
    })
}

/// A task with its answer's templates, every placeholder checked against the key's facts.
fn task(
    raw: RawProjectTask,
    answer: RawAnswer,
    facts: &BTreeMap<String, Fact>,
) -> Result<Task, (String, Problem)> {
    let field = |rest: &str| format!("tasks.{}.{rest}", raw.id);
    let mut files = Vec::new();
    for (path, content) in answer.files.0 {
        if !is_inside(&path) {
            return Err((field(&format!("files.{path}")), Problem::BadPath));
        }
        files.push((path, Template::parse(&content)));
    }
    let say = Template::parse(&answer.say);
    let mut used: Vec<String> = Vec::new();
    let templates = files
        .iter()
        .map(|(p, t)| (format!("files.{p}"), t))
        .chain([("say".to_owned(), &say)]);
    for (at, template) in templates {
        for name in template.facts() {
            if !facts.contains_key(name) {
                return Err((field(&at), Problem::UnknownFact(name.to_owned())));
            }
            if !used.iter().any(|u| u == name) {
                used.push(name.to_owned());
            }
        }
    }
    Ok(Task {
        id: raw.id,
        prompt: raw.prompt.trim().to_owned(),
        files,
        say,
        facts: used,
    })
}

/// Whether a key's file path stays inside the project: relative, no `..`.
fn is_inside(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// No two tasks, in any projects, share a prompt: a request could not say which it plays.
fn check_unique_prompts(projects: &[Project]) -> Result<(), LoadError> {
    let mut seen: HashMap<&str, (&Project, &str)> = HashMap::new();
    for p in projects {
        for (i, t) in p.tasks.iter().enumerate() {
            if let Some((other, task)) = seen.insert(&t.prompt, (p, &t.id)) {
                return Err(LoadError::Invalid {
                    path: p.file.clone(),
                    field: format!("tasks[{i}].prompt"),
                    problem: Problem::DuplicatePrompt {
                        task: task.to_owned(),
                        other: other.file.clone(),
                    },
                });
            }
        }
    }
    Ok(())
}

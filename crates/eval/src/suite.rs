//! The suite: `eval/projects/<name>/project.json`, each a plan written the way a person writes
//! one, with the spec its checker follows (see `eval/README.md`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::{CheckSpec, Language};

/// Fewest and most tasks a suite project has.
pub const TASKS_PER_PROJECT: std::ops::RangeInclusive<usize> = 4..=8;

/// One task of a project: its id and its prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectTask {
    pub id: String,
    pub prompt: String,
}

/// One project of the suite (`project.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub language: Language,
    #[serde(default)]
    pub summary: String,
    pub tasks: Vec<ProjectTask>,
    pub check: CheckSpec,
}

/// Why the suite cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {field}: {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{0}: no project folder (each holds a project.json); --suite names the folder holding projects/")]
    Empty(PathBuf),
    #[error("--suite: cannot read {path} ({source}); name the folder holding projects/ (default: eval, from the current folder)")]
    NoSuite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no project named {0} in the suite")]
    Unknown(String),
}

/// The projects of a suite folder, by name.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The folder holding `projects/`.
    pub dir: PathBuf,
    pub projects: Vec<Project>,
}

impl Suite {
    /// Reads every `dir/projects/*/project.json`, in name order.
    ///
    /// # Errors
    /// [`SuiteError`] naming the file and the field at fault.
    pub fn load(dir: &Path) -> Result<Self, SuiteError> {
        let projects_dir = dir.join("projects");
        let mut folders: Vec<PathBuf> = std::fs::read_dir(&projects_dir)
            .map_err(|source| SuiteError::NoSuite {
                path: projects_dir.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("project.json").is_file())
            .collect();
        folders.sort();
        if folders.is_empty() {
            return Err(SuiteError::Empty(projects_dir));
        }
        let projects = folders
            .iter()
            .map(|f| Project::load(&f.join("project.json")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            dir: dir.to_owned(),
            projects,
        })
    }

    /// Only the projects named in `names` (all of them when it is empty).
    ///
    /// # Errors
    /// [`SuiteError::Unknown`] for a name the suite does not have.
    pub fn only(mut self, names: &[String]) -> Result<Self, SuiteError> {
        if names.is_empty() {
            return Ok(self);
        }
        if let Some(n) = names
            .iter()
            .find(|n| !self.projects.iter().any(|p| &p.name == *n))
        {
            return Err(SuiteError::Unknown(n.clone()));
        }
        self.projects.retain(|p| names.contains(&p.name));
        Ok(self)
    }

    /// The languages the projects are in, each once.
    pub fn languages(&self) -> Vec<Language> {
        let mut out: Vec<Language> = Vec::new();
        for p in &self.projects {
            if !out.contains(&p.language) {
                out.push(p.language);
            }
        }
        out
    }
}

impl Project {
    /// Reads and checks one `project.json`.
    ///
    /// # Errors
    /// [`SuiteError`] naming the file and the field at fault.
    pub fn load(path: &Path) -> Result<Self, SuiteError> {
        let raw = std::fs::read(path).map_err(|source| SuiteError::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |field: String, problem: String| SuiteError::Invalid {
            path: path.to_owned(),
            field,
            problem,
        };
        let de = &mut serde_json::Deserializer::from_slice(&raw);
        let project: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            invalid(field, e.into_inner().to_string())
        })?;
        project.check().map_err(|(f, p)| invalid(f, p))?;
        let folder = path.parent().and_then(Path::file_name);
        if folder.and_then(|f| f.to_str()) != Some(project.name.as_str()) {
            return Err(invalid(
                "name".into(),
                format!("is {:?}; it must be the folder's name", project.name),
            ));
        }
        Ok(project)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(("name".into(), "is not lower case, digits and '-'".into()));
        }
        if self.tasks.is_empty() {
            return Err(("tasks".into(), "is empty".into()));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if t.prompt.trim().is_empty() {
                return Err((format!("tasks[{i}].prompt"), "is empty".into()));
            }
            if self.tasks[..i].iter().any(|o| o.id == t.id) {
                return Err((
                    format!("tasks[{i}].id"),
                    format!("{:?} is used twice", t.id),
                ));
            }
        }
        if self.check.entry_points.is_empty() {
            return Err(("check.entry_points".into(), "is empty".into()));
        }
        // The checkers read and run what these name: inside the project, nowhere else.
        let inside = |p: &str| {
            let path = Path::new(p);
            !p.is_empty()
                && path
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        };
        for (i, e) in self.check.entry_points.iter().enumerate() {
            if !inside(e) {
                return Err((
                    format!("check.entry_points[{i}]"),
                    format!(
                        "{e:?} is not a relative path inside the project (no `..`, no `/` first)"
                    ),
                ));
            }
        }
        if let Some(t) = self.check.tests.as_deref().filter(|t| !inside(t)) {
            return Err((
                "check.tests".into(),
                format!("{t:?} is not a relative path inside the project (no `..`, no `/` first)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let folder = dir.join("projects").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("project.json");
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn a_bad_project_names_its_file_and_field() {
        let dir = std::env::temp_dir().join(format!("baton-suite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let good = r#"{"name":"ok","language":"rust","tasks":[{"id":"t1","prompt":"p"}],"check":{"entry_points":["src/lib.rs"]}}"#;
        write(&dir, "ok", good);
        assert_eq!(Suite::load(&dir).unwrap().projects.len(), 1);
        let cases = [
            (
                r#"{"name":"x","language":"cobol","tasks":[],"check":{"entry_points":[]}}"#,
                "language",
            ),
            (
                r#"{"name":"x","language":"rust","tasks":[{"id":"t1","prompt":" "}],"check":{"entry_points":["a"]}}"#,
                "tasks[0].prompt",
            ),
            (
                r#"{"name":"x","language":"rust","tasks":[{"id":"t","prompt":"a"},{"id":"t","prompt":"b"}],"check":{"entry_points":["a"]}}"#,
                "tasks[1].id",
            ),
            (
                r#"{"name":"x","language":"rust","tasks":[{"id":"t","prompt":"a"}],"check":{"entry_points":[]}}"#,
                "check.entry_points",
            ),
            (
                r#"{"name":"x","language":"rust","tasks":[{"id":"t","prompt":"a"}],"check":{"entry_points":["../up.rs"]}}"#,
                "check.entry_points[0]",
            ),
            (
                r#"{"name":"x","language":"rust","tasks":[{"id":"t","prompt":"a"}],"check":{"entry_points":["a"],"tests":"/etc"}}"#,
                "check.tests",
            ),
            (
                r#"{"name":"y","language":"rust","tasks":[{"id":"t","prompt":"a"}],"check":{"entry_points":["a"]}}"#,
                "name",
            ),
            (
                r#"{"name":"x","language":"rust","tasks":[{"id":"t","prompt":"a","extra":1}],"check":{"entry_points":["a"]}}"#,
                "tasks[0]",
            ),
        ];
        for (body, field) in cases {
            let path = write(&dir, "x", body);
            let e = Project::load(&path).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{}: {field}", path.display())),
                "{e}"
            );
        }
        std::fs::remove_dir_all(dir.join("projects/x")).unwrap();
        let e = Suite::load(&dir).unwrap().only(&["nope".into()]);
        assert!(e.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

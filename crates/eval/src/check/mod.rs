//! Checking a finished project with its language's real toolchain, and classifying each error.
//!
//! [`Toolchains::install`] puts the pinned tools under one folder; [`Toolchains::check`] runs
//! them on a project as `eval/README.md`'s table says and returns every compile error with its
//! class, how the project's own tests went, and the [`Counts`] the report adds up.
//!
//! # Layout
//! - `toolchain`: the pinned versions and the install (npm, a pip virtualenv, `cargo` on PATH).
//! - `process`: one tool run (timeout, its own process group, killed on drop).
//! - `typescript`, `python`, `rust`: per language, what runs, how its output is read, and the
//!   table from the tool's error codes to an [`ErrorClass`].
//! - `files`: the project's files a tool is given.

mod files;
mod process;
mod python;
mod rust;
mod toolchain;
mod typescript;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use toolchain::{MYPY_VERSION, PYFLAKES_VERSION, TYPESCRIPT_VERSION, TYPES_NODE_VERSION};

/// The languages the suite has projects in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Typescript,
    Python,
    Rust,
}

/// What a project's `check` says: where the checker starts, and where its tests are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Files the checker starts from (paths from the project's root).
    pub entry_points: Vec<String>,
    /// The folder the plan's last task writes the project's own tests into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<String>,
}

/// What kind of error a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// An import of a module or name no file provides.
    MissingImport,
    /// A name, signature or path used across files that does not match its definition.
    CrossReference,
    /// Any other compile error.
    Other,
}

/// One compile error, classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub class: ErrorClass,
    /// The tool that reported it (`tsc`, `pyflakes`, `mypy`, `rustc`).
    pub tool: String,
    pub file: String,
    pub line: u32,
    /// The tool's code for it (`TS2307`, `import-not-found`, `E0432`), empty when it has none.
    pub code: String,
    pub message: String,
}

/// How the project's own tests went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRun {
    /// The tests ran (a project without tests, or one that does not compile, did not).
    pub ran: bool,
    pub passed: u32,
    pub failed: u32,
    /// The end of the runner's output, for the report's details.
    pub output_tail: String,
}

/// Errors per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub missing_import: u32,
    pub cross_reference: u32,
    pub other: u32,
    /// Failed tests, or 1 when the tests could not run at all.
    pub failing_tests: u32,
}

/// What checking one project found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    pub errors: Vec<Diagnostic>,
    pub tests: TestRun,
    pub counts: Counts,
}

/// Why a project could not be checked (not: what is wrong with it).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("installing {tool}: {detail}")]
    Install { tool: String, detail: String },
    /// A tool could not be started.
    #[error("running {tool}")]
    Run {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    /// A tool ran but said nothing about the project: it timed out, crashed, or refused the
    /// set-up (a Rust project inside another cargo workspace).
    #[error("running {tool}: {detail}")]
    Tool { tool: String, detail: String },
}

/// The toolchains, installed under one folder (`tsc` and `@types/node` from npm, `pyflakes` and
/// `mypy` from pip in a virtualenv; `cargo` is the one on PATH).
#[derive(Debug, Clone)]
pub struct Toolchains {
    /// The folder they are installed in (`typescript/`, `python/`).
    pub dir: PathBuf,
}

impl Toolchains {
    /// Installs what `languages` need under `dir` (nothing when it is there already: each
    /// toolchain's folder carries a marker with its pinned versions).
    ///
    /// # Errors
    /// [`CheckError::Install`] naming the tool that failed (`npm install`, `python3 -m venv`,
    /// `pip install`, `cargo`) and the end of its output.
    pub async fn install(dir: &Path, languages: &[Language]) -> Result<Self, CheckError> {
        toolchain::install(dir, languages).await?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Checks the finished project at `root` (`work`: a scratch folder of its own, created when
    /// missing; the project itself is left as it was, bar the `Cargo.lock` cargo writes).
    ///
    /// An entry point that does not exist is an error of class [`ErrorClass::Other`] (tool
    /// `checker`); the tools are given the others.
    ///
    /// # Errors
    /// [`CheckError`] when a tool cannot be run at all or says nothing about the project.
    pub async fn check(
        &self,
        language: Language,
        root: &Path,
        spec: &CheckSpec,
        work: &Path,
    ) -> Result<Checked, CheckError> {
        std::fs::create_dir_all(work).map_err(|source| CheckError::Run {
            tool: "checker".into(),
            source,
        })?;
        let (entry_points, mut errors) = entry_points(root, spec);
        let project = Project {
            root,
            entry_points,
            tests: spec.tests.as_deref(),
            work,
        };
        let found = match language {
            Language::Typescript => typescript::check(self, &project).await?,
            Language::Python => python::check(self, &project).await?,
            Language::Rust => rust::check(&project).await?,
        };
        errors.extend(found.errors);
        let counts = Counts::of(&errors, spec.tests.is_some(), &found.tests);
        Ok(Checked {
            errors,
            tests: found.tests,
            counts,
        })
    }
}

impl Counts {
    /// The counts of `errors` by class, and the failing tests: the failed ones, or 1 when the
    /// project has tests (`has_tests`) that could not run.
    fn of(errors: &[Diagnostic], has_tests: bool, tests: &TestRun) -> Self {
        let count = |class| {
            let n = errors.iter().filter(|e| e.class == class).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        let failing_tests = match (has_tests, tests.ran) {
            (false, _) => 0,
            (true, true) => tests.failed,
            (true, false) => 1,
        };
        Self {
            missing_import: count(ErrorClass::MissingImport),
            cross_reference: count(ErrorClass::CrossReference),
            other: count(ErrorClass::Other),
            failing_tests,
        }
    }
}

/// A project as the language checkers see it.
struct Project<'a> {
    root: &'a Path,
    /// The spec's entry points that exist (paths from the root).
    entry_points: Vec<String>,
    /// The tests folder, when the spec names one.
    tests: Option<&'a str>,
    work: &'a Path,
}

/// What one language's checker found.
struct Found {
    errors: Vec<Diagnostic>,
    /// How the tests went; not run when the spec names none.
    tests: TestRun,
}

impl TestRun {
    /// Tests that did not run, and why.
    fn not_run(why: impl Into<String>) -> Self {
        Self {
            output_tail: why.into(),
            ..Self::default()
        }
    }
}

/// The spec's entry points split into those that exist and an error for each one missing.
fn entry_points(root: &Path, spec: &CheckSpec) -> (Vec<String>, Vec<Diagnostic>) {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for entry in &spec.entry_points {
        if root.join(entry).is_file() {
            present.push(entry.clone());
        } else {
            missing.push(Diagnostic {
                class: ErrorClass::Other,
                tool: "checker".into(),
                file: entry.clone(),
                line: 0,
                code: "missing-entry-point".into(),
                message: format!("entry point {entry} does not exist"),
            });
        }
    }
    (present, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(class: ErrorClass) -> Diagnostic {
        Diagnostic {
            class,
            tool: "tsc".into(),
            file: "src/main.ts".into(),
            line: 1,
            code: String::new(),
            message: String::new(),
        }
    }

    #[test]
    fn counts_add_up_classes_and_failing_tests() {
        let errors = [
            error(ErrorClass::MissingImport),
            error(ErrorClass::MissingImport),
            error(ErrorClass::CrossReference),
            error(ErrorClass::Other),
        ];
        let ran = TestRun {
            ran: true,
            passed: 3,
            failed: 2,
            output_tail: String::new(),
        };
        let counts = Counts::of(&errors, true, &ran);
        assert_eq!(
            counts,
            Counts {
                missing_import: 2,
                cross_reference: 1,
                other: 1,
                failing_tests: 2
            }
        );
        // Tests that could not run count as one failing; a project without tests has none.
        assert_eq!(
            Counts::of(&[], true, &TestRun::not_run("x")).failing_tests,
            1
        );
        assert_eq!(Counts::of(&[], false, &TestRun::default()).failing_tests, 0);
    }

    #[test]
    fn a_missing_entry_point_is_an_error_and_not_given_to_the_tools() {
        let root = std::env::temp_dir().join(format!("baton-eval-entry-{}", std::process::id()));
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/main.ts"), "").unwrap();
        let spec = CheckSpec {
            entry_points: vec!["src/main.ts".into(), "src/app.ts".into()],
            tests: None,
        };
        let (present, missing) = entry_points(&root, &spec);
        assert_eq!(present, ["src/main.ts"]);
        assert_eq!(missing.len(), 1);
        assert_eq!(
            (missing[0].file.as_str(), missing[0].class),
            ("src/app.ts", ErrorClass::Other)
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn an_install_that_cannot_make_its_folder_names_it() {
        let err = Toolchains::install(Path::new("/dev/null/eval"), &[Language::Rust])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CheckError::Install { tool, .. } if tool == "toolchains"),
            "{err:?}"
        );
    }
}

//! Checking a finished project with its language's real toolchain, and classifying each error.

use std::path::Path;

use serde::{Deserialize, Serialize};

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
    #[error("running {tool}: {source}")]
    Run {
        tool: String,
        #[source]
        source: std::io::Error,
    },
}

/// The toolchains, installed under one folder (`tsc` and `@types/node` from npm, `pyflakes` and
/// `mypy` from pip in a virtualenv; `cargo` is the one on PATH).
#[derive(Debug, Clone)]
pub struct Toolchains {
    pub dir: std::path::PathBuf,
}

impl Toolchains {
    /// Installs what `languages` need under `dir` (nothing when it is there already).
    ///
    /// # Errors
    /// [`CheckError::Install`] when npm or pip fails.
    pub async fn install(dir: &Path, languages: &[Language]) -> Result<Self, CheckError> {
        let _ = languages;
        Err(CheckError::Install {
            tool: "toolchains".into(),
            detail: format!("not written yet ({})", dir.display()),
        })
    }

    /// Checks the finished project at `root` (`work`: a scratch folder of its own).
    ///
    /// # Errors
    /// [`CheckError`] when a tool cannot be run at all.
    pub async fn check(
        &self,
        language: Language,
        root: &Path,
        spec: &CheckSpec,
        work: &Path,
    ) -> Result<Checked, CheckError> {
        let _ = (language, root, spec, work);
        Err(CheckError::Install {
            tool: "checker".into(),
            detail: "not written yet".into(),
        })
    }
}

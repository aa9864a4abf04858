//! Python: `pyflakes` on every `.py` file of the project and `mypy` (its defaults, not strict,
//! whatever config the project wrote) on the entry points and the tests, both run from the project's root so its packages
//! resolve; then `python -m unittest discover -s <tests> -t .` with the virtualenv's Python.
//!
//! pyflakes runs through its API (`pyflakes_driver.py`), so its findings come with their
//! message class instead of English text. Only the findings that break a run count (the
//! [`PYFLAKES`] table); an unused import or variable, a redefinition or a star import does not.
//! pyflakes cannot tell a missing module, so missing imports come from mypy alone.
//!
//! The same error found by both tools is counted once: a pyflakes finding is dropped when
//! mypy reported the same class on the same line (`undefined name 'x'` and `Name "x" is not
//! defined`; a syntax error). mypy does not look into the bodies of unannotated functions,
//! so pyflakes' undefined names there stay.
//!
//! `-t .` needs the tests folder to be a package (`__init__.py`); when it is not, the folder is
//! its own top level (`-t <tests>`): the project's root stays importable as the run's working
//! directory, so the tests run either way.

use std::ffi::OsStr;
use std::path::Path;

use serde::Deserialize;

use super::process::{env_of, run, Ran, RunFailure, TOOL_TIMEOUT};
use super::{files, CheckError, Diagnostic, ErrorClass, Found, Project, TestRun, Toolchains};

/// The script that runs pyflakes and prints its findings as JSON lines.
const DRIVER: &str = include_str!("pyflakes_driver.py");

/// pyflakes' findings that count, by message class; all others are ignored (they cannot break
/// a run: `UnusedImport`, `UnusedVariable`, `RedefinedWhileUnused`, `ImportStarUsed`, ...).
/// `SyntaxError` and `UnexpectedError` (a file it cannot read) are the driver's.
const PYFLAKES: &[(&str, ErrorClass)] = &[
    ("UndefinedName", ErrorClass::CrossReference),
    ("UndefinedExport", ErrorClass::CrossReference),
    ("UndefinedLocal", ErrorClass::Other),
    ("SyntaxError", ErrorClass::Other),
    ("UnexpectedError", ErrorClass::Other),
    ("DuplicateArgument", ErrorClass::Other),
    ("LateFutureImport", ErrorClass::Other),
    ("FutureFeatureNotDefined", ErrorClass::Other),
    ("ReturnOutsideFunction", ErrorClass::Other),
    ("YieldOutsideFunction", ErrorClass::Other),
    ("ContinueOutsideLoop", ErrorClass::Other),
    ("BreakOutsideLoop", ErrorClass::Other),
    ("DefaultExceptNotLast", ErrorClass::Other),
    ("TwoStarredExpressions", ErrorClass::Other),
    ("TooManyExpressionsInStarredAssignment", ErrorClass::Other),
    ("ImportStarNotPermitted", ErrorClass::Other),
    ("RaiseNotImplemented", ErrorClass::Other),
    ("InvalidPrintSyntax", ErrorClass::Other),
    // Formatting that raises when it runs (not: an unused argument, which is ignored).
    ("StringDotFormatMissingArgument", ErrorClass::Other),
    ("StringDotFormatMixingAutomatic", ErrorClass::Other),
    ("StringDotFormatInvalidFormat", ErrorClass::Other),
    ("PercentFormatInvalidFormat", ErrorClass::Other),
    ("PercentFormatMixedPositionalAndNamed", ErrorClass::Other),
    ("PercentFormatUnsupportedFormatCharacter", ErrorClass::Other),
    ("PercentFormatPositionalCountMismatch", ErrorClass::Other),
    ("PercentFormatMissingArgument", ErrorClass::Other),
    ("PercentFormatExpectedMapping", ErrorClass::Other),
    ("PercentFormatExpectedSequence", ErrorClass::Other),
    ("PercentFormatStarRequiresSequence", ErrorClass::Other),
];

/// mypy's error codes and their classes; every code not listed is [`ErrorClass::Other`]
/// (`import-untyped` too: the module exists, it only lacks types). `attr-defined` is a missing
/// import when mypy reports it on an import statement (`Module "x" has no attribute "y"` for
/// `from x import y`), a cross-reference anywhere else (see [`classify_mypy`]).
const MYPY: &[(&str, ErrorClass)] = &[
    // Cannot find implementation or library stub for module named "x".
    ("import-not-found", ErrorClass::MissingImport),
    // The same, from mypy versions before the code was split.
    ("import", ErrorClass::MissingImport),
    ("attr-defined", ErrorClass::CrossReference),
    ("name-defined", ErrorClass::CrossReference),
    // Too many / too few arguments, an unexpected keyword.
    ("call-arg", ErrorClass::CrossReference),
    ("call-overload", ErrorClass::CrossReference),
    ("arg-type", ErrorClass::CrossReference),
    // A value that does not match the type its definition declares (as TS2322 and E0308).
    ("assignment", ErrorClass::CrossReference),
    ("return-value", ErrorClass::CrossReference),
];

fn classify_pyflakes(kind: &str) -> Option<ErrorClass> {
    PYFLAKES.iter().find(|(k, _)| *k == kind).map(|(_, c)| *c)
}

/// The class of a mypy error with `code` and `message`, reported on `source_line`.
fn classify_mypy(code: &str, message: &str, source_line: Option<&str>) -> ErrorClass {
    let on_import = source_line.is_some_and(|l| {
        let l = l.trim_start();
        l.starts_with("from ") || l.starts_with("import ")
    });
    if code == "attr-defined" && on_import && message.starts_with("Module ") {
        return ErrorClass::MissingImport;
    }
    MYPY.iter()
        .find(|(c, _)| *c == code)
        .map_or(ErrorClass::Other, |(_, class)| *class)
}

pub(super) async fn check(tc: &Toolchains, p: &Project<'_>) -> Result<Found, CheckError> {
    let every = files::under(p.root, "", |n| n.ends_with(".py"));
    let mut typed = p.entry_points.clone();
    if let Some(dir) = p.tests {
        for test in files::under(p.root, dir, |n| n.ends_with(".py")) {
            if !typed.contains(&test) {
                typed.push(test);
            }
        }
    }
    let (flakes, mypy) = tokio::join!(pyflakes(tc, p, &every), mypy(tc, p, &typed));
    let errors = merge(flakes?, mypy?);
    let tests = match p.tests {
        Some(dir) => unittest(tc, p.root, dir).await?,
        None => TestRun::default(),
    };
    Ok(Found { errors, tests })
}

/// Environment of every Python run: no `__pycache__` left in the project, and nothing on the
/// module path from the caller's environment (Python takes an empty `PYTHONPATH` as unset).
const ENV: &[(&str, &str)] = &[("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONPATH", "")];

async fn pyflakes(
    tc: &Toolchains,
    p: &Project<'_>,
    files: &[String],
) -> Result<Vec<Diagnostic>, CheckError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let driver = p.work.join("pyflakes_driver.py");
    std::fs::write(&driver, DRIVER).map_err(|source| CheckError::Run {
        tool: "pyflakes".into(),
        source,
    })?;
    let mut args: Vec<&OsStr> = vec![driver.as_os_str()];
    args.extend(files.iter().map(OsStr::new));
    let ran = run(&tc.python(), &args, p.root, &env_of(ENV), TOOL_TIMEOUT)
        .await
        .map_err(|f| f.into_error("pyflakes"))?;
    if !ran.success() {
        return Err(tool_error("pyflakes", &ran));
    }
    Ok(parse_pyflakes(&ran.stdout))
}

/// One line of the driver's output.
#[derive(Deserialize)]
struct Flake {
    kind: String,
    file: String,
    #[serde(default)]
    line: u32,
    #[serde(default)]
    message: String,
}

/// The driver's JSON lines, the counting findings only.
pub(super) fn parse_pyflakes(stdout: &str) -> Vec<Diagnostic> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Flake>(l).ok())
        .filter_map(|f| {
            Some(Diagnostic {
                class: classify_pyflakes(&f.kind)?,
                tool: "pyflakes".into(),
                file: f.file.trim_start_matches("./").to_owned(),
                line: f.line,
                code: f.kind,
                message: f.message,
            })
        })
        .collect()
}

async fn mypy(
    tc: &Toolchains,
    p: &Project<'_>,
    files: &[String],
) -> Result<Vec<Diagnostic>, CheckError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let cache = p.work.join("mypy-cache");
    // The checker's own (empty) config: a plan's mypy.ini, setup.cfg or pyproject.toml does not
    // change what is checked.
    let config = p.work.join("mypy.ini");
    std::fs::write(&config, "[mypy]\n").map_err(|source| CheckError::Run {
        tool: "mypy".into(),
        source,
    })?;
    // `-P`: the project's root is not put first on Python's path, so a `mypy/` package (or a
    // `json.py`) the plan wrote cannot stand in for the checker or break it; mypy itself still
    // finds the project's modules from the folder it runs in.
    let mut args: Vec<&OsStr> = vec![
        "-P".as_ref(),
        "-m".as_ref(),
        "mypy".as_ref(),
        "--config-file".as_ref(),
        config.as_os_str(),
        "--no-error-summary".as_ref(),
        "--show-error-codes".as_ref(),
        "--no-color-output".as_ref(),
        "--cache-dir".as_ref(),
        cache.as_os_str(),
    ];
    args.extend(files.iter().map(OsStr::new));
    let ran = run(&tc.python(), &args, p.root, &env_of(ENV), TOOL_TIMEOUT)
        .await
        .map_err(|f| f.into_error("mypy"))?;
    let errors = parse_mypy(&ran.stdout, |file, line| source_line(p.root, file, line));
    // 0: clean; 1: errors; 2: a blocking error (a syntax error: printed as usual; a crash or a
    // file it cannot read: printed some other way).
    match ran.code {
        Some(0) => Ok(errors),
        Some(1 | 2) if !errors.is_empty() => Ok(errors),
        _ => Err(tool_error("mypy", &ran)),
    }
}

/// The text of line `line` (from 1) of the project's `file`.
fn source_line(root: &Path, file: &str, line: u32) -> Option<String> {
    let text = std::fs::read_to_string(root.join(file)).ok()?;
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    text.lines().nth(index).map(str::to_owned)
}

/// mypy's errors (`file:line: error: message  [code]`, or `file: error: message` with no line);
/// notes are left out. `source` gives the reported line's text, to tell an import.
pub(super) fn parse_mypy(
    stdout: &str,
    source: impl Fn(&str, u32) -> Option<String>,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for line in stdout.lines() {
        let Some((place, rest)) = line.split_once(": error: ") else {
            continue;
        };
        let (file, line_no) = match place.rsplit_once(':') {
            Some((file, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
                (file, n.parse().unwrap_or(0))
            }
            _ => (place, 0),
        };
        let (message, code) = match rest.trim_end().strip_suffix(']') {
            Some(body) => match body.rsplit_once("  [") {
                Some((message, code)) => (message, code),
                None => (rest.trim_end(), ""),
            },
            None => (rest.trim_end(), ""),
        };
        let file = file.trim_start_matches("./");
        let text = source(file, line_no);
        found.push(Diagnostic {
            class: classify_mypy(code, message, text.as_deref()),
            tool: "mypy".into(),
            file: file.to_owned(),
            line: line_no,
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }
    found
}

/// mypy's errors, then pyflakes' that mypy did not report (same file, line and class).
fn merge(flakes: Vec<Diagnostic>, mypy: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut merged = mypy;
    for flake in flakes {
        let twin = merged.iter().any(|m| {
            m.tool == "mypy"
                && m.file == flake.file
                && m.line == flake.line
                && m.class == flake.class
        });
        if !twin {
            merged.push(flake);
        }
    }
    merged
}

/// Runs the project's tests with the virtualenv's Python.
async fn unittest(tc: &Toolchains, root: &Path, dir: &str) -> Result<TestRun, CheckError> {
    if !root.join(dir).is_dir() {
        return Ok(TestRun::not_run(format!("no tests folder {dir}")));
    }
    let top = if root.join(dir).join("__init__.py").is_file() {
        "."
    } else {
        dir
    };
    let args: [&OsStr; 7] = [
        "-m".as_ref(),
        "unittest".as_ref(),
        "discover".as_ref(),
        "-s".as_ref(),
        dir.as_ref(),
        "-t".as_ref(),
        top.as_ref(),
    ];
    match run(&tc.python(), &args, root, &env_of(ENV), TOOL_TIMEOUT).await {
        Ok(ran) => Ok(parse_unittest(&ran.stderr, ran.tail())),
        Err(RunFailure::TimedOut(after)) => Ok(TestRun::not_run(format!(
            "unittest timed out after {} s",
            after.as_secs()
        ))),
        Err(f) => Err(f.into_error("unittest")),
    }
}

/// unittest's summary: `Ran N tests in ...`, then `OK`, `OK (skipped=1)` or
/// `FAILED (failures=a, errors=b, ...)`. Failures, errors (a test module that cannot be
/// imported is one) and unexpected successes fail; skipped tests and expected failures neither
/// pass nor fail.
pub(super) fn parse_unittest(stderr: &str, output_tail: String) -> TestRun {
    let Some(total) = stderr.lines().rev().find_map(|l| {
        let rest = l.strip_prefix("Ran ")?;
        rest.split_whitespace().next()?.parse::<u32>().ok()
    }) else {
        return TestRun::not_run(output_tail);
    };
    let status = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("OK") || l.starts_with("FAILED"))
        .unwrap_or_default();
    let count = |name: &str| {
        status
            .split(['(', ')', ','])
            .filter_map(|part| part.trim().strip_prefix(name)?.strip_prefix('='))
            .find_map(|n| n.parse::<u32>().ok())
            .unwrap_or_default()
    };
    let failed = count("failures") + count("errors") + count("unexpected successes");
    let neither = count("skipped") + count("expected failures");
    TestRun {
        ran: total > 0,
        passed: total.saturating_sub(failed).saturating_sub(neither),
        failed,
        output_tail,
    }
}

fn tool_error(tool: &str, ran: &Ran) -> CheckError {
    CheckError::Tool {
        tool: tool.into(),
        detail: format!("exit {:?}: {}", ran.code, ran.tail()),
    }
}

#[cfg(test)]
mod tests;

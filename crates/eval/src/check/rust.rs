//! Rust: `cargo check --all-targets --offline --message-format=json` in the project's root
//! (the plan writes its `Cargo.toml`), the build in `<work>/target`, then `cargo test
//! --offline --no-fail-fast`.
//!
//! `--all-targets` compiles a file once per target that includes it (`main.rs` for the binary
//! and for its tests), so the same error is reported twice: errors are kept once per file,
//! line, code and message. A compile error in any target stops `cargo test` from running any
//! test, so the tests are not run then (the project's tests count as one failing). A failure
//! cargo reports without a compiler message (a manifest it cannot read, a dependency it cannot
//! find offline) is one error of class other on `Cargo.toml`.

use std::ffi::OsStr;
use std::path::Path;

use serde::Deserialize;

use super::process::{run, Ran, RunFailure, TOOL_TIMEOUT};
use super::{CheckError, Diagnostic, ErrorClass, Found, Project, TestRun};

/// rustc's error codes and their classes; every code not listed (and an error without a code,
/// such as a syntax error) is [`ErrorClass::Other`].
const CODES: &[(&str, ErrorClass)] = &[
    // Unresolved import.
    ("E0432", ErrorClass::MissingImport),
    // Failed to resolve: use of an undeclared crate, module or type.
    ("E0433", ErrorClass::MissingImport),
    // File not found for module.
    ("E0583", ErrorClass::MissingImport),
    // An item that exists but is private where it is imported (as TS2459).
    ("E0603", ErrorClass::MissingImport),
    // This function takes N arguments but M were supplied (a method: E0061 as well).
    ("E0061", ErrorClass::CrossReference),
    // Cannot find value / type / struct / trait in this scope.
    ("E0425", ErrorClass::CrossReference),
    ("E0412", ErrorClass::CrossReference),
    ("E0422", ErrorClass::CrossReference),
    ("E0405", ErrorClass::CrossReference),
    ("E0531", ErrorClass::CrossReference),
    // Expected value, found struct (or another kind of item).
    ("E0423", ErrorClass::CrossReference),
    ("E0574", ErrorClass::CrossReference),
    ("E0532", ErrorClass::CrossReference),
    ("E0618", ErrorClass::CrossReference),
    // No method or associated item; no field; struct has no field named; missing fields.
    ("E0599", ErrorClass::CrossReference),
    ("E0609", ErrorClass::CrossReference),
    ("E0560", ErrorClass::CrossReference),
    ("E0559", ErrorClass::CrossReference),
    ("E0063", ErrorClass::CrossReference),
    ("E0026", ErrorClass::CrossReference),
    ("E0027", ErrorClass::CrossReference),
    // A private field or method used from outside its module.
    ("E0616", ErrorClass::CrossReference),
    ("E0624", ErrorClass::CrossReference),
    // A method taken as a field (`x.len` for `x.len()`).
    ("E0615", ErrorClass::CrossReference),
    // Mismatched types: a value that does not match its definition's type (as TS2322).
    ("E0308", ErrorClass::CrossReference),
    // Wrong number of generic arguments; a trait method whose signature differs from the trait's.
    ("E0107", ErrorClass::CrossReference),
    ("E0050", ErrorClass::CrossReference),
    ("E0053", ErrorClass::CrossReference),
    ("E0407", ErrorClass::CrossReference),
];

fn classify(code: &str) -> ErrorClass {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(ErrorClass::Other, |(_, class)| *class)
}

pub(super) async fn check(p: &Project<'_>) -> Result<Found, CheckError> {
    let target = p.work.join("target");
    let env = env(&target);
    let args: [&OsStr; 6] = [
        "check".as_ref(),
        "--all-targets".as_ref(),
        "--offline".as_ref(),
        "--message-format=json".as_ref(),
        "--color".as_ref(),
        "never".as_ref(),
    ];
    let ran = run(Path::new("cargo"), &args, p.root, &env, TOOL_TIMEOUT)
        .await
        .map_err(|f| f.into_error("cargo check"))?;
    let mut errors = parse_cargo(&ran.stdout);
    if !ran.success() && errors.is_empty() {
        errors.push(cargo_failure(&ran)?);
    }
    let tests = match p.tests {
        None => TestRun::default(),
        Some(_) if !errors.is_empty() => TestRun::not_run("not run: the project does not compile"),
        Some(_) => cargo_test(p.root, &env).await?,
    };
    Ok(Found { errors, tests })
}

/// The environment of every cargo run: the build in the scratch folder, and the compiler's
/// flags of its own (none from the caller's environment, which could turn warnings into errors).
fn env(target: &Path) -> Vec<(&'static str, &OsStr)> {
    vec![
        ("CARGO_TARGET_DIR", target.as_os_str()),
        ("RUSTFLAGS", OsStr::new("")),
        ("CARGO_ENCODED_RUSTFLAGS", OsStr::new("")),
        ("CARGO_TERM_COLOR", OsStr::new("never")),
        // A failing test's panic message, without a backtrace, in the output's tail.
        ("RUST_BACKTRACE", OsStr::new("0")),
    ]
}

/// A failed `cargo check` that printed no compiler message: one error of class other, unless
/// cargo refused the set-up (the project lies inside another cargo workspace).
fn cargo_failure(ran: &Ran) -> Result<Diagnostic, CheckError> {
    if ran
        .stderr
        .contains("believes it's in a workspace when it's not")
    {
        return Err(CheckError::Tool {
            tool: "cargo check".into(),
            detail: format!(
                "the project lies inside another cargo workspace: {}",
                ran.tail()
            ),
        });
    }
    let message = ran
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("cargo check failed")
        .trim()
        .to_owned();
    Ok(Diagnostic {
        class: ErrorClass::Other,
        tool: "cargo".into(),
        file: "Cargo.toml".into(),
        line: 0,
        code: String::new(),
        message,
    })
}

/// One line of cargo's JSON output (only compiler messages matter).
#[derive(Deserialize)]
struct Line {
    reason: String,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    level: String,
    message: String,
    code: Option<Code>,
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

#[derive(Deserialize)]
struct Span {
    file_name: String,
    line_start: u32,
    is_primary: bool,
}

/// rustc's errors from cargo's JSON lines, each once (warnings, notes and the closing
/// "aborting due to" are left out).
pub(super) fn parse_cargo(stdout: &str) -> Vec<Diagnostic> {
    let mut found: Vec<Diagnostic> = Vec::new();
    for line in stdout.lines() {
        let Ok(Line {
            reason,
            message: Some(m),
        }) = serde_json::from_str::<Line>(line)
        else {
            continue;
        };
        let is_error = m.level == "error" || m.level == "error: internal compiler error";
        if reason != "compiler-message" || !is_error || m.message.starts_with("aborting due to") {
            continue;
        }
        let span = m.spans.iter().find(|s| s.is_primary).or(m.spans.first());
        let code = m.code.map(|c| c.code).unwrap_or_default();
        let diagnostic = Diagnostic {
            class: classify(&code),
            tool: "rustc".into(),
            file: span.map(|s| s.file_name.clone()).unwrap_or_default(),
            line: span.map_or(0, |s| s.line_start),
            code,
            message: m.message,
        };
        if !found.contains(&diagnostic) {
            found.push(diagnostic);
        }
    }
    found
}

async fn cargo_test(root: &Path, env: &[(&str, &OsStr)]) -> Result<TestRun, CheckError> {
    let args: [&OsStr; 5] = [
        "test".as_ref(),
        "--offline".as_ref(),
        "--no-fail-fast".as_ref(),
        "--color".as_ref(),
        "never".as_ref(),
    ];
    match run(Path::new("cargo"), &args, root, env, TOOL_TIMEOUT).await {
        Ok(ran) => Ok(parse_cargo_test(&ran.stdout, ran.success(), ran.tail())),
        Err(RunFailure::TimedOut(after)) => Ok(TestRun::not_run(format!(
            "cargo test timed out after {} s",
            after.as_secs()
        ))),
        Err(f) => Err(f.into_error("cargo test")),
    }
}

/// The sum of every test binary's `test result: ok. N passed; M failed; ...` line. A run that
/// failed while every reported test passed (a test binary that crashed before its summary)
/// counts one failed test.
pub(super) fn parse_cargo_test(stdout: &str, success: bool, output_tail: String) -> TestRun {
    let mut results = 0;
    let (mut passed, mut failed) = (0u32, 0u32);
    for line in stdout.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        results += 1;
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let n = |i: usize| words.get(i).and_then(|w| w.parse::<u32>().ok());
            // "ok. 2 passed" / "FAILED. 1 passed" (first part), " 1 failed" (later parts).
            match words.as_slice() {
                [_, _, "passed"] => passed += n(1).unwrap_or_default(),
                [_, "passed"] => passed += n(0).unwrap_or_default(),
                [_, "failed"] => failed += n(0).unwrap_or_default(),
                _ => {}
            }
        }
    }
    if results == 0 {
        return TestRun::not_run(output_tail);
    }
    if !success && failed == 0 {
        failed = 1;
    }
    TestRun {
        ran: passed + failed > 0,
        passed,
        failed,
        output_tail,
    }
}

#[cfg(test)]
mod tests;

//! The classifiers against the real toolchains: every fixture of `eval/defects/<language>/`
//! (a small finished project with one known defect) is checked with the pinned tools, installed
//! into `<workspace>/.tools/eval`, and must give exactly the counts, errors and passing tests its
//! `expected.json` states.

use std::path::{Path, PathBuf};
use std::time::Instant;

use baton_eval::check::{CheckSpec, Checked, Counts, ErrorClass, Language, Toolchains};
use serde::Deserialize;

/// The defects every language has a fixture for.
const DEFECTS: &[&str] = &[
    "clean",
    "failing-test",
    "missing-import",
    "wrong-path",
    "wrong-signature",
];

/// A fixture's `expected.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    check: CheckSpec,
    counts: Counts,
    /// Every error the checker must report, and no other.
    errors: Vec<ExpectedError>,
    /// How many of the project's tests pass.
    passed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedError {
    class: ErrorClass,
    code: String,
    file: String,
    line: u32,
}

fn workspace_root() -> PathBuf {
    // crates/eval → the workspace.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/eval sits two folders below the workspace root")
        .to_path_buf()
}

/// Copies the fixture (all but `expected.json`) to `to`: the check runs outside the baton
/// workspace (cargo would take a fixture for a stray member of it) and leaves the tree clean.
fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "expected.json" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_project(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// What a check found, in the shape of `expected.json`'s errors, sorted.
fn found_errors(checked: &Checked) -> Vec<ExpectedError> {
    let mut errors: Vec<ExpectedError> = checked
        .errors
        .iter()
        .map(|e| ExpectedError {
            class: e.class,
            code: e.code.clone(),
            file: e.file.clone(),
            line: e.line,
        })
        .collect();
    errors.sort_by(|a, b| (&a.file, a.line, &a.code).cmp(&(&b.file, b.line, &b.code)));
    errors
}

async fn check_every_defect(language: Language, folder: &str) {
    let root = workspace_root();
    let began = Instant::now();
    let tools = Toolchains::install(&root.join(".tools/eval"), &[language])
        .await
        .unwrap_or_else(|e| panic!("installing the {folder} toolchain: {e}"));
    let installed = began.elapsed();
    let again = Instant::now();
    Toolchains::install(&root.join(".tools/eval"), &[language, language])
        .await
        .unwrap_or_else(|e| panic!("installing the {folder} toolchain again: {e}"));
    assert!(
        again.elapsed().as_secs_f64() < 2.0,
        "a second install of {folder} took {:?}: its marker was not found",
        again.elapsed()
    );
    let scratch = std::env::temp_dir().join(format!(
        "baton-eval-defects-{}-{folder}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    let fixtures = root.join("eval/defects").join(folder);
    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, DEFECTS, "the {folder} fixtures");
    let checking = Instant::now();
    let mut wrong = Vec::new();
    for name in &names {
        let fixture = fixtures.join(name);
        let text = std::fs::read_to_string(fixture.join("expected.json")).unwrap();
        let expected: Expected = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{folder}/{name}/expected.json: {e}"));
        let project = scratch.join(name).join("project");
        copy_project(&fixture, &project);
        let checked = tools
            .check(
                language,
                &project,
                &expected.check,
                &scratch.join(name).join("work"),
            )
            .await
            .unwrap_or_else(|e| panic!("checking {folder}/{name}: {e}"));
        let mut want = expected.errors.clone();
        want.sort_by(|a, b| (&a.file, a.line, &a.code).cmp(&(&b.file, b.line, &b.code)));
        let got = found_errors(&checked);
        if checked.counts != expected.counts
            || got != want
            || checked.tests.passed != expected.passed
        {
            wrong.push(format!(
                "{folder}/{name}:\n  counts {:?}\n  want   {:?}\n  errors {got:?}\n  want   {want:?}\n  \
                 passed {} (want {})\n  found {:#?}",
                checked.counts, expected.counts, checked.tests.passed, expected.passed, checked
            ));
        }
    }
    eprintln!(
        "{folder}: install {:.1} s, {} fixtures checked in {:.1} s",
        installed.as_secs_f64(),
        names.len(),
        checking.elapsed().as_secs_f64()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_defects_are_classified() {
    check_every_defect(Language::Typescript, "typescript").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_defects_are_classified() {
    check_every_defect(Language::Python, "python").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_defects_are_classified() {
    check_every_defect(Language::Rust, "rust").await;
}

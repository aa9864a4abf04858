//! The pyflakes, mypy and unittest readers on output captured from pyflakes 4.1.0 (through
//! the driver), mypy 2.4.1 and Python 3.11's unittest (`testdata/`; `main.py.txt` is the file
//! the mypy and pyflakes output is about).

use super::*;

const MAIN: &str = include_str!("testdata/main.py.txt");

fn main_line(file: &str, line: u32) -> Option<String> {
    assert!(file == "main.py" || file == "bad.py", "{file}");
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    (file == "main.py").then(|| MAIN.lines().nth(index).map(str::to_owned))?
}

#[test]
fn mypy_errors_are_read_and_an_attribute_missing_on_an_import_is_a_missing_import() {
    let errors = parse_mypy(include_str!("testdata/mypy-errors.txt"), main_line);
    let seen: Vec<(&str, u32, &str, ErrorClass)> = errors
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.code.as_str(), e.class))
        .collect();
    use ErrorClass::{CrossReference as X, MissingImport as M, Other as O};
    assert_eq!(
        seen,
        [
            ("main.py", 1, "attr-defined", M),
            ("main.py", 6, "import-not-found", M),
            ("main.py", 7, "attr-defined", M),
            // `pkg.a.h()`: a module's attribute used, not imported.
            ("main.py", 10, "attr-defined", X),
            ("main.py", 11, "arg-type", X),
            ("main.py", 12, "name-defined", X),
            ("main.py", 13, "name-defined", X),
            ("main.py", 14, "assignment", X),
            ("bad.py", 1, "syntax", O),
            ("bad.py", 2, "syntax", O),
        ]
    );
    assert_eq!(errors[0].message, "Module \"pkg.a\" has no attribute \"g\"");
}

#[test]
fn a_mypy_error_without_a_line_or_a_code_is_read() {
    let errors = parse_mypy(
        "missing.py: error: Cannot read file: No such file or directory\n",
        |_, _| None,
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (
            errors[0].file.as_str(),
            errors[0].line,
            errors[0].code.as_str()
        ),
        ("missing.py", 0, "")
    );
}

#[test]
fn only_the_pyflakes_findings_that_break_a_run_count() {
    let errors = parse_pyflakes(include_str!("testdata/pyflakes.jsonl"));
    let seen: Vec<(&str, u32, &str, ErrorClass)> = errors
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.code.as_str(), e.class))
        .collect();
    use ErrorClass::{CrossReference as X, Other as O};
    assert_eq!(
        seen,
        [
            ("main.py", 12, "UndefinedName", X),
            ("main.py", 13, "UndefinedName", X),
            ("main.py", 17, "UndefinedName", X),
            ("bad.py", 1, "SyntaxError", O),
            ("c.py", 3, "UndefinedName", X),
        ]
    );
    assert_eq!(errors[0].message, "undefined name 'C'");
}

#[test]
fn an_error_both_tools_report_counts_once() {
    let mypy = parse_mypy(include_str!("testdata/mypy-errors.txt"), main_line);
    let flakes = parse_pyflakes(include_str!("testdata/pyflakes.jsonl"));
    let merged = merge(flakes, mypy);
    let from_pyflakes: Vec<(&str, u32)> = merged
        .iter()
        .filter(|e| e.tool == "pyflakes")
        .map(|e| (e.file.as_str(), e.line))
        .collect();
    // Lines 12 and 13 of main.py and bad.py's syntax error are mypy's too; line 17 is in an
    // unannotated function mypy does not check.
    assert_eq!(from_pyflakes, [("main.py", 17), ("c.py", 3)]);
    assert_eq!(merged.len(), 12);
}

#[test]
fn unittest_failures_are_counted() {
    let run = parse_unittest(include_str!("testdata/unittest-failing.txt"), String::new());
    assert!(run.ran);
    assert_eq!((run.passed, run.failed), (1, 1));
}

#[test]
fn a_test_module_that_cannot_be_imported_is_one_failure() {
    let run = parse_unittest(
        include_str!("testdata/unittest-import-error.txt"),
        String::new(),
    );
    assert!(run.ran);
    assert_eq!((run.passed, run.failed), (0, 1));
}

#[test]
fn no_tests_or_no_summary_did_not_run() {
    assert!(!parse_unittest(include_str!("testdata/unittest-none.txt"), String::new()).ran);
    let crashed = "ImportError: Start directory is not importable: 'tests'\n";
    assert!(!parse_unittest(crashed, String::new()).ran);
}

#[test]
fn skipped_and_expected_failures_neither_pass_nor_fail() {
    let out = "Ran 6 tests in 0.001s\n\nFAILED (failures=1, errors=1, skipped=1, expected failures=1, unexpected successes=1)\n";
    let run = parse_unittest(out, String::new());
    assert_eq!((run.passed, run.failed), (1, 3));
    let ok = parse_unittest("Ran 3 tests in 0.0s\n\nOK (skipped=1)\n", String::new());
    assert_eq!((ok.passed, ok.failed), (2, 0));
}

#[test]
fn every_listed_kind_and_code_has_one_class() {
    for table in [PYFLAKES, MYPY] {
        for (i, (name, _)) in table.iter().enumerate() {
            assert!(
                !table[i + 1..].iter().any(|(n, _)| n == name),
                "{name} twice"
            );
        }
    }
    assert_eq!(classify_pyflakes("UnusedImport"), None);
    assert_eq!(classify_mypy("union-attr", "", None), ErrorClass::Other);
}

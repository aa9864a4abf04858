//! The cargo readers on output captured from cargo 1.95 (`testdata/`): a `cargo check
//! --all-targets --message-format=json` of a binary with six kinds of error, each reported
//! for the binary and again for its test target, and a `cargo test` with one failing test.

use super::*;

#[test]
fn compiler_errors_are_read_once_each_with_their_primary_place() {
    let errors = parse_cargo(include_str!("testdata/check-errors.jsonl"));
    let seen: Vec<(&str, u32, ErrorClass)> = errors
        .iter()
        .map(|e| (e.code.as_str(), e.line, e.class))
        .collect();
    assert_eq!(
        seen,
        [
            ("E0432", 3, ErrorClass::MissingImport),
            ("E0061", 8, ErrorClass::CrossReference),
            ("E0308", 10, ErrorClass::CrossReference),
            ("E0433", 12, ErrorClass::MissingImport),
        ]
    );
    assert!(errors
        .iter()
        .all(|e| e.file == "src/main.rs" && e.tool == "rustc"));
    assert_eq!(errors[0].message, "unresolved import `notes::stor`");
}

#[test]
fn warnings_notes_and_other_lines_are_not_errors() {
    let lines = [
        r#"{"reason":"compiler-message","message":{"level":"warning","message":"unused variable: `x`","code":{"code":"unused_variables"},"spans":[{"file_name":"src/main.rs","line_start":2,"is_primary":true}]}}"#,
        r#"{"reason":"compiler-message","message":{"level":"error","message":"aborting due to 2 previous errors","code":null,"spans":[]}}"#,
        r#"{"reason":"build-finished","success":false}"#,
        "not json at all",
        r#"{"reason":"compiler-message","message":{"level":"error","message":"expected one of `!` or `::`, found `x`","code":null,"spans":[{"file_name":"src/lib.rs","line_start":4,"is_primary":true}]}}"#,
    ];
    let errors = parse_cargo(&lines.join("\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].class, errors[0].line), (ErrorClass::Other, 4));
    assert_eq!(errors[0].code, "");
}

#[test]
fn test_results_are_summed_over_every_test_binary() {
    let run = parse_cargo_test(
        include_str!("testdata/test-failing.txt"),
        false,
        String::new(),
    );
    assert!(run.ran);
    assert_eq!((run.passed, run.failed), (1, 1));
}

#[test]
fn a_run_with_no_result_line_did_not_run() {
    let run = parse_cargo_test("", false, "error: could not compile".into());
    assert!(!run.ran);
    assert_eq!(run.output_tail, "error: could not compile");
}

#[test]
fn a_crate_without_tests_did_not_run_its_tests() {
    let out = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
    assert!(!parse_cargo_test(out, true, String::new()).ran);
}

#[test]
fn a_failed_run_whose_tests_all_passed_counts_one_failure() {
    let out = "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
    let run = parse_cargo_test(out, false, String::new());
    assert_eq!((run.passed, run.failed), (3, 1));
}

#[test]
fn every_listed_code_has_one_class() {
    for (i, (code, _)) in CODES.iter().enumerate() {
        assert!(code.starts_with('E') && code.len() == 5, "{code}");
        assert!(
            !CODES[i + 1..].iter().any(|(c, _)| c == code),
            "{code} twice"
        );
    }
    assert_eq!(classify("E0277"), ErrorClass::Other);
}

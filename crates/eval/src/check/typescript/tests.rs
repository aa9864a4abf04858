//! The tsc and TAP readers on lines captured from tsc 5.9.3 (`--pretty false`) and Node 20's
//! `node --test --test-reporter=tap` (`testdata/`).

use super::*;

#[test]
fn tsc_errors_are_read_with_place_code_and_class() {
    let errors = parse_tsc(include_str!("testdata/tsc-errors.txt"));
    let seen: Vec<(&str, u32, &str, ErrorClass)> = errors
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.code.as_str(), e.class))
        .collect();
    use ErrorClass::{CrossReference as X, MissingImport as M, Other as O};
    assert_eq!(
        seen,
        [
            ("src/main.ts", 1, "TS2724", M),
            ("src/main.ts", 2, "TS2614", M),
            ("src/main.ts", 3, "TS2307", M),
            ("src/main.ts", 5, "TS2345", X),
            ("src/main.ts", 6, "TS2339", X),
            ("src/main.ts", 7, "TS2322", X),
            ("src/main.ts", 8, "TS2552", X),
            ("src/main.ts", 8, "TS2304", X),
            ("src/main.ts", 9, "TS7006", O),
            ("src/types.ts", 2, "TS2322", X),
            ("src/broken.ts", 11, "TS1109", O),
            ("", 0, "TS6053", O),
        ]
    );
    assert_eq!(
        errors[2].message,
        "Cannot find module './missing' or its corresponding type declarations."
    );
    assert!(errors.iter().all(|e| e.tool == "tsc"));
}

#[test]
fn odd_lines_are_not_errors() {
    let odd =
        "\n  Target signature provides too few arguments.\nsrc/a.ts(1,1): error TSxx: no code\n\
               src/a.ts(zz): error TS2304: bad place\nVersion 5.9.3\n";
    assert!(parse_tsc(odd).is_empty());
}

#[test]
fn a_failing_test_is_counted() {
    let run = parse_tap(include_str!("testdata/tap-failing.txt"), String::new());
    assert!(run.ran);
    assert_eq!((run.passed, run.failed), (1, 1));
}

#[test]
fn a_test_file_that_cannot_load_is_one_failed_test() {
    let run = parse_tap(include_str!("testdata/tap-load-error.txt"), String::new());
    assert!(run.ran);
    assert_eq!((run.passed, run.failed), (0, 1));
}

#[test]
fn output_without_a_summary_did_not_run() {
    let run = parse_tap("TAP version 13\n", "killed".into());
    assert!(!run.ran);
    assert_eq!(run.output_tail, "killed");
}

#[test]
fn every_listed_code_has_one_class() {
    for (i, (code, _)) in CODES.iter().enumerate() {
        assert!(code.starts_with("TS"), "{code}");
        assert!(
            !CODES[i + 1..].iter().any(|(c, _)| c == code),
            "{code} twice"
        );
    }
}

//! Every way a document can be wrong names its field.
use super::*;
use crate::plan::PermissionMode;

fn err(doc: &str) -> ValidationError {
    Document::parse(doc.as_bytes()).unwrap_err()
}

fn plan(doc: &[u8]) -> Submission {
    match Document::parse(doc).unwrap() {
        Document::Plan(s) => *s,
        other => panic!("not a plan: {other:?}"),
    }
}

#[test]
fn a_full_document_parses() {
    let s = plan(
        br#"{"plan_id":"p1","workspace":"apps/p1","tasks":[{"id":"a","type":"create_file","prompt":"--help me"},{"prompt":"two"}],
            "options":{"model":"sonnet","permission_mode":"plan","allowed_tools":["Read"],"max_budget_usd":1.5,"session_ttl_secs":60}}"#,
    );
    assert_eq!(s.plan_id.unwrap().as_str(), "p1");
    assert_eq!(s.workspace.unwrap().as_str(), "apps/p1");
    assert_eq!(s.tasks.len(), 2);
    assert_eq!(s.tasks[0].prompt, "--help me");
    assert!(s.tasks[1].id.as_str().len() == 36, "generated id is a uuid");
    assert_eq!(
        s.options.unwrap().permission_mode,
        Some(PermissionMode::Plan)
    );
}

#[test]
fn each_bad_document_names_its_field() {
    let cases = [
        ("not json", "document", "not valid JSON"),
        ("{}", "tasks", "missing"),
        (r#"{"tasks":[]}"#, "tasks", "empty"),
        (r#"{"tasks":[{"prompt":""}]}"#, "tasks[0].prompt", "empty"),
        (
            r#"{"tasks":[{"prompt":"a"},{"id":5,"prompt":"b"}]}"#,
            "tasks[1].id",
            "invalid type",
        ),
        (
            r#"{"tasks":[{"prompt":"a\u0000"}]}"#,
            "tasks[0].prompt",
            "NUL",
        ),
        (
            r#"{"tasks":[{"id":"x","prompt":"a"},{"id":"x","prompt":"b"}]}"#,
            "tasks[1].id",
            "unique",
        ),
        (
            r#"{"workspace":"../etc","tasks":[{"prompt":"a"}]}"#,
            "workspace",
            "inside the workspace root",
        ),
        (
            r#"{"workspace":"/etc","tasks":[{"prompt":"a"}]}"#,
            "workspace",
            "absolute",
        ),
        (
            r#"{"plan_id":"a{b}","tasks":[{"prompt":"a"}]}"#,
            "plan_id",
            "allowed are",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"permission_mode":"bypassPermissions"}}"#,
            "options.permission_mode",
            "unknown variant",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"max_budget_usd":-1}}"#,
            "options.max_budget_usd",
            "positive",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"extra":1}"#,
            "extra",
            "unknown field",
        ),
        (r#"{"tasks":"do it"}"#, "tasks", "invalid type"),
        (r#"{"action":"retry"}"#, "plan_id", "missing"),
        (
            r#"{"plan_id":"p","action":"explode"}"#,
            "action",
            "known: retry",
        ),
        (
            r#"{"plan_id":"p","action":"retry","tasks":[{"prompt":"a"}]}"#,
            "tasks",
            "not allowed",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"ext::sh -c x"}}"#,
            "repo.url",
            "run commands",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"https://u:p@h/x.git"}}"#,
            "repo.url",
            "credentials",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{}}"#,
            "repo.url",
            "missing",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"/r.git","base":"-x"}}"#,
            "repo.base",
            "option",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"/r.git","branch":"a..b"}}"#,
            "repo.branch",
            "..",
        ),
        (
            r#"{"plan_id":"p.lock","tasks":[{"prompt":"a"}],"repo":{"url":"/r.git"}}"#,
            "repo.branch",
            "set repo.branch",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"/r.git","token":"x"}}"#,
            "repo.token",
            "unknown field",
        ),
    ];
    for (doc, field, problem) in cases {
        let e = err(doc);
        assert_eq!(e.field, field, "{doc}: {e}");
        assert!(e.problem.contains(problem), "{doc}: {e}");
    }
}

#[test]
fn size_and_encoding_limits_hold() {
    assert!(err(&" ".repeat(MAX_DOCUMENT_BYTES + 1))
        .problem
        .contains("limit"));
    let e = Document::parse(b"{\"tasks\":[{\"prompt\":\"\xff\"}]}").unwrap_err();
    assert!(e.problem.contains("UTF-8"), "{e}");
    let big = format!(
        r#"{{"tasks":[{{"prompt":"{}"}}]}}"#,
        "a".repeat(MAX_PROMPT_BYTES + 1)
    );
    assert_eq!(err(&big).field, "tasks[0].prompt");
}

#[test]
fn action_documents_round_trip() {
    let a = ActionRequest {
        plan_id: "p1".parse().unwrap(),
        action: PlanAction::Retry,
    };
    assert_eq!(
        Document::parse(a.to_json().as_bytes()).unwrap(),
        Document::Action(a)
    );
}

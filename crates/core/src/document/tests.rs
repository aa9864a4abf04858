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
    for action in PlanAction::ALL {
        let mut a = ActionRequest::new("p1".parse().unwrap(), *action);
        if *action == PlanAction::Reject {
            a.note = Some("use a dataclass".into());
        }
        assert_eq!(
            Document::parse(a.to_json().as_bytes()).unwrap(),
            Document::Action(a)
        );
    }
}

#[test]
fn controls_in_documents_are_checked_and_named() {
    let field = |doc: &str| err(doc).field;
    assert_eq!(field(r#"{"plan_id":"p","action":"reject"}"#), "note");
    assert_eq!(
        field(r#"{"plan_id":"p","action":"resume","note":"x"}"#),
        "note"
    );
    assert_eq!(
        field(r#"{"plan_id":"p","action":"approve","note":" "}"#),
        "note"
    );
    let task = r#""tasks":[{"prompt":"x"}]"#;
    assert_eq!(
        field(&format!(r#"{{{task},"options":{{"priority":"urgent"}}}}"#)),
        "options.priority"
    );
    assert_eq!(
        field(&format!(
            r#"{{{task},"options":{{"not_before":"tomorrow"}}}}"#
        )),
        "options.not_before"
    );
    assert_eq!(
        field(&format!(
            r#"{{{task},"options":{{"not_before":"2026-12-01T08:00:00+01:00"}}}}"#
        )),
        "options.not_before"
    );
    assert_eq!(
        field(&format!(
            r#"{{"plan_id":"a",{task},"options":{{"after":["b","a"]}}}}"#
        )),
        "options.after[1]"
    );
    assert_eq!(
        field(&format!(r#"{{{task},"options":{{"after":["b","b"]}}}}"#)),
        "options.after[1]"
    );
    assert_eq!(
        field(&format!(
            r#"{{{task},"options":{{"after":["no spaces"]}}}}"#
        )),
        "options.after[0]"
    );
    assert_eq!(
        field(r#"{"tasks":[{"prompt":"x","review":"yes"}]}"#),
        "tasks[0].review"
    );
    assert_eq!(
        field(r#"{"tasks":[{"prompt":"x","json_schema":{"type":12}}]}"#),
        "tasks[0].json_schema"
    );
    assert_eq!(
        field(r#"{"tasks":[{"prompt":"x","json_schema":"s"}]}"#),
        "tasks[0].json_schema"
    );
    for (opts, at) in [
        (r#"{"max_turns":0}"#, "options.max_turns"),
        (r#"{"max_turns":"many"}"#, "options.max_turns"),
        (r#"{"effort":"extreme"}"#, "options.effort"),
        (
            r#"{"fallback_model":"sonnet,-x"}"#,
            "options.fallback_model",
        ),
        (
            r#"{"disallowed_tools":["--all"]}"#,
            "options.disallowed_tools[0]",
        ),
        (
            r#"{"mcp_config":{"servers":{}}}"#,
            "options.mcp_config.mcpServers",
        ),
        (
            r#"{"mcp_config":{"mcpServers":{},"x":1}}"#,
            "options.mcp_config.x",
        ),
        (r#"{"mcp_config":"file.json"}"#, "options.mcp_config"),
        (
            r#"{"agents":{"bad name":{"description":"d","prompt":"p"}}}"#,
            "options.agents.bad name",
        ),
        (
            r#"{"agents":{"rev":{"description":"d"}}}"#,
            "options.agents.rev.prompt",
        ),
    ] {
        let d = format!(r#"{{{task},"options":{opts}}}"#);
        assert_eq!(field(&d), at, "{opts}");
    }
    let doc = r#"{"tasks":[{"prompt":"x","review":true}],"options":{"priority":"high","not_before":"2026-12-01T08:00:00Z","after":["b"]}}"#;
    let ok = Document::parse(doc.as_bytes()).unwrap();
    let Document::Plan(sub) = ok else { panic!() };
    assert!(sub.tasks[0].review);
    let o = sub.options.unwrap();
    assert_eq!(o.priority, Some(crate::vocab::Priority::High));
    assert_eq!(o.not_before_ms(), Some(1_796_112_000_000));
}

#[test]
fn an_action_names_the_state_it_wants_and_why_a_plan_refuses_it() {
    use crate::vocab::PlanState;
    let p: PlanId = "p".parse().unwrap();
    assert_eq!(PlanAction::Retry.applies_to(), PlanState::Failed);
    assert_eq!(PlanAction::Resume.applies_to(), PlanState::Paused);
    assert_eq!(PlanAction::Reject.applies_to(), PlanState::AwaitingReview);
    assert_eq!(
        PlanAction::Resume.refusal(&p, Some(PlanState::Completed)),
        "plan p is completed, not paused; only a plan that is paused can be resumed"
    );
    assert!(PlanAction::Approve
        .refusal(&p, None)
        .starts_with("no plan p"));
}

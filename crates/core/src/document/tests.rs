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
        // One JSON object, nothing after it, no positional forms.
        (
            r#"{"tasks":[{"prompt":"a"}]} garbage"#,
            "document",
            "data after the JSON value",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}]}{"tasks":[{"prompt":"b"}]}"#,
            "document",
            "data after the JSON value",
        ),
        (
            r#"[null, null, [{"prompt":"a"}]]"#,
            "document",
            "JSON array",
        ),
        (r#""tasks""#, "document", "not a JSON object"),
        (r#"{"tasks":[[null, null, "a"]]}"#, "tasks[0]", "JSON array"),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":[null, null, ["Bash"]]}"#,
            "options",
            "JSON array",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":["/r.git"]}"#,
            "repo",
            "JSON array",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"notify":["https://h/x",["plan_failed"]]}}"#,
            "options.notify",
            "JSON array",
        ),
        // Typed tool grants.
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Read","Write","Read(/etc/**)"]}}"#,
            "options.allowed_tools[2]",
            "absolute path",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Edit(//etc/passwd)"]}}"#,
            "options.allowed_tools[0]",
            "absolute path",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Read(~/.ssh/*)"]}}"#,
            "options.allowed_tools[0]",
            "home folder",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Read(src/../../x)"]}}"#,
            "options.allowed_tools[0]",
            "'..'",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Read","Read Bash"]}}"#,
            "options.allowed_tools[1]",
            "not a tool name",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Read(x) Bash(y)"]}}"#,
            "options.allowed_tools[0]",
            "inside its rule",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Frobnicate"]}}"#,
            "options.allowed_tools[0]",
            "unknown tool",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"disallowed_tools":["Bash","WebFetch(x)"]}}"#,
            "options.disallowed_tools[1]",
            "domain:<host>",
        ),
        // MCP servers, by shape (whether a worker allows them is its own check).
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"mcp_config":{"mcpServers":{"s":{"args":["x"]}}}}}"#,
            "options.mcp_config.mcpServers.s.command",
            "missing",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"mcp_config":{"mcpServers":{"s":{"type":"ws","url":"ws://h"}}}}}"#,
            "options.mcp_config.mcpServers.s.type",
            "known",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"mcp_config":{"mcpServers":{"s":{"command":"npx","env":{"PATH":"."}}}}}}"#,
            "options.mcp_config.mcpServers.s.env.PATH",
            "may not set",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"options":{"mcp_config":{"mcpServers":{"bad name":{"command":"x"}}}}}"#,
            "options.mcp_config.mcpServers.bad name",
            "server name",
        ),
        // ssh would read a leading '-' as an option; invisible characters in ref names.
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"ssh://-oProxyCommand=x/r.git"}}"#,
            "repo.url",
            "option",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"git@-oProxyCommand:r.git"}}"#,
            "repo.url",
            "option",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"/r.git","branch":"main\u202e"}}"#,
            "repo.branch",
            "U+202E",
        ),
        (
            r#"{"tasks":[{"prompt":"a"}],"repo":{"url":"/r.git","base":"v1\u200b"}}"#,
            "repo.base",
            "U+200B",
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
fn append_system_prompt_fits_in_one_argument() {
    use crate::plan::{MAX_APPEND_SYSTEM_PROMPT_BYTES, MAX_ARG_STRLEN};
    let doc = |n: usize| {
        format!(
            r#"{{"tasks":[{{"prompt":"a"}}],"options":{{"append_system_prompt":"{}"}}}}"#,
            "a".repeat(n)
        )
    };
    assert_eq!(
        format!(
            "--append-system-prompt={}",
            "a".repeat(MAX_APPEND_SYSTEM_PROMPT_BYTES)
        )
        .len()
            + 1,
        MAX_ARG_STRLEN,
        "the longest one accepted is exactly one argument, with its NUL"
    );
    assert!(Document::parse(doc(MAX_APPEND_SYSTEM_PROMPT_BYTES).as_bytes()).is_ok());
    let e = err(&doc(MAX_APPEND_SYSTEM_PROMPT_BYTES + 1));
    assert_eq!(e.field, "options.append_system_prompt");
    assert!(
        e.problem
            .contains(&format!("the limit is {MAX_APPEND_SYSTEM_PROMPT_BYTES}")),
        "{e}"
    );
}

#[test]
fn trailing_whitespace_is_fine_and_grants_keep_their_text() {
    let s = plan(
        br#"{"tasks":[{"prompt":"a"}],"options":{"allowed_tools":["Bash(npm test:*)","Read(./src/**)","mcp__gh__issues"]}}
  "#,
    );
    let tools = s.options.unwrap().allowed_tools.unwrap();
    let texts: Vec<&str> = tools.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        texts,
        ["Bash(npm test:*)", "Read(./src/**)", "mcp__gh__issues"]
    );
}

#[test]
fn action_documents_round_trip() {
    for action in PlanAction::ALL {
        let mut a = ActionRequest::new("p1".parse().unwrap(), *action);
        if *action == PlanAction::Reject {
            a.note = Some("use a dataclass".into());
        }
        if *action == PlanAction::Budget {
            a.max_budget_usd = Some(2.5);
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
        (r#"{"context":"amnesia"}"#, "options.context"),
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

//! Grants and MCP servers as documents give them: what is accepted, what is refused and why.
use super::*;

#[test]
fn grants_parse_into_their_tool_and_rule() {
    let g: ToolGrant = "Bash(npm test:*)".parse().unwrap();
    assert_eq!(g.tool(), &Tool::Builtin("Bash"));
    assert_eq!(g.rule(), Some(&Rule::Command("npm test:*".into())));
    assert!(g.runs_commands());
    let g: ToolGrant = "Read(./src/**)".parse().unwrap();
    assert_eq!(g.rule(), Some(&Rule::Path("./src/**".into())));
    assert!(!g.runs_commands());
    let g: ToolGrant = "WebFetch(domain:example.com)".parse().unwrap();
    assert_eq!(g.rule(), Some(&Rule::Domain("example.com".into())));
    let g: ToolGrant = "mcp__github__create_issue".parse().unwrap();
    assert_eq!(
        g.tool(),
        &Tool::Mcp {
            server: "github".into(),
            tool: Some("create_issue".into())
        }
    );
    assert!("mcp__workspace__bash"
        .parse::<ToolGrant>()
        .unwrap()
        .runs_commands());
    for ok in [
        "Read",
        "Write",
        "Edit",
        "Bash",
        "Edit(docs/*.md)",
        "Glob(**/*.rs)",
        "mcp__srv",
        "mcp__srv__*",
        "Agent(reviewer)",
        "WebFetch(domain:*.example.com)",
    ] {
        let g: ToolGrant = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(g.as_str(), ok);
        assert_eq!(serde_json::to_string(&g).unwrap(), format!("{ok:?}"));
    }
}

#[test]
fn grants_outside_the_workspace_or_of_unknown_shape_are_refused() {
    for (bad, why) in [
        ("Read(/etc/passwd)", "absolute"),
        ("Edit(//etc/**)", "absolute"),
        ("Read(~/.ssh/**)", "home"),
        ("Read(../other/**)", ".."),
        ("Write(src/../../x)", ".."),
        ("Read($HOME/x)", "'$'"),
        ("Read({..,x}/y)", "'{'"),
        ("Read(C:/x)", "drive"),
        ("Read(a\\b)", "'\\\\'"),
        ("Read(x) Bash(y)", "inside its rule"),
        ("Read Bash", "not a tool name"),
        ("Read,Bash", "not a tool name"),
        ("bash", "unknown tool"),
        ("Shell", "unknown tool"),
        ("Bash(", "does not end"),
        ("Bash()", "empty rule"),
        ("WebSearch(x)", "takes no rule"),
        ("WebFetch(example.com)", "domain:<host>"),
        ("WebFetch(domain:a/b)", "not a host"),
        ("mcp__", "MCP tool name"),
        ("mcp__a__b c", "MCP tool name"),
        ("mcp__a(x)", "takes no rule"),
        ("--all", "not a tool name"),
        ("", "1-200"),
    ] {
        let e = bad.parse::<ToolGrant>().unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn mcp_servers_are_stdio_or_remote_and_name_the_field_at_fault() {
    let cfg: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        r#"{"mcpServers":{"fs":{"command":"npx","args":["-y","x"]},
            "api":{"type":"http","url":"https://mcp.example.com/x"}}}"#,
    )
    .unwrap();
    // (in name order)
    let all = McpServer::all(&cfg).unwrap();
    assert_eq!(
        all[1],
        (
            "options.mcp_config.mcpServers.fs".into(),
            McpServer::Stdio {
                command: "npx".into()
            }
        )
    );
    assert!(
        matches!(&all[0].1, McpServer::Remote { url } if url.host_str() == Some("mcp.example.com"))
    );
    for (server, field, why) in [
        (r#"{"args":["x"]}"#, "command", "missing"),
        (r#"{"type":"stdio","command":5}"#, "command", "missing"),
        (r#"{"type":"ws","url":"ws://x"}"#, "type", "known"),
        (r#"{"type":"http"}"#, "url", "missing"),
        (r#"{"type":"sse","url":"file:///x"}"#, "url", "http"),
        (
            r#"{"type":"http","url":"https://u:p@h/"}"#,
            "url",
            "credentials",
        ),
        (r#"{"command":"x","cwd":"/"}"#, "cwd", "not known"),
        (
            r#"{"command":"x","env":{"PATH":"/tmp"}}"#,
            "env.PATH",
            "a plan may not",
        ),
        (
            r#"{"command":"x","env":{"LD_PRELOAD":"/x.so"}}"#,
            "env.LD_PRELOAD",
            "a plan may not",
        ),
        (r#"{"command":"x","args":[1]}"#, "args", "strings"),
        ("7", "", "not an object"),
    ] {
        let v: serde_json::Value = serde_json::from_str(server).unwrap();
        let (f, p) = McpServer::parse(&v).unwrap_err();
        assert_eq!(f, field, "{server}");
        assert!(p.contains(why), "{server}: {p}");
    }
}

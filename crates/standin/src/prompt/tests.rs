//! The stand-in's script: which tool or answer each step of a prompt gets.
use serde_json::json;

use super::script::{commands_in, directive, files_in, reads_in, task_text, MOVED_NOTE};
use super::*;

#[test]
fn file_blocks_are_found_in_order() {
    let p = "Make two files.\nFile: a/b.py\n```python\nprint(1)\n```\ntext\nFile: `c.txt`\n\n```\nhi\n```\n";
    let f = files_in(p);
    assert_eq!(
        f,
        vec![
            ("a/b.py".into(), "print(1)\n".into()),
            ("c.txt".into(), "hi\n".into())
        ]
    );
}

#[test]
fn commands_come_after_reads_and_before_writes_and_their_output_is_reported() {
    let p = "Read: a.txt\nBash: env | sort\nBash: id\nFile: b.txt\n```\nb\n```\n";
    assert_eq!(commands_in(p), ["env | sort", "id"]);
    let mut shared = Shared::default();
    let turn = |n, texts: &[&str]| Turn {
        prompts: vec![p.into()],
        tool_results_since_prompt: n,
        result_texts: texts.iter().map(|t| (*t).to_owned()).collect(),
        offers_structured: false,
    };
    let tool = |t: &Turn, shared: &mut Shared| match decide(shared, t, p, None).0 {
        Reply::Tool { name, input } => {
            format!("{name} {}", input["command"].as_str().unwrap_or(""))
        }
        Reply::Text(s) => s,
        _ => "other".into(),
    };
    assert_eq!(tool(&turn(0, &[]), &mut shared), "Read ");
    assert_eq!(tool(&turn(1, &["a"]), &mut shared), "Bash env | sort");
    assert_eq!(tool(&turn(2, &["a", "HOME=/x"]), &mut shared), "Bash id");
    assert_eq!(
        tool(&turn(3, &["a", "HOME=/x", "uid=0"]), &mut shared),
        "Write "
    );
    let end = tool(&turn(4, &["a", "HOME=/x", "uid=0", "ok"]), &mut shared);
    assert!(
        end.ends_with("\n[bash output] HOME=/x\n[bash output] uid=0"),
        "{end}"
    );
}

#[test]
fn reads_come_before_writes() {
    let p = "Read: one.txt\nRead: `two.txt`\nFile: three.txt\n```\n3\n```\n";
    assert_eq!(reads_in(p), ["one.txt", "two.txt"]);
    let mut shared = Shared::default();
    let turn = |n| Turn {
        prompts: vec![p.into()],
        tool_results_since_prompt: n,
        result_texts: Vec::new(),
        offers_structured: false,
    };
    let names: Vec<String> = (0..4)
        .map(|n| match decide(&mut shared, &turn(n), p, None).0 {
            Reply::Tool { name, input } => {
                format!("{name} {}", input["file_path"].as_str().unwrap_or(""))
            }
            Reply::Text(_) => "text".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        ["Read one.txt", "Read two.txt", "Write three.txt", "text"]
    );
}

#[test]
fn baton_notes_about_a_moved_directory_are_not_part_of_the_task() {
    let moved = format!("{MOVED_NOTE}: /b (it was /a). Use paths relative to it.\n\nDo it.");
    assert_eq!(task_text(&moved), "Do it.");
    assert_eq!(task_text("Do it.\n\nNow."), "Do it.\n\nNow.");
}

#[test]
fn directives_parse() {
    assert_eq!(
        directive("x [[standin:fail 529 times=2]] y", "fail"),
        Some("529 times=2")
    );
    assert_eq!(directive("x [[standin:hang]]", "hang"), Some(""));
    assert_eq!(directive("nothing", "hang"), None);
}

#[test]
fn turns_count_prompts_and_tool_results() {
    let body = json!({"messages": [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "one"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": [{"type": "tool_use"}]},
        {"role": "user", "content": [{"type": "tool_result"}]}
    ]});
    let t = read_turn(&body);
    assert_eq!(t.prompts, vec!["one", "two"]);
    assert_eq!(t.tool_results_since_prompt, 1);
}

//! Answer keys: loading (and its errors), which task a prompt plays, facts, and rendering,
//! on the sample project `tests/fixtures/answers/demo`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use super::template::Template;
use super::*;
use crate::prompt::read_turn;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/answers")
}

fn demo() -> Answers {
    Answers::load(&fixtures()).expect("the sample key loads")
}

/// A fresh folder under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("standin-answers-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

/// The demo copied as project `name` into `dir`, its project.json and standin.json changed by
/// `edit` first.
fn write_project(dir: &Path, name: &str, edit: impl FnOnce(&mut Value, &mut Value)) {
    let from = fixtures().join("demo");
    let mut project = read_json(&from.join("project.json"));
    let mut key = read_json(&from.join("standin.json"));
    project["name"] = json!(name);
    edit(&mut project, &mut key);
    let to = dir.join(name);
    std::fs::create_dir_all(&to).expect("project dir");
    std::fs::write(to.join("project.json"), project.to_string()).expect("write");
    std::fs::write(to.join("standin.json"), key.to_string()).expect("write");
}

/// The load error's whole chain, as `anyhow` prints it at start-up.
fn load_error(dir: &Path) -> String {
    let err = Answers::load(dir).expect_err("the key must be refused");
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[test]
fn the_sample_key_loads_with_its_files_in_order() {
    let answers = demo();
    let p = answers.project("demo").expect("demo");
    let ids: Vec<&str> = p.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2", "t3"]);
    let t3: Vec<&str> = p.tasks[2].files.iter().map(|(f, _)| f.as_str()).collect();
    // Not the alphabetical order: the order the key gives.
    assert_eq!(t3, ["tests/store.test.ts", "tests/README.md"]);
    assert_eq!(
        p.tasks[1].facts,
        ["store_class", "store_module", "add_args"]
    );
}

type Edit = fn(&mut Value, &mut Value);

#[test]
fn a_bad_key_is_refused_naming_the_file_and_the_field() {
    let cases: [(&str, Edit, &str, &str); 9] = [
        (
            "say not a string",
            |_, k| k["tasks"]["t1"]["say"] = json!(3),
            "standin.json",
            "tasks.t1.say",
        ),
        (
            "unknown field",
            |_, k| k["tasks"]["t1"]["says"] = json!("x"),
            "standin.json",
            "tasks.t1",
        ),
        (
            "fact without guess",
            |_, k| {
                k["facts"]["store_class"]
                    .as_object_mut()
                    .unwrap()
                    .remove("guess");
            },
            "standin.json",
            "facts.store_class",
        ),
        (
            "unknown fact",
            |_, k| k["tasks"]["t2"]["files"]["src/main.ts"] = json!("{{nope}}"),
            "standin.json",
            "`tasks.t2.files.src/main.ts`: `{{nope}}` names no fact",
        ),
        (
            "bad pattern",
            |_, k| k["facts"]["store_class"]["pattern"] = json!("(unclosed"),
            "standin.json",
            "`facts.store_class.pattern`: the pattern does not compile",
        ),
        (
            "missing group",
            |_, k| k["facts"]["store_class"]["render"] = json!("$2"),
            "standin.json",
            "`facts.store_class.render`: `$2` names a group",
        ),
        (
            "task not in the plan",
            |_, k| k["tasks"]["t9"] = json!({"say": "x"}),
            "standin.json",
            "`tasks.t9`: project.json has no task `t9`",
        ),
        (
            "path outside",
            |_, k| k["tasks"]["t1"]["files"] = json!({"../x.ts": "x"}),
            "standin.json",
            "`tasks.t1.files.../x.ts`: not a relative path",
        ),
        (
            "prompt missing",
            |p, _| {
                p["tasks"][1].as_object_mut().unwrap().remove("prompt");
            },
            "project.json",
            "tasks[1]",
        ),
    ];
    for (what, edit, file, field) in cases {
        let dir = TempDir::new();
        write_project(&dir.0, "demo", edit);
        let err = load_error(&dir.0);
        let path = dir.0.join("demo").join(file);
        assert!(err.contains(&path.display().to_string()), "{what}: {err}");
        assert!(err.contains(field), "{what}: {err}");
    }
}

#[test]
fn a_project_must_answer_every_task_and_be_named_after_its_folder() {
    let dir = TempDir::new();
    write_project(&dir.0, "demo", |_, k| {
        k["tasks"].as_object_mut().unwrap().remove("t2");
    });
    assert!(load_error(&dir.0).contains("task `t2` of project.json has no answer"));
    let dir = TempDir::new();
    write_project(&dir.0, "demo", |p, _| p["name"] = json!("other"));
    assert!(load_error(&dir.0).contains("`name`: the project's name `other`"));
    let dir = TempDir::new();
    assert!(load_error(&dir.0).contains("no folder in it holds a project.json"));
}

#[test]
fn a_prompt_in_two_projects_is_refused() {
    let dir = TempDir::new();
    write_project(&dir.0, "a", |_, _| {});
    write_project(&dir.0, "b", |_, _| {});
    let err = load_error(&dir.0);
    let first = dir.0.join("a/project.json").display().to_string();
    let second = dir.0.join("b/project.json").display().to_string();
    assert!(
        err.contains(&format!("checking {second}: field `tasks[0].prompt`")),
        "{err}"
    );
    assert!(
        err.contains(&format!("the same prompt as task `t1` of {first}")),
        "{err}"
    );
}

fn prompt_of(answers: &Answers, id: &str) -> String {
    let p = answers.project("demo").expect("demo");
    p.tasks
        .iter()
        .find(|t| t.id == id)
        .expect("task")
        .prompt
        .clone()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}]})
}

fn write_use(path: &str, content: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Write",
        "input": {"file_path": path, "content": content}}]})
}

fn write_result() -> Value {
    json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
        "content": "File created successfully"}]})
}

/// What `answers` answers to a request of these messages (and this system prompt).
fn play(answers: &Answers, messages: Vec<Value>, system: &str) -> Option<Play> {
    let body = json!({"system": system, "messages": messages});
    let turn = read_turn(&body);
    let prompt = turn.prompts.last().cloned().unwrap_or_default();
    answers.play(&body, &turn, &prompt)
}

fn written(play: &Play) -> (String, String) {
    match &play.reply {
        Reply::Tool {
            name: "Write",
            input,
        } => (
            input["file_path"].as_str().unwrap_or_default().to_owned(),
            input["content"].as_str().unwrap_or_default().to_owned(),
        ),
        other => panic!("not a Write: {other:?}"),
    }
}

#[test]
fn a_prompt_is_played_from_inside_a_recap_as_the_task_at_hand() {
    let a = demo();
    // Baton's recap quotes the earlier prompts before the task to run now.
    let recap = format!(
        "[baton] This plan continues in a new conversation (session expired). Recap:\n\n\
         Task 1 (id t1):\n  Prompt: {}\n  Result: Added NotebookStore in src/noteStorage.ts\n\n\
         Task 2 (id t2):\n  Prompt: {}\n  Result: done\n\nNow the next task:\n\n  {}  \n",
        prompt_of(&a, "t1"),
        prompt_of(&a, "t2"),
        prompt_of(&a, "t3"),
    );
    let first = play(&a, vec![user(&recap)], "").expect("a task of the key");
    let (path, content) = written(&first);
    assert_eq!(path, "tests/store.test.ts");
    // The recap's result text names the class and its module.
    assert!(
        content.contains("import { NotebookStore } from '../src/noteStorage';"),
        "{content}"
    );
    let records: Vec<(&str, &str, bool)> = first
        .facts
        .iter()
        .map(|r| (r.task.as_str(), r.fact.as_str(), r.found))
        .collect();
    assert_eq!(
        records,
        [
            ("t3", "store_class", true),
            ("t3", "store_module", true),
            ("t3", "add_args", false)
        ]
    );
    // Step 1: the second file; step 2: the closing text. Facts are recorded at step 0 only.
    let msgs = vec![user(&recap), write_use(&path, &content), write_result()];
    let second = play(&a, msgs.clone(), "").expect("step 1");
    assert_eq!(written(&second).0, "tests/README.md");
    assert!(second.facts.is_empty());
    let mut msgs = msgs;
    msgs.extend([write_use("tests/README.md", "x"), write_result()]);
    let last = play(&a, msgs, "").expect("step 2");
    assert_eq!(
        last.reply,
        Reply::Text("Wrote tests/store.test.ts for NotebookStore.".into())
    );
    // Any other prompt is not the key's business.
    assert!(play(&a, vec![user("Create hello.py")], "").is_none());
}

#[test]
fn a_fact_is_found_in_an_earlier_write_and_the_last_match_wins() {
    let a = demo();
    let t1 = "export class NotebookStore {\n  add(text: string, tags: string[]): number { return 1; }\n}\n";
    let messages = vec![
        user(&prompt_of(&a, "t1")),
        write_use("src/noteStorage.ts", t1),
        write_result(),
        json!({"role": "assistant", "content": [{"type": "text", "text": "Done."}]}),
        user(&prompt_of(&a, "t2")),
    ];
    let (_, content) = written(&play(&a, messages.clone(), "").expect("t2"));
    assert_eq!(
        content,
        "import { NotebookStore } from './noteStorage';\n\nconst store = new NotebookStore();\n\
         console.log(store.add(/* text */ 'hello', /* tags */ ['greeting']));\n"
    );
    // A later write renamed the class and moved it: the later names win.
    let mut renamed = messages;
    renamed.insert(4, write_use("src/storage.ts", "export class PadStore {}\n"));
    renamed.insert(5, write_result());
    let (_, content) = written(&play(&a, renamed, "").expect("t2"));
    assert!(
        content.starts_with("import { PadStore } from './storage';"),
        "{content}"
    );
}

#[test]
fn a_fact_is_found_in_a_system_reminder_but_never_in_the_system_prompt() {
    let a = demo();
    let system = "export class SystemStore {} in src/systemStore.ts";
    let p2 = user(&prompt_of(&a, "t2"));
    let guessed = play(&a, vec![p2.clone()], system).expect("t2");
    assert!(written(&guessed)
        .1
        .starts_with("import { NoteStore } from './store';"));
    assert!(guessed.facts.iter().all(|r| !r.found));
    let reminder = json!({"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>src/memoStore.ts: export class MemoStore</system-reminder>"},
        {"type": "text", "text": prompt_of(&a, "t2")}]});
    let found = play(&a, vec![reminder], system).expect("t2");
    assert!(written(&found)
        .1
        .starts_with("import { MemoStore } from './memoStore';"));
}

#[test]
fn placeholders_are_names_in_double_braces_only() {
    let t = Template::parse("a {{x}} {{}} {{ y }} {{z}}} {{{w}} end");
    assert_eq!(t.facts().collect::<Vec<_>>(), ["x", "z", "w"]);
    assert_eq!(t.fill(|n| n.to_uppercase()), "a X {{}} {{ y }} Z} {W end");
}

#[test]
fn render_fills_groups_and_leaves_other_dollars() {
    let re = regex::Regex::new(r"fn (\w+)\((\w+)?\)").unwrap();
    let caps = re.captures("fn go()").unwrap();
    assert_eq!(
        facts::expand("$1($2) $0 $$ $1a $", &caps),
        "go() $0 $$ goa $"
    );
    assert_eq!(facts::highest_group("$1 and $9 but $0"), 9);
}

#[test]
fn rendering_with_and_without_the_earlier_tasks() {
    let a = demo();
    let all = TempDir::new();
    let records = render(&a, "demo", Knowing::All, &all.0).expect("render all");
    let main = std::fs::read_to_string(all.0.join("src/main.ts")).expect("main.ts");
    assert!(
        main.starts_with("import { NotebookStore } from './noteStorage';"),
        "{main}"
    );
    assert!(all.0.join("src/noteStorage.ts").is_file());
    let test = std::fs::read_to_string(all.0.join("tests/store.test.ts")).expect("test");
    assert!(
        test.contains("add(/* text */ 'hello', /* tags */ ['greeting'])"),
        "{test}"
    );
    assert!(records.iter().all(|r| r.found), "{records:?}");
    assert_eq!(records.len(), 3 + 3);

    let none = TempDir::new();
    let records = render(&a, "demo", Knowing::None, &none.0).expect("render none");
    let main = std::fs::read_to_string(none.0.join("src/main.ts")).expect("main.ts");
    assert!(
        main.starts_with("import { NoteStore } from './store';"),
        "{main}"
    );
    assert!(main.contains("store.add('hello')"), "{main}");
    assert!(records.iter().all(|r| !r.found), "{records:?}");
    assert!(matches!(
        render(&a, "nope", Knowing::All, &none.0),
        Err(render::RenderError::UnknownProject(_))
    ));
}

#[test]
fn a_later_write_of_a_path_replaces_the_earlier_one() {
    let dir = TempDir::new();
    write_project(&dir.0, "demo", |_, k| {
        k["tasks"]["t3"]["files"] = json!({"src/main.ts": "rewritten by t3\n"});
        k["tasks"]["t3"]["say"] = json!("done");
    });
    let a = Answers::load(&dir.0).expect("load");
    let out = TempDir::new();
    render(&a, "demo", Knowing::All, &out.0).expect("render");
    let main = std::fs::read_to_string(out.0.join("src/main.ts")).expect("main.ts");
    assert_eq!(main, "rewritten by t3\n");
}

#[test]
fn a_tool_use_is_read_as_its_values_not_as_escaped_json() {
    let fact = |pattern: &str| facts::Fact {
        pattern: regex::Regex::new(pattern).unwrap(),
        render: "$1".into(),
        guess: "none".into(),
    };
    let body = json!({"messages": [write_use("src/a.py", "from \"lib\" import x\n\tdef go():\n")]});
    let c = facts::Conversation::of_request(&body);
    // Quotes, tabs and line ends as written; the path on a line before the content.
    assert_eq!(c.resolve(&fact(r#"from "(\w+)" import"#)).value, "lib");
    assert_eq!(c.resolve(&fact(r"(?m)^\tdef (\w+)\(")).value, "go");
    assert_eq!(c.resolve(&fact(r"(?m)^src/(\w+)\.py\nfrom")).value, "a");
}

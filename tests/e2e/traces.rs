//! OpenTelemetry traces end to end: two workers export to a real OTLP/HTTP receiver (protobuf,
//! decoded with `opentelemetry-proto`), a plan is handed from one to the other after every
//! task, and the spans both sent form one trace: plan root → hold → task → attempt, with the
//! baton attributes; every CLI run's `TRACEPARENT` (read from its environment in /proc) is
//! its attempt's span; `task_started`, `baton status` and the dashboard give the same trace id.
//! Run in the default (warm) session mode: the mode does not change what is traced.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_core::event::EventBody;
use baton_tests::otlp::{tree, Receiver, Span};
use baton_tests::*;
use serde_json::Value;

/// The `TRACEPARENT` of every process that runs with `CLAUDE_CODE_PROPAGATE_TRACEPARENT=1`
/// (the CLI runs of the workers, in their boxes or not), looked for in /proc until stopped.
struct CliEnvWatch {
    seen: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The `TRACEPARENT` of a process environment, when it propagates it and its CLI config dir is
/// under `dir` (this test's pool: tests run side by side).
fn traceparent_of(environ: &[u8], dir: &[u8]) -> Option<String> {
    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    let ours = vars.iter().any(|v| {
        v.strip_prefix(b"CLAUDE_CONFIG_DIR=")
            .is_some_and(|d| d.starts_with(dir))
    });
    let propagates = ours
        && vars
            .iter()
            .any(|v| *v == b"CLAUDE_CODE_PROPAGATE_TRACEPARENT=1");
    let tp = vars.iter().find_map(|v| v.strip_prefix(b"TRACEPARENT="))?;
    propagates.then(|| String::from_utf8_lossy(tp).into_owned())
}

impl CliEnvWatch {
    fn start(pool: &Pool) -> Self {
        let dir = pool.dir.path().as_os_str().as_encoded_bytes().to_vec();
        let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    if let Ok(env) = std::fs::read(entry.path().join("environ")) {
                        if let Some(tp) = traceparent_of(&env, &dir) {
                            s.lock().expect("not poisoned").insert(tp);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen.lock().expect("not poisoned").clone()
    }
}

/// The spans named `name`.
fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Waits until the receiver holds at least `n` spans named `name`.
async fn wait_spans(r: &Receiver, name: &str, n: usize) -> anyhow::Result<Vec<Span>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let spans = r.spans();
        if named(&spans, name).len() >= n {
            return Ok(spans);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "only {} {name} spans arrived:\n{}",
            named(&spans, name).len(),
            tree(&spans)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the nesting plan → hold → task → attempt and the attributes; returns the spans by id.
fn check_tree<'a>(spans: &'a [Span], plan: &str, tasks: usize) -> HashMap<&'a str, &'a Span> {
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let parent = |s: &Span| by_id.get(s.parent_id.as_str()).map(|p| p.name.as_str());
    let roots = named(spans, "plan");
    assert_eq!(roots.len(), 1, "one root span:\n{}", tree(spans));
    assert_eq!(roots[0].parent_id, "", "the root has no parent");
    assert_eq!(roots[0].attr("baton.plan_id"), Some(plan));
    for h in named(spans, "hold") {
        assert_eq!(
            h.parent_id, roots[0].span_id,
            "every hold is the root's child"
        );
        assert_eq!(h.attr("baton.plan_id"), Some(plan));
    }
    let task_spans = named(spans, "task");
    assert_eq!(task_spans.len(), tasks, "{}", tree(spans));
    for t in &task_spans {
        assert_eq!(parent(t), Some("hold"), "a task's parent is its hold");
        assert_eq!(t.attr("baton.plan_id"), Some(plan));
        assert!(t.attr("baton.task_id").is_some() && t.attr("baton.task_index").is_some());
    }
    let indexes: BTreeSet<&str> = task_spans
        .iter()
        .filter_map(|t| t.attr("baton.task_index"))
        .collect();
    assert_eq!(indexes, ["0", "1", "2"].into_iter().collect());
    for a in named(spans, "attempt") {
        let task = by_id[a.parent_id.as_str()];
        assert_eq!(task.name, "task", "an attempt's parent is its task");
        assert_eq!(a.attr("baton.task_id"), task.attr("baton.task_id"));
        assert_eq!(a.attr("baton.task_index"), task.attr("baton.task_index"));
        assert_eq!(a.attr("baton.attempt"), Some("1"));
    }
    for c in named(spans, "commit") {
        assert_eq!(parent(c), Some("task"), "a commit is its task's child");
    }
    // The git steps of a plan with a repository, in each attempt; a worker's first checkout
    // fetches into its empty mirror.
    for step in ["git.checkout", "git.checkpoint", "git.push"] {
        let steps = named(spans, step);
        assert_eq!(steps.len(), tasks, "{step}:\n{}", tree(spans));
        assert!(steps.iter().all(|s| parent(s) == Some("attempt")), "{step}");
    }
    let fetches = named(spans, "git.fetch");
    assert!(!fetches.is_empty(), "{}", tree(spans));
    assert!(fetches.iter().all(|s| parent(s) == Some("git.checkout")));
    assert_eq!(
        named(spans, "restore").len(),
        tasks - 1,
        "every task after the first restores"
    );
    by_id
}

/// Two workers, a plan handed between them after every task: one trace across both.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_handed_between_two_workers_is_one_trace() -> anyhow::Result<()> {
    let receiver = Receiver::start().await?;
    let mut pool = Pool::start()?;
    for m in ["a", "b"] {
        let mut opts = pool.machine(m, 1);
        opts.extra.extend([
            "--max-tasks-per-hold".into(),
            "1".into(),
            "--otlp-endpoint".into(),
            receiver.base_url.clone(),
        ]);
        // Export every few hundred ms (the SDK's batch delay), not every 5 s.
        opts.env
            .push(("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()));
        pool.add_worker(&opts)?;
    }
    let remote = BareRepo::in_folder(pool.dir.path())?;
    let watch = CliEnvWatch::start(&pool);
    let plan = plan_id("traced");
    let prompts: Vec<String> = (1..=3)
        .map(|k| {
            format!("Step MARK-{k}.\nFile: f{k}.txt\n```\ntask {k}\n```\n[[standin:sleep 300]]")
        })
        .collect();
    let tasks: Vec<(String, &str)> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("t{}", i + 1), p.as_str()))
        .collect();
    let tasks: Vec<(&str, &str)> = tasks.iter().map(|(i, p)| (i.as_str(), *p)).collect();
    let repo = serde_json::json!({"url": remote.url()});
    pool.submit(&doc("traced").tasks(&tasks).repo(repo).json())
        .await?;
    pool.wait_state(&plan, &[PlanState::Completed], Duration::from_secs(180))
        .await?;
    let cli_traceparents = watch.finish();
    let results = pool.results(&plan).await?;
    assert_eq!(results.len(), tasks.len(), "every task committed once");
    assert!(
        results.windows(2).all(|w| w[0].worker != w[1].worker),
        "the plan moved between the workers after every task"
    );
    let spans = wait_spans(&receiver, "attempt", 3).await?;
    let spans = wait_spans(&receiver, "hold", 3).await.unwrap_or(spans);
    println!("{}", tree(&spans));

    // One trace, from both workers.
    let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(
        traces.len(),
        1,
        "one trace id across both workers:\n{}",
        tree(&spans)
    );
    let trace_id = spans[0].trace_id.clone();
    let workers: BTreeSet<&str> = named(&spans, "hold")
        .iter()
        .filter_map(|h| h.resource.get("baton.worker_id").map(String::as_str))
        .collect();
    assert_eq!(workers.len(), 2, "holds on both workers: {workers:?}");
    assert!(spans
        .iter()
        .all(|s| s.resource.get("service.name").map(String::as_str) == Some("baton-worker")));
    let by_id = check_tree(&spans, "traced", tasks.len());

    // Each CLI run's TRACEPARENT is its attempt's span.
    let attempts: BTreeSet<String> = named(&spans, "attempt")
        .iter()
        .map(|a| format!("00-{}-{}-01", a.trace_id, a.span_id))
        .collect();
    assert!(
        cli_traceparents.len() >= tasks.len(),
        "saw the CLI runs' TRACEPARENT: {cli_traceparents:?}"
    );
    for tp in &cli_traceparents {
        assert!(
            attempts.contains(tp),
            "{tp} is an attempt's span: {attempts:?}"
        );
        let span = tp.split('-').nth(2).expect("a span id");
        assert_eq!(by_id[span].name, "attempt");
    }

    // The trace id in the events, the plan hash, `baton status` and the dashboard.
    let events = pool.events(&plan).await?;
    let started: Vec<Option<String>> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::TaskStarted(s) => Some(s.trace_id.clone()),
            _ => None,
        })
        .collect();
    assert!(started.len() >= tasks.len());
    assert!(
        started
            .iter()
            .all(|t| t.as_deref() == Some(trace_id.as_str())),
        "{started:?}"
    );
    let stored = pool
        .plan_field(&plan, PlanField::Trace)
        .await?
        .unwrap_or_default();
    assert!(stored.starts_with(&format!("00-{trace_id}-")), "{stored}");
    let out = baton(&pool.redis, &["status", "traced", "--json"], None)?;
    let status: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["trace_id"], trace_id.as_str());
    let text = String::from_utf8(baton(&pool.redis, &["status", "traced"], None)?.stdout)?;
    assert!(text.contains(&format!("trace      {trace_id}")), "{text}");
    let (_dash, url) = pool.start_dashboard(None)?;
    let page = reqwest::get(format!("{url}/plans/traced"))
        .await?
        .text()
        .await?;
    assert!(page.contains(&trace_id), "the plan page shows the trace id");
    Ok(())
}

/// With no endpoint, nothing is exported and the plan gets no trace.
#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_a_plan_has_no_trace() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let watch = CliEnvWatch::start(&pool);
    let plan = plan_id("untraced");
    pool.submit(&doc("untraced").tasks(&[("t1", "Only MARK-1")]).json())
        .await?;
    pool.wait_state(&plan, &[PlanState::Completed], Duration::from_secs(120))
        .await?;
    assert!(watch.finish().is_empty(), "no CLI run got a TRACEPARENT");
    assert_eq!(pool.plan_field(&plan, PlanField::Trace).await?, None);
    let events = pool.events(&plan).await?;
    let trace_ids: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::TaskStarted(s) => Some(s.trace_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(trace_ids, [None], "one task started, with no trace id");
    Ok(())
}

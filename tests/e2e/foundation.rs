//! The foundation: plans run in order through one resumed session on a pool of workers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use baton_core::{Event, EventKind};
use baton_producer::exit;
use baton_tests::*;
use futures_util::StreamExt;

/// 3 worker processes x concurrency 2, 20 plans x 5 tasks: every task once, in order, with
/// exactly its own plan's earlier prompts in context, a session record with a bounded TTL,
/// and each plan's events in task order on the channel.
#[tokio::test(flavor = "multi_thread")]
async fn pool_runs_many_plans_in_order_with_their_own_context() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let channel = pool.redis.url();
    load_case(&mut pool, &channel, || Ok(())).await
}

/// The load case on `pool` (any deployment): listens on `listen_url` (a single server's URL;
/// on a Cluster any node forwards every message), and runs `midway` once a quarter of the
/// plans have completed (a fault to inject).
pub(crate) async fn load_case(
    pool: &mut Pool,
    listen_url: &str,
    midway: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    const PLANS: usize = 20;
    const TASKS: usize = 5;
    const TTL: i64 = 900;
    let mut midway = Some(midway);
    for i in 0..3 {
        let mut m = pool.machine(&format!("w{i}"), 2);
        m.extra.extend(["--session-ttl".into(), TTL.to_string()]);
        pool.add_worker(&m)?;
    }
    // Listen before submitting, as a user watching the channel would.
    let client = redis::Client::open(listen_url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(pool.keys.channel()).await?;
    let plans: Vec<String> = (0..PLANS).map(|i| format!("load-{i:02}")).collect();
    for p in &plans {
        pool.submit(&marked_plan(p, TASKS)).await?;
    }
    let mut seen: HashMap<String, Vec<Event>> = HashMap::new();
    let mut done = 0;
    let mut stream = pubsub.on_message();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while done < PLANS {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await?
            .expect("channel open");
        let ev = pool::strict_event(&msg.get_payload::<String>()?)?;
        if ev.kind() == EventKind::PlanCompleted {
            done += 1;
            if done >= PLANS / 4 {
                if let Some(fault) = midway.take() {
                    fault()?;
                }
            }
        }
        seen.entry(
            ev.plan_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        )
        .or_default()
        .push(ev);
    }
    drop(stream);

    let requests = pool.standin.requests()?;
    let mut conn = pool.conn().await?;
    for p in &plans {
        // Every task committed exactly once, in plan order, in one session.
        let results = pool.results(&plan_id(p)).await?;
        let ids: Vec<&str> = results.iter().map(|r| r.task_id.as_str()).collect();
        let want: Vec<String> = (1..=TASKS).map(|k| format!("t{k}")).collect();
        assert_eq!(ids, want, "plan {p} results");
        let sessions: std::collections::HashSet<String> =
            results.iter().map(|r| r.session_id.to_string()).collect();
        assert_eq!(sessions.len(), 1, "plan {p} used one session: {sessions:?}");

        // Task k's first request carried tasks 1..k-1 of this plan and nothing of another plan.
        for k in 1..=TASKS {
            let req = first_request_with(&requests, &format!("{p}-T{k}"))
                .unwrap_or_else(|| panic!("no request for {p}-T{k}"));
            let prompts = prompts_of(req);
            let markers: Vec<String> = prompts
                .iter()
                .filter_map(|t| t.split("Task marker ").nth(1))
                .map(|s| s.split(':').next().unwrap_or("").to_owned())
                .collect();
            let expect: Vec<String> = (1..=k).map(|j| format!("{p}-T{j}")).collect();
            assert_eq!(markers, expect, "context of {p} task {k}");
        }

        // The session record lives, with a TTL no longer than configured.
        let ttl: i64 = redis::AsyncCommands::ttl(&mut conn, pool.keys.session(&p.parse()?)).await?;
        assert!(ttl > 0 && ttl <= TTL, "session TTL of {p} is {ttl}");

        // Events of this plan arrived in task order.
        let evs = &seen[p];
        let order: Vec<u64> = evs
            .iter()
            .filter(|e| e.kind() == EventKind::TaskSucceeded)
            .filter_map(|e| e.task_index)
            .collect();
        assert_eq!(
            order,
            (0..TASKS as u64).collect::<Vec<_>>(),
            "succeeded events of {p}"
        );
        let started: Vec<u64> = evs
            .iter()
            .filter(|e| e.kind() == EventKind::TaskStarted)
            .filter_map(|e| e.task_index)
            .collect();
        assert!(
            started.len() >= TASKS,
            "a start per task of {p} at least: {started:?}"
        );
        assert!(
            started.windows(2).all(|w| w[0] <= w[1]),
            "started events of {p} in order: {started:?}"
        );
        let seqs: Vec<u64> = evs.iter().filter_map(|e| e.seq).collect();
        assert_eq!(
            seqs.len(),
            evs.len(),
            "every stored event of {p} has its seq"
        );
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "seq of {p} increases: {seqs:?}"
        );
        assert_eq!(evs.last().map(|e| e.kind()), Some(EventKind::PlanCompleted));
    }
    // All three workers took part.
    let workers: std::collections::HashSet<String> = plans
        .iter()
        .flat_map(|p| {
            seen[p]
                .iter()
                .filter_map(|e| e.worker.as_ref().map(ToString::to_string))
        })
        .collect();
    assert!(
        workers.len() >= 3,
        "work spread over the workers: {workers:?}"
    );
    assert_eq!(
        pool.stat(Counter::TasksSucceeded).await?,
        (PLANS * TASKS) as i64
    );
    Ok(())
}

/// Any Redis client can submit: a plain `redis-cli LPUSH` plan runs to the end.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_pushed_with_redis_cli_runs() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    // The second prompt looks like a flag: it must reach the model as text.
    let doc = r#"{"plan_id":"from-cli","tasks":[{"prompt":"Write it.\nFile: hello.txt\n```\nhello\n```\n"},{"prompt":"--help me summarize"}]}"#;
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &pool.redis.port.to_string(),
            "LPUSH",
            &pool.keys.submit(),
            doc,
        ])
        .output()?;
    assert!(
        out.status.success(),
        "redis-cli: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pool.wait_state(
        &plan_id("from-cli"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let file = pool.dir.path().join("workspaces/from-cli/hello.txt");
    assert_eq!(
        std::fs::read_to_string(&file)?,
        "hello\n",
        "the CLI wrote the file in the plan's workspace"
    );
    assert_eq!(pool.results(&plan_id("from-cli")).await?.len(), 2);
    let requests = pool.standin.requests()?;
    let req = first_request_with(&requests, "--help me summarize")
        .expect("the flag-like prompt reached the model");
    assert_eq!(
        prompts_of(req).last().map(String::as_str),
        Some("--help me summarize")
    );
    Ok(())
}

/// A follow-up document for a finished plan continues the same conversation; `baton enqueue
/// --wait` follows it to the end and `baton status` shows it.
#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_continues_the_same_session() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let first =
        r#"{"plan_id":"follow","tasks":[{"id":"a","prompt":"Task marker FOLLOW-1: begin."}]}"#;
    let out = baton(&pool.redis, &["enqueue", "--wait", "-"], Some(first))?;
    assert!(
        out.status.success(),
        "enqueue --wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next(),
        Some("follow")
    );
    let second =
        r#"{"plan_id":"follow","tasks":[{"id":"b","prompt":"Task marker FOLLOW-2: go on."}]}"#;
    let out = baton(&pool.redis, &["enqueue", "--wait", "-"], Some(second))?;
    assert!(
        out.status.success(),
        "follow-up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("task_succeeded") && stdout.contains("plan_completed"),
        "{stdout}"
    );

    let results = pool.results(&plan_id("follow")).await?;
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].session_id, results[1].session_id,
        "same session id"
    );
    let requests = pool.standin.requests()?;
    let req = first_request_with(&requests, "FOLLOW-2").expect("follow-up reached the model");
    assert!(
        prompts_of(req).iter().any(|p| p.contains("FOLLOW-1")),
        "the follow-up carried the first task's prompt"
    );

    let out = baton(&pool.redis, &["status", "follow", "--json"], None)?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["state"], "completed");
    assert_eq!(status["tasks_done"], 2);
    assert_eq!(
        status["session"]["session_id"].as_str(),
        Some(results[0].session_id.to_string().as_str())
    );
    assert!(status["session_ttl_secs"].as_i64().unwrap_or(0) > 0);
    Ok(())
}

/// Malformed documents are kept on the dead-letter list with a reason naming the field, an
/// error event is published for each, and the pool keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_documents_are_dead_lettered_and_the_pool_keeps_serving() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let client = redis::Client::open(pool.redis.url())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(pool.keys.channel()).await?;
    let bad: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        ("not json", ("this is not json", "document")),
        ("no tasks", (r#"{"plan_id":"bad-1"}"#, "tasks")),
        (
            "empty prompt",
            (
                r#"{"plan_id":"bad-2","tasks":[{"prompt":"  "}]}"#,
                "tasks[0].prompt",
            ),
        ),
        (
            "outside root",
            (
                r#"{"plan_id":"bad-3","workspace":"../../etc","tasks":[{"prompt":"x"}]}"#,
                "workspace",
            ),
        ),
    ]);
    for (doc, _) in bad.values() {
        pool.submit(doc).await?;
    }
    pool.submit(&marked_plan("good-after-bad", 1)).await?;
    pool.wait_state(
        &plan_id("good-after-bad"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;

    let letters = pool.dead_letters().await?;
    assert_eq!(letters.len(), bad.len(), "{letters:#?}");
    for (name, (doc, field)) in &bad {
        let l = letters
            .iter()
            .find(|l| l.document.as_deref() == Some(*doc))
            .unwrap_or_else(|| panic!("{name} kept with its document"));
        assert_eq!(l.field.as_deref(), Some(*field), "{name}: {}", l.reason);
        assert!(
            l.reason.starts_with(field),
            "{name}: reason names the field: {}",
            l.reason
        );
    }
    let mut stream = pubsub.on_message();
    let mut rejected = 0;
    while rejected < bad.len() {
        let msg = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await?
            .expect("open");
        let ev = pool::strict_event(&msg.get_payload::<String>()?)?;
        if ev.kind() == EventKind::SubmissionRejected {
            let r = body!(ev, SubmissionRejected);
            assert!(!r.dead_letter_id.is_empty() && !r.reason.is_empty());
            rejected += 1;
        }
    }
    assert_eq!(
        pool.stat(Counter::SubmissionsRejected).await?,
        bad.len() as i64
    );
    // `baton dead` shows them to a person.
    let out = baton(&pool.redis, &["dead"], None)?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        bad.len()
    );
    Ok(())
}

/// `baton enqueue` validates locally: a bad document never reaches Redis, and the error names
/// the field.
#[tokio::test(flavor = "multi_thread")]
async fn enqueue_refuses_a_bad_document_naming_the_field() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let out = baton(
        &redis,
        &["enqueue", "-"],
        Some(r#"{"tasks":[{"prompt":"ok"},{"prompt":""}]}"#),
    )?;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT.into()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tasks[1].prompt"), "{err}");
    let mut c = redis.conn().await?;
    let n: i64 = redis::AsyncCommands::llen(&mut c, baton_core::Keys::default().submit()).await?;
    assert_eq!(n, 0);
    Ok(())
}

/// Issue 18, parts 6 and 8: hostile documents through Redis to a real worker (its defaults: no
/// MCP command or remote host allowed). Each is dead-lettered with its field named, and a good
/// plan with typed grants runs after them.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_documents_are_dead_lettered_naming_the_field() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let task = r#""tasks":[{"prompt":"x"}]"#;
    let long_prompt = "a".repeat(baton_core::plan::MAX_APPEND_SYSTEM_PROMPT_BYTES + 1);
    let forged = format!("{{\"plan_id\":\"h-tag\",{task}}}");
    // (name, submitted, kept on the dead letter, field)
    let bad: Vec<(&str, String, String, &str)> = [
        ("trailing", format!("{{\"plan_id\":\"h-1\",{task}}} garbage"), "document"),
        ("two values", format!("{{\"plan_id\":\"h-2\",{task}}}{{{task}}}"), "document"),
        ("array", r#"[null,null,[{"prompt":"x"}]]"#.to_owned(), "document"),
        (
            "absolute read",
            format!("{{\"plan_id\":\"h-3\",{task},\"options\":{{\"allowed_tools\":[\"Read\",\"Write\",\"Read(//etc/**)\"]}}}}"),
            "options.allowed_tools[2]",
        ),
        (
            "split grant",
            format!("{{\"plan_id\":\"h-4\",{task},\"options\":{{\"allowed_tools\":[\"Read Bash\"]}}}}"),
            "options.allowed_tools[0]",
        ),
        (
            "mcp command",
            format!("{{\"plan_id\":\"h-5\",{task},\"options\":{{\"mcp_config\":{{\"mcpServers\":{{\"sh\":{{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"id\"]}}}}}}}}}}"),
            "options.mcp_config.mcpServers.sh.command",
        ),
        (
            "mcp host",
            format!("{{\"plan_id\":\"h-6\",{task},\"options\":{{\"mcp_config\":{{\"mcpServers\":{{\"meta\":{{\"type\":\"http\",\"url\":\"http://169.254.169.254/\"}}}}}}}}}}"),
            "options.mcp_config.mcpServers.meta.url",
        ),
        (
            "ssh option host",
            format!("{{\"plan_id\":\"h-7\",{task},\"repo\":{{\"url\":\"ssh://-oProxyCommand=touch%20x/r.git\"}}}}"),
            "repo.url",
        ),
        (
            "bidi branch",
            format!("{{\"plan_id\":\"h-8\",{task},\"repo\":{{\"url\":\"/r.git\",\"branch\":\"main\\u202e\"}}}}"),
            "repo.branch",
        ),
        (
            "long system prompt",
            format!("{{\"plan_id\":\"h-9\",{task},\"options\":{{\"append_system_prompt\":\"{long_prompt}\"}}}}"),
            "options.append_system_prompt",
        ),
    ]
    .into_iter()
    .map(|(name, doc, field)| (name, doc.clone(), doc, field))
    .chain([(
        "client tag",
        format!("baton-tag:5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11\n{forged}"),
        forged.clone(),
        "document",
    )])
    .collect();
    for (_, doc, _, _) in &bad {
        pool.submit(doc).await?;
    }
    let good = r#"{"plan_id":"good-grants","tasks":[{"prompt":"Task marker good-grants-T1: step 1 of the plan."}],
        "options":{"allowed_tools":["Read","Write","Edit(src/**)","mcp__none__*"],"disallowed_tools":["WebFetch(domain:example.com)"]}}"#;
    pool.submit(good).await?;
    pool.wait_state(
        &plan_id("good-grants"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;

    let letters = pool.dead_letters().await?;
    assert_eq!(letters.len(), bad.len(), "{letters:#?}");
    for (name, _, kept, field) in &bad {
        let l = letters
            .iter()
            .find(|l| l.document.as_deref() == Some(kept.as_str()))
            .unwrap_or_else(|| panic!("{name} kept with its document"));
        assert_eq!(l.field.as_deref(), Some(*field), "{name}: {}", l.reason);
        assert!(
            l.reason.starts_with(field),
            "{name}: reason names the field: {}",
            l.reason
        );
    }
    let tag = letters
        .iter()
        .find(|l| l.document.as_deref() == Some(forged.as_str()))
        .expect("the tagged document");
    assert!(tag.reason.contains("ingest tag"), "{}", tag.reason);
    let limit = letters
        .iter()
        .find(|l| l.field.as_deref() == Some("options.append_system_prompt"))
        .expect("the long system prompt");
    assert!(
        limit
            .reason
            .contains(&baton_core::plan::MAX_APPEND_SYSTEM_PROMPT_BYTES.to_string()),
        "{}",
        limit.reason
    );
    Ok(())
}

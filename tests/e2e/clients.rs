//! Clients in other languages, installed from their registries by `scripts/test.sh` into
//! `.tools/` (redis-py, ioredis): the examples in `examples/` enqueue a plan with one LPUSH and
//! follow its events to the end, against a real worker.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use baton_tests::*;

/// How to run each example client.
fn clients() -> [(&'static str, Command); 2] {
    let root = repo_root();
    let mut python = Command::new("python3");
    python
        .arg(root.join("examples/python/baton_client.py"))
        .env("PYTHONPATH", root.join(".tools/python"));
    let mut node = Command::new("node");
    node.arg(root.join("examples/node/baton_client.js"))
        .env("NODE_PATH", root.join(".tools/node/node_modules"));
    [("python", python), ("node", node)]
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_node_clients_run_plans_to_their_end() -> anyhow::Result<()> {
    for lib in [".tools/python/redis", ".tools/node/node_modules/ioredis"] {
        let p: PathBuf = repo_root().join(lib);
        anyhow::ensure!(
            p.exists(),
            "{} is missing: scripts/test.sh installs it",
            p.display()
        );
    }
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 2))?;
    pool.standin
        .control(serde_json::json!({"fail_status": 400, "match": "CLIENT-BAD-REQUEST"}))?;
    for (lang, mut client) in clients() {
        for (plan, prompt, want) in [
            (format!("{lang}-ok"), "Say hello.", 0),
            (format!("{lang}-bad"), "Refused CLIENT-BAD-REQUEST.", 1),
        ] {
            let file = pool.dir.path().join(format!("{plan}.json"));
            std::fs::write(&file, doc(&plan).prompts(&[prompt, "Then this."]).json())?;
            let out = client
                .arg(&file)
                .arg("--redis-url")
                .arg(pool.redis.url())
                .output()?;
            // Each run adds its arguments: rebuild the command for the next plan.
            client = clients()
                .into_iter()
                .find(|(l, _)| *l == lang)
                .map(|(_, c)| c)
                .expect("the same client");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(want),
                "{lang} {plan}: {stdout}\n{stderr}"
            );
            assert_eq!(
                stdout.lines().next(),
                Some(plan.as_str()),
                "{lang}: the plan id first"
            );
            let end = if want == 0 {
                "plan_completed"
            } else {
                "plan_failed"
            };
            assert!(stdout.contains(end), "{lang} {plan}: {stdout}");
            let state = pool
                .wait_state(
                    &plan_id(&plan),
                    &[PlanState::Completed, PlanState::Failed],
                    Duration::from_secs(30),
                )
                .await?;
            assert_eq!(
                state,
                if want == 0 {
                    PlanState::Completed
                } else {
                    PlanState::Failed
                }
            );
        }
    }
    Ok(())
}

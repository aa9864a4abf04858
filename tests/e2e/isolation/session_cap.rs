//! A plan that makes its session's files large, tried as an attacker would: the session folder
//! is writable from the box and the worker packs it at every commit, so a task can leave
//! hundreds of MB there. The worker's `--max-transcript-size` fails such a task with both
//! sizes named and nothing of its turn committed, while another plan on the same worker (of
//! one runtime thread) keeps running.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use baton_core::{Event, EventKind};
use baton_tests::*;
use serde_json::json;

fn at(e: &Event) -> SystemTime {
    humantime::parse_rfc3339_weak(&e.at).expect("event times are RFC 3339")
}

/// A `Bash:` line that writes `bytes` random bytes into the session's own folder (next to its
/// transcript, where the CLI keeps saved tool results), as `name`.
fn pad_session(name: &str, bytes: u64) -> String {
    format!(
        "Bash: d=$(ls -d $CLAUDE_CONFIG_DIR/projects/*/ | head -1)$CLAUDE_CODE_SESSION_ID && mkdir -p $d/tool-results && head -c {bytes} /dev/urandom > $d/tool-results/{name} && echo PADDED-{name}\n"
    )
}

/// The first task leaves 6 MB in the session's folder (under the 8 MiB cap: packed and
/// committed, off the runtime's thread); the second adds 6 MB more and fails at once with
/// `task_failed` naming the cap and the size, `plan_failed` and a dead letter; what Redis keeps
/// is the first task's. Meanwhile a plan of slow tasks on the same worker runs on to the end,
/// in order, never retried or handed over.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_fills_its_session_past_the_cap_fails_and_others_run_on() -> anyhow::Result<()>
{
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 2);
    m.extra
        .extend(["--max-transcript-size", "8MiB", "--threads", "1"].map(String::from));
    let steady: Vec<String> = (1..=8)
        .map(|i| format!("Steady step {i}. [[standin:sleep 1500]]"))
        .collect();
    let steady_refs: Vec<&str> = steady.iter().map(String::as_str).collect();
    pool.submit(&doc("steady").prompts(&steady_refs).json())
        .await?;
    let hostile = doc("fills-session")
        .options(json!({"allowed_tools": ["Bash"]}))
        .prompts(&[
            &pad_session("first.bin", 6_000_000),
            &pad_session("second.bin", 6_000_000),
            "A third task that never runs.",
        ]);
    pool.submit(&hostile.json()).await?;
    pool.add_worker(&m)?;
    let (steady_id, hostile_id) = (plan_id("steady"), plan_id("fills-session"));
    pool.wait_state(&hostile_id, &[PlanState::Failed], Duration::from_secs(120))
        .await?;
    let failed_ev = pool
        .wait_event(&hostile_id, EventKind::TaskFailed, Duration::from_secs(5))
        .await?;
    let failed = body!(failed_ev, TaskFailed);
    assert_eq!(failed.attempts.len(), 1, "not retried: {failed:?}");
    for says in [
        "--max-transcript-size of 8 MiB",
        "MiB (its transcript",
        "nothing of this task was committed",
    ] {
        assert!(failed.reason.contains(says), "{says:?} not in {failed:?}");
    }
    assert_eq!(failed_ev.task_index, Some(1), "the second task failed");
    let dead = pool
        .wait_dead_letter(&hostile_id, Duration::from_secs(5))
        .await?;
    assert!(dead.reason.contains("--max-transcript-size"), "{dead:?}");
    // Nothing half-committed: one result, and the stored transcript is the first task's.
    let results = pool.results(&hostile_id).await?;
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        results[0].result.contains("PADDED-first.bin"),
        "{results:?}"
    );
    let mut conn = pool.conn().await?;
    let base: usize = redis::cmd("STRLEN")
        .arg(pool.keys.transcript(&hostile_id))
        .query_async(&mut conn)
        .await?;
    let chunks: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(pool.keys.transcript_chunks(&hostile_id))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await?;
    let stored = base + chunks.iter().map(Vec::len).sum::<usize>();
    assert!(
        (6_000_000..8 << 20).contains(&stored),
        "Redis keeps the first task's session ({stored} bytes)"
    );
    // The other plan ran alongside and on, to its end.
    pool.wait_state(
        &steady_id,
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let steady_results = pool.results(&steady_id).await?;
    assert_eq!(steady_results.len(), 8);
    let events = pool.events(&steady_id).await?;
    for kind in [
        EventKind::TaskRetrying,
        EventKind::SessionHandoff,
        EventKind::SessionFallback,
    ] {
        assert!(
            !events.iter().any(|e| e.kind() == kind),
            "the steady plan had a {kind}: {events:?}"
        );
    }
    let first = events
        .iter()
        .find(|e| e.kind() == EventKind::TaskStarted)
        .context("a task started")?;
    let done = events
        .iter()
        .find(|e| e.kind() == EventKind::PlanCompleted)
        .context("completed")?;
    let hostile_failed = at(&failed_ev);
    assert!(
        at(first) < hostile_failed && hostile_failed < at(done),
        "the steady plan ran while the hostile one failed"
    );
    assert!(
        !pool.log_tail().contains("lease lost"),
        "{}",
        pool.log_tail()
    );
    Ok(())
}

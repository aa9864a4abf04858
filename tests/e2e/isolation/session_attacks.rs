//! A plan's session folder turned against the worker's packing of it, as an attacker would:
//! the folder beside the transcript is writable from the box, and the worker reads it at
//! every commit. A file there the worker cannot open must fail the task with a clear error and
//! keep what was committed (committing no transcript instead deletes the stored one), and a
//! folder of very many empty files is refused by the cap.

use std::time::Duration;

use baton_core::EventKind;
use baton_tests::*;
use serde_json::json;

/// The shell's path to the session's folder (beside its transcript), as `$d`.
const SESSION_DIR: &str =
    "d=$(ls -d $CLAUDE_CONFIG_DIR/projects/*/ | head -1)$CLAUDE_CODE_SESSION_ID";

/// Stored bytes of the plan's transcript (base and chunks).
async fn stored_transcript(pool: &Pool, plan: &PlanId) -> anyhow::Result<usize> {
    let mut conn = pool.conn().await?;
    let base: usize = redis::cmd("STRLEN")
        .arg(pool.keys.transcript(plan))
        .query_async(&mut conn)
        .await?;
    let chunks: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(pool.keys.transcript_chunks(plan))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await?;
    Ok(base + chunks.iter().map(Vec::len).sum::<usize>())
}

/// The second task leaves, in its session's folder, files whose paths are longer than the
/// kernel opens (folders nested past PATH_MAX, one long-named file at each level, so one lies
/// in a folder that can still be listed): the worker lists the file but cannot open it. The
/// task fails at once, naming the pack, and the transcript committed by the first task is
/// still stored (it was deleted: the commit went on with no transcript).
#[tokio::test(flavor = "multi_thread")]
async fn a_session_file_the_worker_cannot_open_fails_its_task_and_keeps_the_transcript(
) -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let m = pool.machine("a", 1);
    let deep = format!(
        "Bash: {SESSION_DIR} && mkdir -p $d/deep && (cd $d/deep && n=$(printf 'n%.0s' $(seq 200)) && f=$(printf 'f%.0s' $(seq 250)) && for i in $(seq 24); do mkdir $n && cd $n && touch $f; done) && echo DEEP-DONE\n"
    );
    let plan = doc("deep-session")
        .options(json!({"allowed_tools": ["Bash"]}))
        .prompts(&["A first task that talks.", &deep, "A third task."]);
    pool.submit(&plan.json()).await?;
    pool.add_worker(&m)?;
    let id = plan_id("deep-session");
    pool.wait_state(
        &id,
        &[PlanState::Failed, PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    let results = pool.results(&id).await?;
    assert_eq!(
        results.len(),
        1,
        "only the first task committed: {results:?}"
    );
    let failed_ev = pool
        .wait_event(&id, EventKind::TaskFailed, Duration::from_secs(5))
        .await?;
    let failed = body!(failed_ev, TaskFailed);
    assert_eq!(failed_ev.task_index, Some(1), "{failed:?}");
    assert!(
        failed.reason.contains("could not be packed")
            && failed.reason.contains("nothing of this task was committed"),
        "{failed:?}"
    );
    assert!(
        stored_transcript(&pool, &id).await? > 0,
        "the first task's transcript is still stored"
    );
    Ok(())
}

/// A task that leaves 100,000 empty files in its session's folder (each costs a tar header in
/// a pack: 51 MB against an 8 MiB cap) fails with the cap named, nothing committed of it, and
/// the worker's other slot runs a plan on meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_of_many_empty_files_is_refused_by_the_cap() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 2);
    m.extra
        .extend(["--max-transcript-size", "8MiB", "--threads", "1"].map(String::from));
    let steady: Vec<String> = (1..=4)
        .map(|i| format!("Steady step {i}. [[standin:sleep 1000]]"))
        .collect();
    let steady_refs: Vec<&str> = steady.iter().map(String::as_str).collect();
    pool.submit(&doc("steady").prompts(&steady_refs).json())
        .await?;
    let many = format!(
        "Bash: {SESSION_DIR} && mkdir -p $d/tool-results && (cd $d/tool-results && seq 100000 | xargs touch) && echo MANY-DONE\n"
    );
    let hostile = doc("many-files")
        .options(json!({"allowed_tools": ["Bash"]}))
        .prompts(&["A first task that talks.", &many, "A third task."]);
    pool.submit(&hostile.json()).await?;
    pool.add_worker(&m)?;
    let id = plan_id("many-files");
    pool.wait_state(&id, &[PlanState::Failed], Duration::from_secs(180))
        .await?;
    let failed_ev = pool
        .wait_event(&id, EventKind::TaskFailed, Duration::from_secs(5))
        .await?;
    let failed = body!(failed_ev, TaskFailed);
    assert!(
        failed.reason.contains("--max-transcript-size"),
        "{failed:?}"
    );
    assert_eq!(pool.results(&id).await?.len(), 1);
    assert!(stored_transcript(&pool, &id).await? > 0);
    pool.wait_state(
        &plan_id("steady"),
        &[PlanState::Completed],
        Duration::from_secs(120),
    )
    .await?;
    Ok(())
}

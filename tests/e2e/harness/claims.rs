//! Claims whose reply was lost: `claim.lua` ran (the plan is on this worker's in-flight list)
//! but the slot never heard, as when Redis stops or the connection breaks right after the
//! script. No reaper hands back a live worker's claims, so the worker must find them itself.

use std::time::Duration;

use anyhow::Result;
use baton_core::{PlanState, WorkerId};
use baton_tests::docs::doc;
use baton_tests::inproc::InProc;
use redis::AsyncCommands;

use super::id;

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_whose_reply_was_lost_is_handed_back_and_runs() -> Result<()> {
    let mut pool = InProc::start()?;
    let mut c = pool.conn().await?;
    // Nothing is claimed while the pool is paused; the plan waits on the ready list.
    let _: () = c.set(pool.keys.pause(), "test").await?;
    let plan = id("lost-claim");
    pool.submit(&doc("lost-claim").prompts(&["One."]).json())
        .await?;
    pool.wait_state(&plan, PlanState::Queued, Duration::from_secs(10))
        .await?;
    let workers: Vec<String> = c.zrange(pool.keys.workers(), 0, -1).await?;
    assert_eq!(workers.len(), 1, "{workers:?}");
    let worker: WorkerId = workers[0].parse()?;
    // What claim.lua does, without telling any slot. The plan reads `queued` a moment before
    // its ingest puts it on the ready list: take it from there once it is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let moved = loop {
        let moved: Option<String> = redis::cmd("LMOVE")
            .arg(pool.keys.ready())
            .arg(pool.keys.inflight(&worker))
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(&mut c)
            .await?;
        if moved.is_some() || std::time::Instant::now() > deadline {
            break moved;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(moved.as_deref(), Some("lost-claim"));
    let _: () = c.del(pool.keys.pause()).await?;
    pool.wait_state(&plan, PlanState::Completed, Duration::from_secs(20))
        .await?;
    assert_eq!(pool.committed(&plan).await?, ["t1"]);
    let left: Vec<String> = c.lrange(pool.keys.inflight(&worker), 0, -1).await?;
    assert!(left.is_empty(), "{left:?}");
    pool.drain().await
}

//! The fault suite at CI size: every scenario must keep the delivery guarantee (nothing lost,
//! nothing out of order, nothing committed twice, every plan ending as the scenario says).
//! `scripts/faults.sh` runs the same scenarios at full size and prints the table.

use baton_tests::faults::{run, Fault, Scale};

async fn holds(fault: Fault) -> anyhow::Result<()> {
    let row = run(fault, Scale::ci()).await?;
    println!("{row}");
    assert!(row.passed(), "{row}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_workers_loses_nothing() -> anyhow::Result<()> {
    holds(Fault::KillWorker).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stalled_past_its_lease_is_fenced_off() -> anyhow::Result<()> {
    holds(Fault::StallWorker).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_restart_loses_nothing() -> anyhow::Result<()> {
    holds(Fault::RestartRedis).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_crash_with_aof_loses_nothing() -> anyhow::Result<()> {
    holds(Fault::KillRedis).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overloaded_model_delays_but_loses_nothing() -> anyhow::Result<()> {
    holds(Fault::Overloaded).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_fails_only_its_plan() -> anyhow::Result<()> {
    holds(Fault::Unauthorized).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_stream_is_cut_off_and_retried() -> anyhow::Result<()> {
    holds(Fault::HungStream).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_cli_is_retried() -> anyhow::Result<()> {
    holds(Fault::KillCli).await
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_documents_are_dead_lettered_without_disturbing_the_rest() -> anyhow::Result<()> {
    holds(Fault::HostileInput).await
}

//! Plan isolation: a plan's workspace is its own while the plan exists (another document naming
//! it, a folder inside it or one containing it is dead-lettered, naming the plan holding it),
//! and is free again once the plan has expired; repository URLs are data (a local path is
//! refused unless the worker allows its folder, and never inside the workspace root or the
//! state dir), and a remote's own config cannot make baton's git run a command.

use std::time::{Duration, Instant};

use baton_tests::*;

/// While plan `owner` exists, a plan naming its workspace, a folder inside it or a folder
/// containing it is dead-lettered with the field `workspace` and the owner named; a follow-up
/// of the owner keeps its workspace. Once the owner has expired (a short `--retention`), its
/// workspace can be taken again.
#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_belongs_to_one_live_plan_until_it_expires() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let mut m = pool.machine("a", 2);
    m.extra.extend(["--retention".into(), "15s".into()]);
    pool.add_worker(&m)?;
    pool.submit(
        &doc("owner")
            .workspace("shared/app")
            .prompts(&["Task marker owner-T1."])
            .json(),
    )
    .await?;
    pool.wait_state("owner", &["completed"], Duration::from_secs(60))
        .await?;

    for (plan, ws, relation) in [
        ("same", Some("shared/app"), "is the workspace of plan owner"),
        ("inside", Some("shared/app/sub"), "is inside \"shared/app\""),
        ("parent", Some("shared"), "contains \"shared/app\""),
    ] {
        let mut d = doc(plan).prompts(&["Never runs."]);
        if let Some(ws) = ws {
            d = d.workspace(ws);
        }
        pool.submit(&d.json()).await?;
        let letter = pool.wait_dead_letter(plan, Duration::from_secs(20)).await?;
        assert_eq!(letter.field.as_deref(), Some("workspace"), "{letter:?}");
        assert!(
            letter.reason.contains(relation) && letter.reason.contains("plan owner"),
            "{plan}: {}",
            letter.reason
        );
        assert_eq!(
            pool.plan_field(plan, "state").await?,
            None,
            "{plan} was never written"
        );
    }
    // The owner's follow-up (naming the workspace, or not) keeps it.
    pool.submit(&doc("owner").task("t2", "Task marker owner-T2.").json())
        .await?;
    pool.wait_done("owner", 2, Duration::from_secs(60)).await?;
    pool.submit(
        &doc("owner")
            .workspace("shared/app")
            .task("t3", "Task marker owner-T3.")
            .json(),
    )
    .await?;
    pool.wait_done("owner", 3, Duration::from_secs(60)).await?;

    // A sibling folder is no conflict.
    pool.submit(
        &doc("sibling")
            .workspace("shared/other")
            .prompts(&["Task marker sibling-T1."])
            .json(),
    )
    .await?;
    pool.wait_state("sibling", &["completed"], Duration::from_secs(60))
        .await?;
    // Once the owner's keys have expired and the sweep has seen it, the workspace is free.
    let mut conn = pool.conn().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holder: Option<String> =
            redis::AsyncCommands::hget(&mut conn, "{baton}:workspaces", "shared/app").await?;
        if holder.is_none() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the expired plan still holds its workspace"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        pool.plan_field("owner", "state").await?,
        None,
        "owner expired"
    );
    pool.submit(
        &doc("taker")
            .workspace("shared/app/sub")
            .prompts(&["Task marker taker-T1."])
            .json(),
    )
    .await?;
    pool.wait_state("taker", &["completed"], Duration::from_secs(60))
        .await?;
    let holder: Option<String> =
        redis::AsyncCommands::hget(&mut conn, "{baton}:workspaces", "shared/app/sub").await?;
    assert_eq!(holder.as_deref(), Some("taker"));
    Ok(())
}

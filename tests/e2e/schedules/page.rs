//! The dashboard's schedules page in headless Chromium: each schedule with its cron, zone,
//! next tick and last fired tick's plan (linked, and followed), kept current without a
//! reload as ticks fire; its run-now button, with the token.

use super::*;
use baton_tests::browser::Browser;
use fantoccini::Locator;

const TOKEN: &str = "schedules-page-token";

/// The plan the page's row of `name` links as its last tick, now.
async fn linked_plan(b: &Browser, name: &str) -> Option<String> {
    let css = format!("#schedule-{name} td:nth-child(5) a");
    let link = b.client.find(Locator::Css(&css)).await.ok()?;
    link.text().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedules_page_lists_each_schedule_and_follows_its_ticks() -> Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&instant(&pool, "a"))?;
    let file = plan_file(&pool, "page", &one_task())?;
    run(
        &pool,
        &[
            "schedule",
            "add",
            "nightly",
            "--cron",
            "0 0 2 * * *",
            "--tz",
            "Europe/Paris",
            "--plan",
            &file,
        ],
    )?;
    run(
        &pool,
        &[
            "schedule",
            "add",
            "every2",
            "--cron",
            "*/2 * * * * *",
            "--plan",
            &file,
        ],
    )?;
    wait_ticks(&pool, "every2", 1, Duration::from_secs(15)).await?;
    let (_dashboard, url) = pool.start_dashboard(Some(TOKEN))?;
    let browser = Browser::start().await?;
    let b = &browser;
    b.client.goto(&format!("{url}/schedules")).await?;
    let text = b.text().await?;
    for want in [
        "nightly",
        "0 0 2 * * *",
        "Europe/Paris",
        "every2",
        "*/2 * * * * *",
        "none yet",
    ] {
        ensure!(text.contains(want), "the page shows {want}: {text}");
    }
    let first = linked_plan(b, "every2").await.context("a linked plan")?;
    ensure!(first.starts_with("every2-"), "{first}");
    // Live: the next tick's plan replaces it without a reload.
    let deadline = Instant::now() + Duration::from_secs(15);
    while linked_plan(b, "every2").await.as_deref() == Some(first.as_str()) {
        ensure!(
            Instant::now() < deadline,
            "the page did not follow the ticks"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.screenshot("dashboard-schedules").await?;
    // The link leads to the plan's page.
    let css = "#schedule-every2 td:nth-child(5) a";
    b.client.find(Locator::Css(css)).await?.click().await?;
    let plan_page = b.text().await?;
    ensure!(plan_page.contains("every2-"), "{plan_page}");
    // Run now, with the token: the new plan's page.
    b.client.goto(&format!("{url}/schedules")).await?;
    let row = "#run-nightly";
    b.client
        .find(Locator::Css(&format!("{row} input[name=token]")))
        .await?
        .send_keys(TOKEN)
        .await?;
    b.client
        .find(Locator::Css(&format!("{row} button")))
        .await?
        .click()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b
        .client
        .current_url()
        .await?
        .path()
        .contains("/plans/nightly-now-")
    {
        ensure!(
            Instant::now() < deadline,
            "run-now leads to its plan: {}",
            b.text().await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = pool.client().schedules().await?;
    let ran = listed
        .entries
        .iter()
        .find(|e| e.def.name.as_str() == "nightly")
        .and_then(|e| e.run_now.clone());
    let ran = ran.context("run-now recorded")?;
    pool.wait_done(&ran.plan_id, 1, Duration::from_secs(20))
        .await?;
    run(&pool, &["schedule", "remove", "every2"])?;
    browser.close().await
}

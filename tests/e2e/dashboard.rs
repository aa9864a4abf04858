//! The dashboard in a real browser (headless Chromium over WebDriver), used as a person would:
//! a plan's task moves from running to done on the page without a reload, the conversation shows
//! the earlier prompts, a hostile prompt is only text, a dead letter is requeued with the token
//! and refused without it, and a read-only dashboard refuses every action. Screenshots of each
//! page go to `target/test-artifacts/`.

use std::time::{Duration, Instant};

use baton_core::EventKind;
use baton_tests::browser::Browser;
use baton_tests::*;
use fantoccini::Locator;

const TOKEN: &str = "dashboard-test-token";

/// The `data-status` of a task's row on the page now (the row is re-rendered live).
async fn row_status(b: &Browser, task: &str) -> Option<String> {
    let row = b
        .client
        .find(Locator::Css(&format!("#task-{task}")))
        .await
        .ok()?;
    row.attr("data-status").await.ok().flatten()
}

async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        anyhow::ensure!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_pool_live_and_acts_only_with_the_token() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    let opts = pool.machine("a", 1);
    pool.add_worker(&opts)?;
    let (_dashboard, url) = pool.start_dashboard(Some(TOKEN))?;
    let browser = Browser::start().await?;
    let b = &browser;

    // A plan with a slow second task, watched while it runs.
    let hostile =
        "Third: <script>window.__pwned = 1</script> <img src=x onerror=\"window.__pwned = 2\">";
    let d = doc("watched")
        .task(
            "t1",
            "First, the greeting.\nFile: hello.txt\n```\nhello\n```\n",
        )
        .task("t2", "Second, slowly. [[standin:sleep 4000]]")
        .task("t3", hostile);
    pool.submit(&d.json()).await?;
    wait_until("task 2 started", Duration::from_secs(60), || async {
        pool.events("watched").await.is_ok_and(|evs| {
            evs.iter()
                .any(|e| e.kind == EventKind::TaskStarted && e.task_index == Some(1))
        })
    })
    .await?;
    b.client.goto(&format!("{url}/plans/watched")).await?;
    assert_eq!(row_status(b, "t1").await.as_deref(), Some("done"));
    assert_eq!(row_status(b, "t2").await.as_deref(), Some("running"));
    let text = b.text().await?;
    assert!(
        text.contains("First, the greeting."),
        "the conversation shows task 1's prompt: {text}"
    );
    browser.screenshot("dashboard-plan-running").await?;
    // No reload from here on: the page follows the plan by itself.
    wait_until(
        "task 2 shown done without a reload",
        Duration::from_secs(60),
        || async { row_status(b, "t2").await.as_deref() == Some("done") },
    )
    .await?;
    let live_events = b.client.find_all(Locator::Css("#events li")).await?.len();
    assert!(live_events > 5, "events arrived on the page: {live_events}");
    pool.wait_state("watched", &["completed"], Duration::from_secs(60))
        .await?;
    b.client.refresh().await?;
    let text = b.text().await?;
    assert!(
        text.contains("<script>window.__pwned = 1</script>"),
        "the hostile prompt shows as text: {text}"
    );
    let pwned = b
        .client
        .execute("return window.__pwned === undefined;", vec![])
        .await?;
    assert_eq!(
        pwned,
        serde_json::Value::Bool(true),
        "no script of the prompt ran"
    );
    browser.screenshot("dashboard-plan").await?;
    b.client
        .execute("document.querySelector('.chat').scrollIntoView();", vec![])
        .await?;
    browser.screenshot("dashboard-conversation").await?;

    // The overview: queues, the worker, the last hour.
    b.client.goto(&url).await?;
    let text = b.text().await?;
    assert!(
        text.contains("live workers") && text.contains("resume success rate"),
        "{text}"
    );
    assert_eq!(
        b.client
            .find_all(Locator::Css("svg.chart rect"))
            .await?
            .len(),
        60
    );
    browser.screenshot("dashboard-overview").await?;
    b.client.goto(&format!("{url}/plans")).await?;
    assert!(b.text().await?.contains("watched"));
    browser.screenshot("dashboard-plans").await?;

    // A document dead-lettered for a cause that is then fixed: requeued from the page.
    let root = opts.workspace_root.clone();
    std::fs::create_dir_all(&root)?;
    let link = root.join("linked");
    std::os::unix::fs::symlink(std::env::temp_dir(), &link)?;
    pool.submit(
        &doc("linked")
            .workspace("linked")
            .prompts(&["After the fix."])
            .json(),
    )
    .await?;
    let mut conn = pool.conn().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let letter = loop {
        let dead: Vec<String> =
            redis::AsyncCommands::lrange(&mut conn, pool.keys.dead(), 0, -1).await?;
        let found = dead
            .iter()
            .filter_map(|d| serde_json::from_str::<baton_core::records::DeadLetter>(d).ok())
            .find(|l| l.plan_id.as_ref().is_some_and(|p| p.as_str() == "linked"));
        if let Some(l) = found {
            break l;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the document was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    std::fs::remove_file(&link)?;
    let row = format!("#dead-{}", letter.id);
    b.client.goto(&format!("{url}/dead")).await?;
    browser.screenshot("dashboard-dead").await?;
    // A wrong token is refused and nothing happens.
    press_with_token(b, &row, "not-the-token").await?;
    wait_until(
        "the wrong token refused",
        Duration::from_secs(10),
        || async { b.text().await.is_ok_and(|t| t.contains("Refused")) },
    )
    .await?;
    let still: i64 = redis::AsyncCommands::llen(&mut conn, pool.keys.dead()).await?;
    assert_eq!(still, 1);
    // The right one requeues it; the plan then runs.
    b.client.goto(&format!("{url}/dead")).await?;
    press_with_token(b, &row, TOKEN).await?;
    wait_until("the requeue confirmed", Duration::from_secs(10), || async {
        b.text()
            .await
            .is_ok_and(|t| t.contains("Document resubmitted."))
    })
    .await?;
    pool.wait_state("linked", &["completed"], Duration::from_secs(60))
        .await?;

    // A read-only dashboard: the buttons say so, and a request made anyway is refused.
    let (_ro, ro_url) = pool.start_dashboard(None)?;
    b.client.goto(&format!("{ro_url}/plans/watched")).await?;
    let button = b.client.find(Locator::Css("main form button")).await;
    if let Ok(button) = button {
        assert!(button.attr("disabled").await?.is_some());
        let title = button.attr("title").await?.unwrap_or_default();
        assert!(title.contains("read-only"), "{title}");
    }
    assert!(b.text().await?.contains("read-only"));
    let refused = post_form(&ro_url, "/plans/watched/cancel", &format!("token={TOKEN}"))?;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    browser.close().await?;
    Ok(())
}

/// Types `token` into the form of `row` and presses its button, as an operator would.
async fn press_with_token(b: &Browser, row: &str, token: &str) -> anyhow::Result<()> {
    b.client
        .find(Locator::Css(&format!("{row} input[name=token]")))
        .await?
        .send_keys(token)
        .await?;
    b.client
        .find(Locator::Css(&format!("{row} button")))
        .await?
        .click()
        .await?;
    Ok(())
}

/// POSTs a form and returns the raw response's status line and head.
fn post_form(base: &str, path: &str, body: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// GETs a page and returns the raw response.
fn get_page(base: &str, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The plan page steers a plan with the token: pause and resume it, and review a task (reject
/// with a note, then approve); each button shows only in the state it applies to.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_pauses_resumes_and_reviews_plans() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let (_dash, url) = pool.start_dashboard(Some(TOKEN))?;
    let d = doc("gate")
        .reviewed_task("t1", "Task marker gate-T1.")
        .task("t2", "Task marker gate-T2. [[standin:sleep 1500]]")
        .task("t3", "Task marker gate-T3.");
    pool.submit(&d.json()).await?;
    pool.wait_state("gate", &["awaiting_review"], Duration::from_secs(60))
        .await?;
    let page = get_page(&url, "/plans/gate")?;
    assert!(
        page.contains("waits for a review") && page.contains("/plans/gate/approve"),
        "{page}"
    );
    assert!(
        !page.contains("/plans/gate/pause"),
        "no pause button while awaiting review"
    );

    let refused = post_form(&url, "/plans/gate/reject", "token=wrong&note=x")?;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let empty = post_form(&url, "/plans/gate/reject", &format!("token={TOKEN}&note="))?;
    assert!(
        empty.starts_with("HTTP/1.1 4"),
        "a rejection needs a note: {empty}"
    );
    let done = post_form(
        &url,
        "/plans/gate/reject",
        &format!("token={TOKEN}&note=Task+marker+gate-T1b.+Try+again."),
    )?;
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    wait_until(
        "the rework asks for a review",
        Duration::from_secs(60),
        || async {
            let events = pool.events("gate").await.unwrap_or_default();
            events
                .iter()
                .filter(|e| e.kind == EventKind::ReviewRequested)
                .count()
                == 2
        },
    )
    .await?;
    pool.wait_state("gate", &["awaiting_review"], Duration::from_secs(10))
        .await?;
    let done = post_form(
        &url,
        "/plans/gate/approve",
        &format!("token={TOKEN}&note=Fine."),
    )?;
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    wait_until("task 2 starts", Duration::from_secs(60), || async {
        let events = pool.events("gate").await.unwrap_or_default();
        events.iter().any(|e| {
            e.kind == EventKind::TaskStarted
                && e.task_id.as_ref().is_some_and(|t| t.as_str() == "t2")
        })
    })
    .await?;
    let page = get_page(&url, "/plans/gate")?;
    assert!(
        page.contains("/plans/gate/pause"),
        "a running plan can be paused"
    );
    let done = post_form(&url, "/plans/gate/pause", &format!("token={TOKEN}"))?;
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    pool.wait_state("gate", &["paused"], Duration::from_secs(5))
        .await?;
    wait_until("task 2 commits", Duration::from_secs(60), || async {
        pool.plan_field("gate", "done")
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some("2")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pool.plan_field("gate", "done").await?.as_deref(),
        Some("2"),
        "task 2 finished, task 3 waits"
    );
    let page = get_page(&url, "/plans/gate")?;
    assert!(page.contains("/plans/gate/resume"), "{page}");
    let done = post_form(&url, "/plans/gate/resume", &format!("token={TOKEN}"))?;
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    pool.wait_state("gate", &["completed"], Duration::from_secs(60))
        .await?;
    Ok(())
}

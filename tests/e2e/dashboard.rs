//! The dashboard in a real browser (headless Chromium over WebDriver), used as a person would:
//! a plan's task moves from running to done on the page without a reload, the conversation shows
//! the earlier prompts, a hostile prompt is only text, a dead letter is requeued with the token
//! and refused without it, and a read-only dashboard refuses every action. Screenshots of each
//! page go to `target/test-artifacts/`.

mod lossy;

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
        pool.events(&plan_id("watched")).await.is_ok_and(|evs| {
            evs.iter()
                .any(|e| e.kind() == EventKind::TaskStarted && e.task_index == Some(1))
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
    // Under the dashboard's Content-Security-Policy ('self' only) its stylesheet applies (the
    // script runs too: the page goes live below).
    let styled = b
        .client
        .execute(
            "return getComputedStyle(document.querySelector('header')).display === 'flex';",
            vec![],
        )
        .await?;
    assert_eq!(
        styled,
        serde_json::Value::Bool(true),
        "the stylesheet applies"
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
    pool.wait_state(
        &plan_id("watched"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
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
    // The worker says how it runs plans: warm, in its box.
    let row = b
        .client
        .find(Locator::XPath(
            "//h2[.='Workers']/following-sibling::table[1]//tr[2]",
        ))
        .await?
        .text()
        .await?;
    assert!(
        row.contains("boxed"),
        "the worker row shows its sandbox: {row}"
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
    let letter = pool
        .wait_dead_letter(&plan_id("linked"), Duration::from_secs(30))
        .await?;
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
    let still = pool.dead_letters().await?.len();
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
    pool.wait_state(
        &plan_id("linked"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
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

/// POSTs a form, as the dashboard's own page would (its `Origin`), and returns the raw response.
fn post_form(base: &str, path: &str, body: &str) -> anyhow::Result<String> {
    post_form_from(base, path, body, &[&format!("Origin: {base}")])
}

/// POSTs a form with the given extra header lines and returns the raw response.
fn post_form_from(base: &str, path: &str, body: &str, headers: &[&str]) -> anyhow::Result<String> {
    let host = base.trim_start_matches("http://");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    raw_request(base, &format!("{head}Connection: close\r\n\r\n{body}"))
}

/// GETs a page and returns the raw response.
fn get_page(base: &str, path: &str) -> anyhow::Result<String> {
    let host = base.trim_start_matches("http://");
    get_page_as(base, path, host)
}

/// GETs a page with `Host: host` (whatever the address connected to) and returns the raw
/// response.
pub(crate) fn get_page_as(base: &str, path: &str, host: &str) -> anyhow::Result<String> {
    raw_request(
        base,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends `request` as it is to the dashboard at `base` and returns the raw response.
fn raw_request(base: &str, request: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(base.trim_start_matches("http://"))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A response's header, by name (case-insensitive), from a raw response.
fn header_of<'r>(response: &'r str, name: &str) -> Option<&'r str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Every answer carries the security headers, whatever its status.
fn assert_security_headers(response: &str) {
    let csp = header_of(response, "content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{response}"
    );
    assert_eq!(
        header_of(response, "x-content-type-options"),
        Some("nosniff")
    );
    assert_eq!(header_of(response, "x-frame-options"), Some("DENY"));
    assert_eq!(header_of(response, "referrer-policy"), Some("same-origin"));
}

/// A page of another site cannot use the dashboard: a request naming a host the dashboard does
/// not answer to (a DNS-rebinding page reaching it through its loopback binding) gets 421; an
/// action without the dashboard's own `Origin` (another site's form, or none) gets 403 even
/// with the right token, and the plan is unchanged; `--dashboard-host` adds a name. Every
/// answer carries the security headers.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_answers_only_its_own_hosts_and_acts_only_for_its_own_pages(
) -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    let (_dash, url) = pool.start_dashboard(Some(TOKEN))?;
    let port = url.rsplit(':').next().unwrap_or_default().to_owned();
    pool.submit(
        &doc("guarded")
            .reviewed_task("t1", "Task marker guarded-T1.")
            .json(),
    )
    .await?;
    pool.wait_state(
        &plan_id("guarded"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(60),
    )
    .await?;

    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let page = get_page_as(&url, "/plans/guarded", &host)?;
        assert!(page.starts_with("HTTP/1.1 200"), "{host}: {page}");
        assert_security_headers(&page);
    }
    for host in [
        format!("rebound.evil.example:{port}"),
        "rebound.evil.example".to_owned(),
        format!("127.0.0.1:{}", port.parse::<u16>()? + 1),
    ] {
        for path in ["/", "/plans/guarded", "/events", "/assets/live.js"] {
            let page = get_page_as(&url, path, &host)?;
            assert!(page.starts_with("HTTP/1.1 421"), "{host}{path}: {page}");
            assert!(
                !page.contains("guarded"),
                "nothing of the pool is shown: {page}"
            );
            assert_security_headers(&page);
        }
    }

    let cancel = format!("token={TOKEN}");
    for headers in [
        &["Origin: http://evil.example"][..],
        &["Origin: null"],
        &[&format!("Origin: http://evil.example:{port}")],
        &["Referer: http://evil.example/page"],
        &[],
    ] {
        let refused = post_form_from(&url, "/plans/guarded/cancel", &cancel, headers)?;
        assert!(
            refused.starts_with("HTTP/1.1 403"),
            "{headers:?}: {refused}"
        );
        assert_security_headers(&refused);
    }
    let foreign_host = raw_request(
        &url,
        &format!(
            "POST /plans/guarded/cancel HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{cancel}",
            cancel.len()
        ),
    )?;
    assert!(foreign_host.starts_with("HTTP/1.1 421"), "{foreign_host}");
    assert_eq!(
        pool.state(&plan_id("guarded")).await?,
        Some(PlanState::AwaitingReview),
        "no refused action changed the plan"
    );
    // A Referer of the dashboard's own page is enough when the browser sends no Origin.
    let done = post_form_from(
        &url,
        "/plans/guarded/cancel",
        &cancel,
        &[&format!("Referer: {url}/plans/guarded")],
    )?;
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    assert_security_headers(&done);
    pool.wait_state(
        &plan_id("guarded"),
        &[PlanState::Cancelled],
        Duration::from_secs(5),
    )
    .await?;

    // A name given with --dashboard-host is accepted, for pages and actions' origins.
    let (_named, named_url) =
        pool.start_dashboard_with(None, &["--dashboard-host", "dash.example.com"])?;
    let page = get_page_as(&named_url, "/", "dash.example.com")?;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let page = get_page_as(&named_url, "/", "other.example.com")?;
    assert!(page.starts_with("HTTP/1.1 421"), "{page}");
    Ok(())
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
    pool.wait_state(
        &plan_id("gate"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(60),
    )
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
            let events = pool.events(&plan_id("gate")).await.unwrap_or_default();
            events
                .iter()
                .filter(|e| e.kind() == EventKind::ReviewRequested)
                .count()
                == 2
        },
    )
    .await?;
    pool.wait_state(
        &plan_id("gate"),
        &[PlanState::AwaitingReview],
        Duration::from_secs(10),
    )
    .await?;
    let done = post_form(
        &url,
        "/plans/gate/approve",
        &format!("token={TOKEN}&note=Fine."),
    )?;
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    wait_until("task 2 starts", Duration::from_secs(60), || async {
        let events = pool.events(&plan_id("gate")).await.unwrap_or_default();
        events.iter().any(|e| {
            e.kind() == EventKind::TaskStarted
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
    pool.wait_state(
        &plan_id("gate"),
        &[PlanState::Paused],
        Duration::from_secs(5),
    )
    .await?;
    wait_until("task 2 commits", Duration::from_secs(60), || async {
        pool.plan_field(&plan_id("gate"), PlanField::Done)
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some("2")
    })
    .await?;
    // The hold is over (it handed the paused plan back after task 2): task 3 did not start.
    pool.wait_unheld(&plan_id("gate"), Duration::from_secs(30))
        .await?;
    assert_eq!(
        pool.plan_field(&plan_id("gate"), PlanField::Done)
            .await?
            .as_deref(),
        Some("2"),
        "task 2 finished, task 3 waits"
    );
    let page = get_page(&url, "/plans/gate")?;
    assert!(page.contains("/plans/gate/resume"), "{page}");
    let done = post_form(&url, "/plans/gate/resume", &format!("token={TOKEN}"))?;
    assert!(done.starts_with("HTTP/1.1 303"), "{done}");
    pool.wait_state(
        &plan_id("gate"),
        &[PlanState::Completed],
        Duration::from_secs(60),
    )
    .await?;
    Ok(())
}

/// The plans' state filter and a plan's action are closed sets: an unknown state is a 400
/// naming it (not a list of every plan), an empty one lists every plan, a known one filters;
/// an unknown action is refused naming it.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_filter_or_action_is_refused_naming_it() -> anyhow::Result<()> {
    let pool = Pool::start()?;
    let (_dash, url) = pool.start_dashboard(Some(TOKEN))?;
    for path in ["/plans?state=bogus", "/fragments/plans?state=bogus"] {
        let page = get_page(&url, path)?;
        assert!(page.starts_with("HTTP/1.1 400"), "{path}: {page}");
        assert!(
            page.contains("&quot;bogus&quot;") || page.contains("\"bogus\""),
            "{page}"
        );
        assert!(page.contains("awaiting_review"), "names the states: {page}");
    }
    for path in ["/plans", "/plans?state=", "/plans?state=running"] {
        let page = get_page(&url, path)?;
        assert!(page.starts_with("HTTP/1.1 200"), "{path}: {page}");
    }
    let refused = post_form(&url, "/plans/p1/explode", &format!("token={TOKEN}"))?;
    assert!(refused.starts_with("HTTP/1.1 404"), "{refused}");
    assert!(refused.contains("explode"), "{refused}");
    Ok(())
}

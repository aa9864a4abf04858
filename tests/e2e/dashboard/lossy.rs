//! The dashboard's pages over records baton did not write: a plan hash value, an index entry
//! or a result that is not UTF-8 shows lossily or is left out; the page never fails.

use super::get_page;
use baton_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_value_that_is_not_utf8_does_not_fail_the_plans_pages() -> anyhow::Result<()> {
    let pool = Pool::start()?;
    let (_dash, url) = pool.start_dashboard(None)?;
    let plan = plan_id("odd-bytes");
    let mut c = pool.conn().await?;
    let _: () = redis::pipe()
        .hset(pool.keys.plan(&plan), "plan_id", "odd-bytes")
        .ignore()
        .hset(pool.keys.plan(&plan), "state", "failed")
        .ignore()
        .hset(
            pool.keys.plan(&plan),
            "last_error",
            &b"bad \xff\xfe bytes"[..],
        )
        .ignore()
        .rpush(pool.keys.results(&plan), &b"\xff not a result"[..])
        .ignore()
        .zadd(pool.keys.plans(), "odd-bytes", 2)
        .ignore()
        .zadd(pool.keys.plans(), &b"\xc3\x28"[..], 1)
        .ignore()
        .query_async(&mut c)
        .await?;
    for path in ["/plans", "/fragments/plans", "/plans?state=failed"] {
        let page = get_page(&url, path)?;
        assert!(page.starts_with("HTTP/1.1 200"), "{path}: {page}");
        assert!(page.contains("odd-bytes"), "{path} lists the plan: {page}");
    }
    let page = get_page(&url, "/plans/odd-bytes")?;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("bad \u{fffd}\u{fffd} bytes"), "{page}");
    Ok(())
}

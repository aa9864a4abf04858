//! baton-client on its own, against a real redis-server and without workers: the plan view
//! reads what the scripts store, typed; the dead letters; the event cursor delivers a plan's
//! history, then live events, each once, and what was stored while its connection was down;
//! the typed waits end when the state comes and time out saying what they saw. The keys are
//! written here as the scripts write them (fast: no worker, no CLI).

use std::time::Duration;

use baton_client::{Client, ClientError, Delivery, DetailParts, EventCursor, Scope};
use baton_connect::{Conn, Connector, RedisArgs};
use baton_core::{Counter, Keys, PlanId, PlanState};
use baton_tests::{plan_id, Redis};
use redis::AsyncCommands;

/// A Redis of its own, a connection to write with, and a client to read with.
struct Reader {
    _redis: Redis,
    conn: Conn,
    client: Client,
    keys: Keys,
}

impl Reader {
    async fn start() -> anyhow::Result<Self> {
        let redis = Redis::start()?;
        let conn = redis.conn().await?;
        let keys = Keys::default();
        let connector = Connector::new(&RedisArgs {
            redis_url: redis.url(),
            ..Default::default()
        })?;
        Ok(Self {
            client: Client::connect(&connector, keys.clone()).with_poll(Duration::from_millis(20)),
            _redis: redis,
            conn,
            keys,
        })
    }

    /// Stores event `seq` of `plan` as the publishing script does (appended, `event_seq`
    /// raised) and returns its JSON; `plan_resumed` has no fields of its own.
    async fn store(&mut self, plan: &PlanId, seq: u64) -> anyhow::Result<String> {
        let raw = format!(
            r#"{{"kind":"plan_resumed","plan_id":"{plan}","at":"{}","worker":"w1","seq":{seq}}}"#,
            baton_core::time::now_rfc3339()
        );
        let _: () = redis::pipe()
            .rpush(self.keys.events(plan), &raw)
            .ignore()
            .hset(self.keys.plan(plan), "event_seq", seq + 1)
            .ignore()
            .query_async(&mut self.conn)
            .await?;
        Ok(raw)
    }

    async fn publish(&mut self, raw: &str) -> anyhow::Result<()> {
        let _: i64 = self.conn.publish(self.keys.channel(), raw).await?;
        Ok(())
    }
}

/// The `seq` of the next event the cursor delivers (a reconnect's news is collected in `news`).
async fn next_seq(cursor: &mut EventCursor, news: &mut Vec<&'static str>) -> anyhow::Result<u64> {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(10), cursor.next()).await??;
        match got {
            Delivery::Event(d) => return d.event.seq.ok_or_else(|| anyhow::anyhow!("no seq")),
            Delivery::Disconnected => news.push("disconnected"),
            Delivery::Reconnected => news.push("reconnected"),
        }
    }
}

#[tokio::test]
async fn the_cursor_delivers_history_then_live_events_once_and_what_a_reconnect_missed(
) -> anyhow::Result<()> {
    let mut r = Reader::start().await?;
    let plan = plan_id("cur");
    let mut stored = Vec::new();
    for seq in 0..3 {
        stored.push(r.store(&plan, seq).await?);
    }
    let mut cursor = EventCursor::new(
        &r.client,
        r.client.subscribe().await?,
        Scope::Plan(plan.clone()),
    );
    cursor.catch_up().await?;
    // Published after being stored: the channel repeats what the history holds.
    for raw in &stored[1..] {
        r.publish(raw).await?;
    }
    let other = r.store(&plan_id("other"), 0).await?;
    r.publish(&other).await?;
    let live = r.store(&plan, 3).await?;
    r.publish(&live).await?;
    let mut news = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_seq(&mut cursor, &mut news).await?);
    }
    assert_eq!(
        seen,
        [0, 1, 2, 3],
        "history, then live, each once, this plan's only"
    );

    // The connections drop (the channel's, and the one the catch-up reads with: every client
    // but this test's writer); events stored meanwhile are delivered after the reconnect.
    for kind in ["pubsub", "normal"] {
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg(kind)
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut r.conn)
            .await?;
    }
    let down = tokio::time::timeout(Duration::from_secs(10), cursor.next()).await??;
    assert!(matches!(down, Delivery::Disconnected), "{down:?}");
    r.store(&plan, 4).await?;
    let last = r.store(&plan, 5).await?;
    assert_eq!(next_seq(&mut cursor, &mut news).await?, 4);
    assert_eq!(news, ["reconnected"]);
    assert_eq!(next_seq(&mut cursor, &mut news).await?, 5);
    // Live again: a repeat of what the catch-up delivered is dropped.
    r.publish(&last).await?;
    let after = r.store(&plan, 6).await?;
    r.publish(&after).await?;
    assert_eq!(next_seq(&mut cursor, &mut news).await?, 6);
    Ok(())
}

#[tokio::test]
async fn the_plan_view_reads_what_the_scripts_store_typed() -> anyhow::Result<()> {
    let mut r = Reader::start().await?;
    let plan = plan_id("view");
    assert!(r.client.plan(&plan).await?.is_none(), "no such plan yet");
    let k = r.keys.clone();
    let session = r#"{"session_id":"6bbba7b0-f321-478c-b8a3-4f20b5839a74","created_at":"x","last_used_at":"y","last_worker":"w2","tasks":2,"ttl_secs":60}"#;
    let task = r#"{"id":"t3","index":2,"prompt":"third"}"#;
    let _: () = redis::pipe()
        .hset_multiple(
            k.plan(&plan),
            &[
                ("plan_id", "view"),
                ("state", "running"),
                ("done", "2"),
                ("cost_usd", "0.5"),
                ("input_tokens", "10"),
                ("holder", "w2"),
                ("last_worker", "w1"),
                ("last_error", "boom"),
                ("stat:handoffs", "1"),
            ],
        )
        .ignore()
        .rpush(k.tasks(&plan), task)
        .ignore()
        .set_ex(k.session(&plan), session, 60)
        .ignore()
        .rpush(k.events(&plan), "not an event")
        .ignore()
        .query_async(&mut r.conn)
        .await?;
    let v = r.client.plan(&plan).await?.expect("the plan");
    assert_eq!(v.state(), Some(PlanState::Running));
    assert_eq!((v.tasks_done(), v.tasks_total()), (2, 3));
    assert_eq!((v.hash.cost_usd, v.hash.input_tokens), (0.5, 10));
    assert_eq!(v.hash.holder.as_ref().map(|w| w.as_str()), Some("w2"));
    assert_eq!(v.hash.last_worker.as_ref().map(|w| w.as_str()), Some("w1"));
    assert_eq!(v.hash.last_error.as_deref(), Some("boom"));
    assert_eq!(v.counter(Counter::Handoffs), 1);
    assert_eq!(v.session.as_ref().map(|s| s.tasks), Some(2));
    assert!(v.session_ttl.is_some_and(|t| (1..=60).contains(&t)));

    let d = r
        .client
        .plan_detail(
            &plan,
            DetailParts {
                events: true,
                transcript: true,
            },
        )
        .await?
        .expect("the plan");
    assert_eq!(d.view.pending, 1);
    assert_eq!(d.tasks.len(), 1);
    assert_eq!(d.tasks[0].prompt, "third");
    assert!(
        d.events.is_empty(),
        "a record that does not decode is left out for display"
    );
    assert!(
        matches!(
            r.client.events(&plan).await,
            Err(ClientError::Decode { .. })
        ),
        "the strict read reports it"
    );
    let views = r.client.plans(&[plan.clone(), plan_id("none")]).await?;
    assert_eq!(views.len(), 2);
    assert!(views[0].is_some() && views[1].is_none());
    Ok(())
}

#[tokio::test]
async fn dead_letters_read_typed_newest_first() -> anyhow::Result<()> {
    let mut r = Reader::start().await?;
    let old = r#"{"id":"00000000-0000-4000-8000-000000000001","at":"a","kind":"task","reason":"old","plan_id":"d"}"#;
    let new = r#"{"id":"00000000-0000-4000-8000-000000000002","at":"b","kind":"submission","reason":"new","document":"{}"}"#;
    for l in [old, new, "garbage"] {
        let _: i64 = r.conn.lpush(r.keys.dead(), l).await?;
    }
    let all = r.client.dead_letters(None).await?;
    assert_eq!(all.len(), 3);
    assert!(all[0].letter.is_none() && all[0].raw == "garbage");
    assert_eq!(
        all[1].letter.as_ref().map(|l| l.reason.as_str()),
        Some("new")
    );
    assert_eq!(r.client.dead_letters(Some(2)).await?.len(), 2);
    assert!(
        r.client.dead_letters_strict().await.is_err(),
        "garbage is an error there"
    );
    let found = r
        .client
        .dead_letter_for(&plan_id("d"))
        .await?
        .expect("d's letter");
    assert_eq!(found.reason, "old");
    Ok(())
}

#[tokio::test]
async fn typed_waits_end_when_the_state_comes_and_time_out_saying_what_they_saw(
) -> anyhow::Result<()> {
    let mut r = Reader::start().await?;
    let plan = plan_id("w");
    let _: () = r.conn.hset(r.keys.plan(&plan), "state", "queued").await?;
    let waited = r
        .client
        .wait_state(&plan, &[PlanState::Completed], Duration::from_millis(200))
        .await;
    match waited {
        Err(ClientError::TimedOut { last, .. }) => assert!(last.contains("queued"), "{last}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let client = r.client.clone();
    let (plan2, done) = (plan.clone(), Duration::from_secs(10));
    let waiter = tokio::spawn(async move {
        client
            .wait_state(&plan2, &[PlanState::Completed, PlanState::Failed], done)
            .await
    });
    let _: () = r.conn.hset(r.keys.plan(&plan), "state", "failed").await?;
    assert_eq!(waiter.await??, PlanState::Failed);
    let _: i64 = r.conn.hincr(r.keys.stats(), "plans_completed", 2).await?;
    assert_eq!(
        r.client
            .wait_counter(Counter::PlansCompleted, 2, Duration::from_secs(5))
            .await?,
        2
    );
    r.store(&plan, 0).await?;
    let ev = r
        .client
        .wait_event(
            &plan,
            baton_core::EventKind::PlanResumed,
            Duration::from_secs(5),
        )
        .await?;
    assert_eq!(ev.seq, Some(0));
    Ok(())
}

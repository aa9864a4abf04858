//! The scripts on their own, against a real redis-server and without the CLI: what each
//! promises (fencing, popping exactly the head, idempotent ingest, the plan's own retention),
//! called through the same typed calls the worker and the `baton` CLI use. Fast: no worker runs.

use std::time::Duration;

use baton_connect::Conn;
use baton_core::event::{
    AcceptStatus, EventBody, PlanAccepted, PlanCompleted, PlanPaused, PlanStopped, TaskSucceeded,
};
use baton_core::records::{SessionRecord, TaskResult};
use baton_core::scripts::control::{ActionReply, Cancel, ControlReply, Refused, Retry};
use baton_core::scripts::hold::{
    Acquire, AcquireReply, Head, LockValue, Release, Released, Renew, Renewal, Unclaim,
};
use baton_core::scripts::ingest::{FinishIngest, Ingest, IngestReply, IngestStatus};
use baton_core::scripts::pool::{HandedBack, PruneIndex, ReapLock, ReapWorker, Recoveries, Tally};
use baton_core::scripts::task::{
    Commit, CommitReply, Compact, CompactReply, Fail, FailReply, NextStart, TranscriptWrite,
};
use baton_core::scripts::{Env, ScriptCall};
use baton_core::{
    ClaudeSessionId, Counts, Event, Keys, PlanId, PlanState, PlanTotals, RepoSpec, Requeue,
    TaskSpec, WorkerId,
};
use baton_tests::Redis;
use redis::AsyncCommands;

/// A Redis of its own, and the calls a worker would make.
struct Scripts {
    _redis: Redis,
    conn: Conn,
    env: Env,
    worker: WorkerId,
}

impl Scripts {
    async fn start() -> anyhow::Result<Self> {
        let redis = Redis::start()?;
        let conn = redis.conn().await?;
        Ok(Self {
            _redis: redis,
            conn,
            env: Env::new(Keys::default()),
            worker: "w1".parse()?,
        })
    }

    async fn call<C: ScriptCall>(&mut self, c: &C) -> anyhow::Result<C::Reply> {
        Ok(c.invocation(&self.env).invoke_async(&mut self.conn).await?)
    }

    /// Ingests `n` tasks (`t<k>`) into `plan` under submission `tag`.
    async fn ingest(
        &mut self,
        plan: &PlanId,
        tag: &str,
        first: usize,
        n: usize,
    ) -> anyhow::Result<IngestReply> {
        self.ingest_with_repo(plan, tag, first, n, None).await
    }

    async fn ingest_with_repo(
        &mut self,
        plan: &PlanId,
        tag: &str,
        first: usize,
        n: usize,
        repo: Option<RepoSpec>,
    ) -> anyhow::Result<IngestReply> {
        let tasks: Vec<TaskSpec> = (first..first + n)
            .map(|k| TaskSpec {
                id: format!("t{k}").parse().expect("valid id"),
                kind: None,
                prompt: format!("prompt {k}"),
                review: false,
                json_schema: None,
            })
            .collect();
        let tasks_json = serde_json::to_string(&tasks)?;
        let accepted = Event::new(Some(plan), accepted(AcceptStatus::Created));
        self.call(&Ingest {
            plan,
            tag,
            workspace: None,
            options_json: None,
            tasks_json: &tasks_json,
            accepted: &accepted,
            repo: repo.as_ref(),
            not_before_ms: None,
        })
        .await
    }

    async fn acquire(
        &mut self,
        plan: &PlanId,
        lock: &LockValue,
        lease: Duration,
    ) -> anyhow::Result<AcquireReply> {
        let worker = self.worker.clone();
        self.call(&Acquire {
            plan,
            lock,
            lease,
            worker: &worker,
            trace: None,
        })
        .await
    }

    /// Commits `head` as run by `lock`.
    async fn commit(
        &mut self,
        plan: &PlanId,
        lock: &LockValue,
        head: &Head,
    ) -> anyhow::Result<CommitReply> {
        self.commit_starting(plan, lock, head, None).await
    }

    /// Commits `head` as run by `lock`, asking it to start the next task as `next` says.
    async fn commit_starting(
        &mut self,
        plan: &PlanId,
        lock: &LockValue,
        head: &Head,
        next: Option<NextStart<'_>>,
    ) -> anyhow::Result<CommitReply> {
        let session = ClaudeSessionId::generate();
        let result = TaskResult {
            task_id: head.task.id.clone(),
            task_index: head.task.index,
            kind: None,
            prompt: head.task.prompt.clone(),
            result: "done".into(),
            session_id: session,
            worker: self.worker.clone(),
            attempts: 1,
            cost_usd: 0.01,
            input_tokens: 10,
            output_tokens: 5,
            duration_ms: 1,
            files: Vec::new(),
            finished_at: baton_core::time::now_rfc3339(),
            commit: None,
            diffstat: None,
            structured: None,
        };
        let record = SessionRecord {
            session_id: session,
            created_at: result.finished_at.clone(),
            last_used_at: result.finished_at.clone(),
            last_worker: self.worker.clone(),
            tasks: 1,
            context_tokens: 0,
            transcript_sha256: "abc".into(),
            cwd: String::new(),
            ttl_secs: 60,
        };
        let succeeded = Event::new(Some(plan), succeeded(result.session_id));
        let completed = Event::new(Some(plan), PlanCompleted::default());
        self.call(&Commit {
            plan,
            lock,
            head_raw: &head.raw,
            result: &result,
            session: &record,
            succeeded: &succeeded,
            completed: &completed,
            review: None,
            transcript: TranscriptWrite::Full(b"transcript"),
            plan_counts: &Counts::NONE,
            checkpoint: Some("0123456789abcdef0123456789abcdef01234567"),
            refresh_ttls: true,
            next_start: next,
        })
        .await
    }

    async fn state(&mut self, plan: &PlanId) -> anyhow::Result<Option<String>> {
        Ok(self.conn.hget(self.env.keys.plan(plan), "state").await?)
    }

    async fn len(&mut self, key: String) -> anyhow::Result<i64> {
        Ok(self.conn.llen(key).await?)
    }
}

/// A `plan_accepted` as a script call carries it (the script adds what only it knows).
fn accepted(status: AcceptStatus) -> PlanAccepted {
    PlanAccepted {
        status,
        tasks: None,
        first_task_index: None,
        state: None,
    }
}

/// A `task_succeeded` of `session` (the scripts store it as it is).
fn succeeded(session_id: ClaudeSessionId) -> TaskSucceeded {
    TaskSucceeded {
        result: "done".into(),
        session_id,
        cost_usd: 0.01,
        input_tokens: 10,
        output_tokens: 5,
        duration_ms: 1,
        files: Vec::new(),
        attempts: 1,
        run_started_ms: 0.0,
        result_at_ms: 0.0,
        run_ended_ms: 0.0,
        gateway_requests: 0,
        gateway_input_tokens: 0,
        gateway_output_tokens: 0,
        structured: None,
        transcript_bytes: None,
        commit: None,
        diffstat: None,
        checkout_ms: None,
        checkpoint_ms: None,
        stamps: None,
    }
}

/// A `plan_failed` for `reason`.
fn failed(reason: &str) -> EventBody {
    EventBody::PlanFailed(PlanStopped {
        reason: reason.into(),
    })
}

fn acquired(reply: AcquireReply) -> Box<Head> {
    match reply {
        AcquireReply::Acquired(h) => h,
        other => panic!("expected the lease, got {other:?}"),
    }
}

/// A document ingested twice under its tag (a worker died before finishing) is applied once;
/// a follow-up appends; what the plan's state refuses names the field.
#[tokio::test(flavor = "multi_thread")]
async fn ingest_is_idempotent_per_submission() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let p: PlanId = "p1".parse()?;
    let tag = uuid::Uuid::new_v4().to_string();
    let first = s.ingest(&p, &tag, 1, 2).await?;
    assert!(
        matches!(
            first,
            IngestReply::Applied {
                status: IngestStatus::Created,
                first_index: 0,
                count: 2,
                schedule: true,
                ..
            }
        ),
        "{first:?}"
    );
    let again = s.ingest(&p, &tag, 1, 2).await?;
    assert!(
        matches!(
            again,
            IngestReply::Applied {
                status: IngestStatus::Duplicate,
                count: 0,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(s.len(s.env.keys.tasks(&p)).await?, 2, "applied once");
    let events = s.len(s.env.keys.events(&p)).await?;
    assert_eq!(events, 1, "one plan_accepted");

    let follow = s
        .ingest(&p, &uuid::Uuid::new_v4().to_string(), 3, 1)
        .await?;
    assert!(
        matches!(
            follow,
            IngestReply::Applied {
                status: IngestStatus::Appended,
                first_index: 2,
                count: 1,
                schedule: false,
                ..
            }
        ),
        "scheduled already: {follow:?}"
    );
    let dup = s
        .ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 1)
        .await?;
    assert_eq!(
        dup,
        IngestReply::Refused {
            field: "tasks[0].id".into(),
            problem: "\"t1\" is already a task of this plan".into()
        }
    );
    // A follow-up may not add a repository to a plan created without one, nor change one.
    let repo = |branch: &str| RepoSpec {
        url: "/srv/git/app.git".parse().expect("url"),
        base: None,
        branch: branch.parse().expect("branch"),
    };
    let added = s
        .ingest_with_repo(&p, &uuid::Uuid::new_v4().to_string(), 9, 1, Some(repo("b")))
        .await?;
    assert!(
        matches!(&added, IngestReply::Refused { field, .. } if field == "repo"),
        "{added:?}"
    );
    let q: PlanId = "with-repo".parse()?;
    s.ingest_with_repo(
        &q,
        &uuid::Uuid::new_v4().to_string(),
        1,
        1,
        Some(repo("baton/q")),
    )
    .await?;
    let same = s
        .ingest_with_repo(
            &q,
            &uuid::Uuid::new_v4().to_string(),
            2,
            1,
            Some(repo("baton/q")),
        )
        .await?;
    assert!(
        matches!(
            same,
            IngestReply::Applied {
                status: IngestStatus::Appended,
                ..
            }
        ),
        "{same:?}"
    );
    let other = s
        .ingest_with_repo(
            &q,
            &uuid::Uuid::new_v4().to_string(),
            3,
            1,
            Some(repo("elsewhere")),
        )
        .await?;
    assert!(
        matches!(&other, IngestReply::Refused { field, .. } if field == "repo"),
        "{other:?}"
    );
    let omitted = s
        .ingest(&q, &uuid::Uuid::new_v4().to_string(), 4, 1)
        .await?;
    assert!(
        matches!(omitted, IngestReply::Applied { .. }),
        "a follow-up may omit it"
    );

    // The plan remembers the pool's limits for the scripts clients run.
    let retention: Option<u64> = s.conn.hget(s.env.keys.plan(&p), "retention_secs").await?;
    assert_eq!(retention, Some(s.env.retention_secs));
    Ok(())
}

/// An acquire sent again with the same lock value (its reply was lost: Redis stopped, or the
/// connection broke, after the script ran) takes the lease it already has; another holder's
/// value is still refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_acquire_retried_after_a_lost_reply_keeps_its_lease() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let p: PlanId = "retried-acquire".parse()?;
    s.ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 1)
        .await?;
    let lock = LockValue::new(&s.worker);
    let first = acquired(s.acquire(&p, &lock, Duration::from_secs(30)).await?);
    let again = acquired(s.acquire(&p, &lock, Duration::from_secs(30)).await?);
    assert_eq!(again.task.id, first.task.id);
    let other = LockValue::new(&s.worker);
    assert_eq!(
        s.acquire(&p, &other, Duration::from_secs(30)).await?,
        AcquireReply::Busy
    );
    assert_eq!(
        s.commit(&p, &lock, &again).await?,
        CommitReply::Done { completed: true },
        "the retried holder's lease is the plan's"
    );
    Ok(())
}

/// A holder whose lease is gone (expired, and taken by another) can write nothing: no commit,
/// no stop, no release, no renewal; the plan is exactly as the new holder found it.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lease_token_writes_nothing() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let p: PlanId = "fenced".parse()?;
    s.ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 2)
        .await?;
    let stale = LockValue::new(&s.worker);
    let head = acquired(s.acquire(&p, &stale, Duration::from_millis(100)).await?);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let current = LockValue::new(&s.worker);
    acquired(s.acquire(&p, &current, Duration::from_secs(30)).await?);

    assert_eq!(s.commit(&p, &stale, &head).await?, CommitReply::Fenced);
    let ev = Event::new(Some(&p), failed("x"));
    let fail = Fail {
        plan: &p,
        lock: &stale,
        reason: "x",
        task_event: None,
        plan_event: &ev,
        budget_pause: None,
    };
    assert_eq!(s.call(&fail).await?, FailReply::Fenced);
    assert_eq!(
        s.call(&Release {
            plan: &p,
            lock: &stale
        })
        .await?,
        Released::NotOurs
    );
    let renew = Renew {
        plan: &p,
        lock: &stale,
        lease: Duration::from_secs(30),
    };
    assert_eq!(s.call(&renew).await?, Renewal::Lost);

    assert_eq!(s.len(s.env.keys.tasks(&p)).await?, 2, "no task popped");
    assert_eq!(s.len(s.env.keys.results(&p)).await?, 0, "no result");
    assert_eq!(s.state(&p).await?.as_deref(), Some("running"), "not failed");
    let lock: Option<String> = s.conn.get(s.env.keys.lock(&p)).await?;
    assert_eq!(
        lock.as_deref(),
        Some(current.as_str()),
        "the new holder keeps its lease"
    );
    Ok(())
}

/// Compaction answers each of its three replies as written (a reply the decoder cannot read
/// would be a warning after every handoff): `changed` when the chunk count read is not the
/// stored one, `fenced` for a lease not ours (both write nothing), `ok` replacing base and
/// chunks by the one pack.
#[tokio::test(flavor = "multi_thread")]
async fn compaction_replies_ok_fenced_or_changed() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let p: PlanId = "compact".parse()?;
    s.ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 1)
        .await?;
    let lock = LockValue::new(&s.worker);
    acquired(s.acquire(&p, &lock, Duration::from_secs(30)).await?);
    let (base, chunks) = (s.env.keys.transcript(&p), s.env.keys.transcript_chunks(&p));
    let _: () = s.conn.set(&base, "base").await?;
    let _: () = s.conn.rpush(&chunks, &["c1", "c2"]).await?;
    let compact = |lock, chunks| Compact {
        plan: &p,
        lock,
        pack: b"whole",
        chunks,
    };

    assert_eq!(s.call(&compact(&lock, 1)).await?, CompactReply::Changed);
    let other = LockValue::new(&s.worker);
    assert_eq!(s.call(&compact(&other, 2)).await?, CompactReply::Fenced);
    let kept: String = s.conn.get(&base).await?;
    assert_eq!(kept, "base", "a refused compaction writes nothing");
    assert_eq!(s.len(chunks.clone()).await?, 2, "the chunks stay");

    assert_eq!(s.call(&compact(&lock, 2)).await?, CompactReply::Compacted);
    let whole: String = s.conn.get(&base).await?;
    assert_eq!(whole, "whole", "the base is the one pack");
    assert_eq!(s.len(chunks).await?, 0, "the chunks are gone");
    Ok(())
}

/// A commit pops exactly the task that ran: a commit of any other head is refused and writes
/// nothing; the last commit completes the plan and gives the lease back.
#[tokio::test(flavor = "multi_thread")]
async fn commit_pops_exactly_the_head() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let p: PlanId = "order".parse()?;
    s.ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 2)
        .await?;
    let lock = LockValue::new(&s.worker);
    let first = acquired(s.acquire(&p, &lock, Duration::from_secs(30)).await?);
    assert_eq!(first.task.id.as_str(), "t1");
    let second = match s.commit(&p, &lock, &first).await? {
        CommitReply::Next {
            left: 1,
            started: false,
            head,
        } => head,
        other => panic!("expected the next task, got {other:?}"),
    };
    assert_eq!(second.task.id.as_str(), "t2");
    assert!(
        second.session.is_some(),
        "the next head carries the session record"
    );
    assert_eq!(
        s.commit(&p, &lock, &first).await?,
        CommitReply::Mismatch,
        "t1 again"
    );
    assert_eq!(s.len(s.env.keys.results(&p)).await?, 1);
    let checkpoint: Option<String> = s.conn.hget(s.env.keys.plan(&p), "checkpoint").await?;
    assert_eq!(
        checkpoint.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(
        s.commit(&p, &lock, &second).await?,
        CommitReply::Done { completed: true }
    );
    assert_eq!(s.state(&p).await?.as_deref(), Some("completed"));
    let lock_left: bool = s.conn.exists(s.env.keys.lock(&p)).await?;
    assert!(!lock_left, "the last commit gave the lease back");
    let results: Vec<String> = s.conn.lrange(s.env.keys.results(&p), 0, -1).await?;
    let ids: Vec<String> = results
        .iter()
        .map(|r| serde_json::from_str::<TaskResult>(r).map(|r| r.task_id.to_string()))
        .collect::<Result<_, _>>()?;
    assert_eq!(ids, ["t1", "t2"]);
    let events: Vec<String> = s.conn.lrange(s.env.keys.events(&p), 0, -1).await?;
    assert!(events.last().is_some_and(|e| e.contains("plan_completed")));
    Ok(())
}

/// A commit asked to start the next task publishes that task's `task_started` and session
/// event (with its id and index) right after the `task_succeeded`, adds their counters and
/// says so; it leaves the start out once the plan's budget is spent, and when no task is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_starts_the_next_task_when_asked() -> anyhow::Result<()> {
    use baton_core::event::{AttemptMode, SessionNote, TaskStarted};
    let mut s = Scripts::start().await?;
    let p: PlanId = "ahead".parse()?;
    s.ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 3)
        .await?;
    let lock = LockValue::new(&s.worker);
    let first = acquired(s.acquire(&p, &lock, Duration::from_secs(30)).await?);
    let session_id = ClaudeSessionId::generate();
    let events = [
        Event::new(
            Some(&p),
            TaskStarted {
                attempt: 1,
                session_id,
                mode: AttemptMode::Warm,
                trace_id: None,
            },
        ),
        Event::new(
            Some(&p),
            EventBody::SessionResumed(SessionNote {
                session_id,
                from_worker: Some(s.worker.clone()),
            }),
        ),
    ];
    let mut counts = Counts::default();
    counts.add(baton_core::Counter::ResumesAttempted, 1);
    let next = |budget_usd| NextStart {
        events: &events,
        plan_counts: &counts,
        budget_usd,
    };
    let stored = |s: &mut Scripts| {
        let key = s.env.keys.events(&p);
        let mut conn = s.conn.clone();
        async move {
            let raw: Vec<String> = conn.lrange(key, 0, -1).await?;
            raw.iter()
                .map(|e| Ok(serde_json::from_str::<Event>(e)?))
                .collect::<anyhow::Result<Vec<Event>>>()
        }
    };
    let resumes = |s: &mut Scripts| {
        let (key, mut conn) = (s.env.keys.plan(&p), s.conn.clone());
        async move {
            let n: Option<i64> = conn.hget(key, "stat:resumes_attempted").await?;
            anyhow::Ok(n.unwrap_or(0))
        }
    };

    let second = match s
        .commit_starting(&p, &lock, &first, Some(next(Some(1.0))))
        .await?
    {
        CommitReply::Next {
            started: true,
            head,
            ..
        } => head,
        other => panic!("expected the next task, started: {other:?}"),
    };
    let ev = stored(&mut s).await?;
    let last3: Vec<_> = ev[ev.len() - 3..]
        .iter()
        .map(|e| {
            (
                e.kind().as_str(),
                e.task_id.as_ref().map(|t| t.to_string()),
                e.task_index,
            )
        })
        .collect();
    assert_eq!(
        last3,
        [
            ("task_succeeded", None, None),
            ("task_started", Some("t2".into()), Some(1)),
            ("session_resumed", Some("t2".into()), Some(1)),
        ],
        "the next task's start follows the commit, as its own events"
    );
    let seqs: Vec<_> = ev.iter().map(|e| e.seq).collect();
    let want: Vec<_> = (0..ev.len() as u64).map(Some).collect();
    assert_eq!(seqs, want, "numbered in order");
    assert_eq!(resumes(&mut s).await?, 1, "the start's counters");

    // Two commits of $0.01 reach a budget of $0.02: the holder stops the plan, nothing starts.
    let third = match s
        .commit_starting(&p, &lock, &second, Some(next(Some(0.02))))
        .await?
    {
        CommitReply::Next {
            started: false,
            head,
            ..
        } => head,
        other => panic!("expected the next task, not started: {other:?}"),
    };
    let ev = stored(&mut s).await?;
    assert_eq!(ev.last().map(|e| e.kind().as_str()), Some("task_succeeded"));
    assert_eq!(resumes(&mut s).await?, 1, "no start, no count");

    let done = s
        .commit_starting(&p, &lock, &third, Some(next(None)))
        .await?;
    assert_eq!(done, CommitReply::Done { completed: true });
    let kinds: Vec<_> = stored(&mut s).await?.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds.last().map(|k| k.as_str()),
        Some("plan_completed"),
        "nothing left to start"
    );
    assert_eq!(resumes(&mut s).await?, 1);
    Ok(())
}

/// A retry applies once per document, only to a failed plan, and resets the head task's
/// recovery count; a cancel keeps the retention the plan was created with.
#[tokio::test(flavor = "multi_thread")]
async fn retry_and_cancel_keep_to_the_plans_state_and_retention() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    s.env.retention_secs = 1000;
    let p: PlanId = "again".parse()?;
    let ev = Event::new(Some(&p), accepted(AcceptStatus::Retried));
    let tag = uuid::Uuid::new_v4().to_string();
    let retry = Retry {
        plan: &p,
        tag: &tag,
        event: &ev,
    };
    assert_eq!(
        s.call(&retry).await?,
        ActionReply::Refused(Refused(None)),
        "no plan"
    );
    s.ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 1)
        .await?;
    assert_eq!(
        s.call(&retry).await?,
        ActionReply::Refused(Refused(Some(PlanState::Queued)))
    );
    // A worker dies on the task, then it fails for good.
    let lock = LockValue::new(&s.worker);
    acquired(s.acquire(&p, &lock, Duration::from_secs(30)).await?);
    let worker = s.worker.clone();
    assert_eq!(
        s.call(&ReapLock {
            plan: &p,
            dead: &worker
        })
        .await?,
        Recoveries(Some(1))
    );
    let lock = LockValue::new(&s.worker);
    acquired(s.acquire(&p, &lock, Duration::from_secs(30)).await?);
    let failed = Event::new(Some(&p), failed("boom"));
    let fail = Fail {
        plan: &p,
        lock: &lock,
        reason: "boom",
        task_event: None,
        plan_event: &failed,
        budget_pause: None,
    };
    assert_eq!(s.call(&fail).await?, FailReply::Failed);
    s.call(&Release {
        plan: &p,
        lock: &lock,
    })
    .await?;

    assert_eq!(
        s.call(&retry).await?,
        ActionReply::Applied {
            schedule: true,
            priority: baton_core::Priority::Normal,
            completed: false,
        }
    );
    assert_eq!(
        s.call(&retry).await?,
        ActionReply::Duplicate {
            schedule: true,
            priority: baton_core::Priority::Normal
        },
        "same document"
    );
    assert_eq!(s.state(&p).await?.as_deref(), Some("queued"));
    let head: String = s.conn.lindex(s.env.keys.tasks(&p), 0).await?;
    assert!(head.contains("\"recoveries\":0"), "{head}");

    // A client cancels with the default limits; the plan keeps its own 1000 s.
    let client = Env::new(Keys::default());
    let cancelled = Event::new(
        Some(&p),
        EventBody::PlanCancelled(PlanStopped {
            reason: "enough".into(),
        }),
    );
    let cancel = Cancel {
        plan: &p,
        reason: "enough",
        event: &cancelled,
    };
    let reply: ControlReply = cancel.invocation(&client).invoke_async(&mut s.conn).await?;
    assert_eq!(reply, ControlReply::Applied);
    let ttl: i64 = s.conn.ttl(s.env.keys.plan(&p)).await?;
    assert!((1..=1000).contains(&ttl), "plan TTL {ttl}");
    assert_eq!(
        s.call(&cancel).await?,
        ControlReply::Refused(Refused(Some(PlanState::Cancelled)))
    );
    Ok(())
}

/// Hand-backs put plans where they are asked to go, and a reaped worker's claims and
/// documents go back to the pool.
#[tokio::test(flavor = "multi_thread")]
async fn hand_backs_requeue_where_asked() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let worker = s.worker.clone();
    let (ready, inflight) = (s.env.keys.ready(), s.env.keys.inflight(&worker));
    let _: () = s.conn.lpush(&ready, "old").await?;
    for (plan, requeue) in [
        ("a", Requeue::Back),
        ("b", Requeue::Front),
        ("c", Requeue::Drop),
    ] {
        let _: () = s.conn.lpush(&inflight, plan).await?;
        let plan: PlanId = plan.parse()?;
        s.call(&Unclaim {
            worker: &worker,
            plan: &plan,
            requeue,
            priority: baton_core::Priority::Normal,
            not_before_ms: 0,
            delay: Duration::ZERO,
            totals: &PlanTotals::NONE,
        })
        .await?;
    }
    // Claims take from the right: front = right end.
    let line: Vec<String> = s.conn.lrange(&ready, 0, -1).await?;
    assert_eq!(line, ["a", "old", "b"]);
    assert_eq!(s.len(inflight.clone()).await?, 0);

    let entry = b"baton-tag:x\n{}".to_vec();
    let _: () = s.conn.lpush(s.env.keys.ingesting(&worker), &entry).await?;
    let plan: PlanId = "d".parse()?;
    s.call(&FinishIngest {
        worker: &worker,
        entry: &entry,
        plan: Some((&plan, Requeue::Front)),
        priority: baton_core::Priority::Normal,
        counts: &Counts::NONE,
        concurrency_key: None,
    })
    .await?;
    let next: Option<String> = s.conn.rpop(&ready, None).await?;
    assert_eq!(next.as_deref(), Some("d"), "a retried plan goes first");
    let indexed: Vec<String> = s.conn.zrange(s.env.keys.plans(), 0, -1).await?;
    assert_eq!(indexed, ["d"], "finished ingests index their plan");
    let mut counts = Counts::default();
    counts.add(baton_core::Counter::TasksSucceeded, 2);
    s.call(&baton_core::scripts::pool::Count { counts: &counts })
        .await?;
    let minute: Option<i64> = s
        .conn
        .hget(s.env.keys.this_minute(), "tasks_succeeded")
        .await?;
    assert_eq!(minute, Some(2), "counts land in this minute's counters too");

    let _: () = s.conn.lpush(&inflight, "e").await?;
    let _: () = s.conn.lpush(s.env.keys.ingesting(&worker), "doc").await?;
    let reaped = s
        .call(&ReapWorker {
            worker: &worker,
            cutoff_ms: u64::MAX,
        })
        .await?;
    assert_eq!(reaped, HandedBack(Some(1)));
    let handback: Vec<String> = s.conn.lrange(s.env.keys.handback(), 0, -1).await?;
    assert_eq!(
        handback,
        ["doc"],
        "a half-ingested document goes back to the handback list, where only workers write"
    );
    assert_eq!(
        s.len(s.env.keys.submit()).await?,
        0,
        "not to the submit list"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plan_index_forgets_only_what_it_was_told_is_expired() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let index = s.env.keys.plans();
    let _: () = s.conn.zadd(&index, "gone", 1000).await?;
    let _: () = s.conn.zadd(&index, "resubmitted", 1000).await?;
    // "resubmitted" was submitted again after the sweep read it: finish_ingest re-scored it.
    let _: () = s.conn.zadd(&index, "resubmitted", 2000).await?;
    // Entries baton did not write: scored +inf (ZSCAN reads it as `inf`), a member not UTF-8.
    let _: () = s.conn.zadd(&index, "stray", "+inf").await?;
    let _: () = s.conn.zadd(&index, &b"\xff"[..], 5).await?;
    let expired = [
        (b"gone".to_vec(), "1000".to_owned()),
        (b"resubmitted".to_vec(), "1000".to_owned()),
        (b"stray".to_vec(), "inf".to_owned()),
        (b"\xff".to_vec(), "5".to_owned()),
    ];
    let removed = s.call(&PruneIndex { expired: &expired }).await?;
    assert_eq!(removed, 3);
    let left: Vec<String> = s.conn.zrange(&index, 0, -1).await?;
    assert_eq!(left, ["resubmitted"]);
    Ok(())
}

/// The pool's counters follow the plans' own by transfer: sending a plan's totals adds what the
/// pool lacks, sending them again (a retried hand-back, a reaper after a crash) adds nothing, and
/// older totals never take anything away.
#[tokio::test(flavor = "multi_thread")]
async fn the_pools_counters_take_each_plans_totals_once() -> anyhow::Result<()> {
    let mut s = Scripts::start().await?;
    let totals = |done: &str, cost: &str| {
        PlanTotals::from_values(
            &PlanTotals::fields()
                .iter()
                .map(|f| match f.as_str() {
                    "stat:tasks_succeeded" => Some(done.to_owned()),
                    "cost_usd" => Some(cost.to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        )
    };
    let (a, b): (PlanId, PlanId) = ("a".parse()?, "b".parse()?);
    for (plan, t) in [
        (&a, totals("2", "0.5")),
        (&a, totals("2", "0.5")),
        (&b, totals("1", "0.25")),
        (&a, totals("1", "0.4")),
        (&a, totals("3", "0.75")),
    ] {
        s.call(&Tally { plan, totals: &t }).await?;
    }
    let stats: std::collections::HashMap<String, String> =
        s.conn.hgetall(s.env.keys.stats()).await?;
    assert_eq!(stats["tasks_succeeded"], "4", "{stats:?}");
    let cost: f64 = stats["cost_usd"].parse()?;
    assert!((cost - 1.0).abs() < 1e-9, "{stats:?}");
    Ok(())
}

/// Pause, resume, approve and reject each apply only in the state they are for, once per
/// document, and name the state that refuses them.
#[tokio::test(flavor = "multi_thread")]
async fn plan_controls_keep_to_the_plans_state() -> anyhow::Result<()> {
    use baton_core::scripts::control::{Approve, Pause, Reject, Resume};
    let mut s = Scripts::start().await?;
    let p: PlanId = "steered".parse()?;
    let ev = Event::new(
        Some(&p),
        PlanPaused {
            reason: "lunch".into(),
            now: false,
        },
    );
    let pause = Pause {
        plan: &p,
        reason: "lunch",
        now: false,
        event: &ev,
    };
    assert_eq!(s.call(&pause).await?, ControlReply::Refused(Refused(None)));
    s.ingest(&p, &uuid::Uuid::new_v4().to_string(), 1, 2)
        .await?;
    let tag = uuid::Uuid::new_v4().to_string();
    let resume = Resume {
        plan: &p,
        tag: &tag,
        event: &ev,
        session_ttl_secs: 60,
    };
    assert_eq!(
        s.call(&resume).await?,
        ActionReply::Refused(Refused(Some(PlanState::Queued))),
        "only a paused plan resumes"
    );
    assert_eq!(s.call(&pause).await?, ControlReply::Applied);
    assert_eq!(
        s.call(&pause).await?,
        ControlReply::Refused(Refused(Some(PlanState::Paused)))
    );
    // A paused plan is not handed out.
    let lock = LockValue::new(&s.worker);
    assert_eq!(
        s.acquire(&p, &lock, Duration::from_secs(30)).await?,
        AcquireReply::Idle
    );
    let applied = ActionReply::Applied {
        schedule: true,
        priority: baton_core::Priority::Normal,
        completed: false,
    };
    assert_eq!(s.call(&resume).await?, applied);
    assert!(matches!(
        s.call(&resume).await?,
        ActionReply::Duplicate { .. }
    ));
    assert_eq!(s.state(&p).await?.as_deref(), Some("queued"));

    let other = uuid::Uuid::new_v4().to_string();
    let done = Event::new(Some(&p), PlanCompleted::default());
    let approve = Approve {
        plan: &p,
        tag: &other,
        note: None,
        event: &ev,
        completed: &done,
        session_ttl_secs: 60,
    };
    assert_eq!(
        s.call(&approve).await?,
        ActionReply::Refused(Refused(Some(PlanState::Queued))),
        "nothing awaits review"
    );
    let reject = Reject {
        plan: &p,
        tag: &other,
        note: "again",
        event: &ev,
        session_ttl_secs: 60,
    };
    assert_eq!(
        s.call(&reject).await?,
        ActionReply::Refused(Refused(Some(PlanState::Queued)))
    );
    Ok(())
}

//! A task's life in its plan's slot: announced (`start.lua`), committed with its result,
//! session record and transcript (`commit.lua`, fenced), or the plan stopped on it
//! (`fail.lua`, fenced); and single events (`emit.lua`).

use redis::{FromRedisValue, ParsingError, ScriptInvocation, Value};

use super::hold::{Head, LockValue};
use super::{Env, ScriptCall, Words, COMMIT, COMPACT, EMIT, FAIL, START};
use crate::counters::Counts;
use crate::event::Event;
use crate::ids::PlanId;
use crate::records::{SessionRecord, TaskResult};

/// `start.lua`: stores and publishes an attempt's events in order and adds to the plan's own
/// counters, in one trip. Not fenced: events are history, and a stale holder's start is
/// followed by no commit.
#[derive(Debug)]
pub struct Start<'a> {
    pub plan: &'a PlanId,
    pub events: &'a [Event],
    pub plan_counts: &'a Counts,
    /// Reset the retention TTLs of the plan hash and event list (once per hold is enough).
    pub refresh_ttls: bool,
}

impl ScriptCall for Start<'_> {
    type Reply = ();

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = START.prepare_invoke();
        inv.key(env.keys.plan(self.plan))
            .key(env.keys.events(self.plan))
            .arg(env.keys.channel())
            .arg(env.event_cap)
            .arg(env.retention_if(self.refresh_ttls))
            .arg(self.events.len());
        for e in self.events {
            inv.arg(e.to_json());
        }
        for (name, n) in self.plan_counts.args() {
            inv.arg(name).arg(n);
        }
        inv
    }
}

/// `commit.lua`: pops the task that ran, appends its result, writes the session record and
/// transcript with the session TTL, adds to the plan's counters and publishes its events, all
/// fenced by the lease; then returns the next task, or gives the lease back when none is left.
#[derive(Debug)]
pub struct Commit<'a> {
    pub plan: &'a PlanId,
    pub lock: &'a LockValue,
    /// The head task's JSON as read ([`Head::raw`]).
    pub head_raw: &'a str,
    pub result: &'a TaskResult,
    /// The session record after this task (its TTL is the session's).
    pub session: &'a SessionRecord,
    pub succeeded: &'a Event,
    /// Published only if this commit completes the plan.
    pub completed: &'a Event,
    /// `review_requested`, when the task asks for a review: the plan then waits in
    /// `awaiting_review` and the lease is given back.
    pub review: Option<&'a Event>,
    /// What the commit stores of the transcript.
    pub transcript: TranscriptWrite<'a>,
    /// Added to the plan's `stat:` counters.
    pub plan_counts: &'a Counts,
    /// The plan's checkpoint after this task (a plan with a repository).
    pub checkpoint: Option<&'a str>,
    /// Reset the plan keys' retention TTLs (once per hold is enough).
    pub refresh_ttls: bool,
    /// The next task's start, published by this commit when the holder will run it.
    pub next_start: Option<NextStart<'a>>,
}

/// What `start.lua` would write for the next task's first attempt, written by the commit of the
/// task before it instead (a trip less per task inside a hold): its events, without the task's
/// id and index (the script sets them from the next task), and the plan counters they add.
#[derive(Debug, Clone, Copy)]
pub struct NextStart<'a> {
    pub events: &'a [Event],
    pub plan_counts: &'a Counts,
    /// The plan's budget: no start once its cost reaches it (the holder stops the plan then).
    pub budget_usd: Option<f64>,
}

/// How a commit stores the transcript (see `crate::transcript` for the formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptWrite<'a> {
    /// The run left none: the stored one is deleted (the next task falls back to a recap).
    Nothing,
    /// A whole pack: replaces the base and drops the chunks.
    Full(&'a [u8]),
    /// A chunk: what this turn added, appended to the chunks.
    Append(&'a [u8]),
}

impl<'a> TranscriptWrite<'a> {
    fn mode(self) -> &'static str {
        match self {
            Self::Nothing => "none",
            Self::Full(_) => "full",
            Self::Append(_) => "append",
        }
    }

    fn bytes(self) -> &'a [u8] {
        match self {
            Self::Nothing => &[],
            Self::Full(b) | Self::Append(b) => b,
        }
    }
}

/// The reply of `commit.lua`.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitReply {
    /// Tasks are left; here is the next one (the lease is still ours). `started`: the commit
    /// published its start ([`NextStart`]).
    Next {
        left: u64,
        started: bool,
        head: Box<Head>,
    },
    /// No task is left: the lease was given back. `completed` when this commit completed the
    /// plan (it was running; a cancelled plan is not completed).
    Done { completed: bool },
    /// The task asked for a review: the plan waits in `awaiting_review`, the lease was given
    /// back.
    Review,
    /// Tasks are left but the plan stopped meanwhile (cancelled): release it.
    Stopped { left: u64 },
    /// The lease is not ours: nothing was written.
    Fenced,
    /// The head task is not the one that ran: nothing was written.
    Mismatch,
}

impl ScriptCall for Commit<'_> {
    type Reply = CommitReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let p = self.plan;
        let r = self.result;
        let result_json = serde_json::to_string(r).expect("results serialize");
        let session_json = serde_json::to_string(self.session).expect("records serialize");
        let mut inv = COMMIT.prepare_invoke();
        inv.key(k.lock(p))
            .key(k.plan(p))
            .key(k.tasks(p))
            .key(k.results(p))
            .key(k.session(p))
            .key(k.events(p))
            .key(k.transcript(p))
            .key(k.task_ids(p))
            .key(k.ingested(p))
            .key(k.transcript_chunks(p))
            .arg(self.lock.as_str())
            .arg(self.head_raw)
            .arg(result_json)
            .arg(session_json)
            .arg(self.session.ttl_secs)
            .arg(self.succeeded.to_json())
            .arg(k.channel())
            .arg(r.cost_usd)
            .arg(crate::time::now_rfc3339())
            .arg(env.retention_if(self.refresh_ttls))
            .arg(self.completed.to_json())
            .arg(env.event_cap)
            .arg(self.transcript.bytes())
            .arg(r.worker.as_str())
            .arg(r.input_tokens)
            .arg(r.output_tokens)
            .arg(r.session_id.to_string())
            .arg(self.checkpoint.unwrap_or(""))
            .arg(self.transcript.mode())
            .arg(self.review.map(Event::to_json).unwrap_or_default());
        let next = self.next_start;
        inv.arg(
            next.and_then(|n| n.budget_usd)
                .map(|b| b.to_string())
                .unwrap_or_default(),
        );
        let none = Counts::default();
        let (events, counts) = next.map_or((&[][..], &none), |n| (n.events, n.plan_counts));
        inv.arg(events.len());
        for e in events {
            inv.arg(e.to_json());
        }
        let pairs = counts.args();
        inv.arg(pairs.len());
        for (name, n) in pairs {
            inv.arg(name).arg(n);
        }
        for (name, n) in self.plan_counts.args() {
            inv.arg(name).arg(n);
        }
        inv
    }
}

impl FromRedisValue for CommitReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Next {
                left: w.num(1),
                started: w.num(2) == 1,
                head: Box::new(Head::from_words(w.rest(3))?),
            }),
            "done" => Ok(Self::Done {
                completed: w.num(1) == 1,
            }),
            "review" => Ok(Self::Review),
            "idle" => Ok(Self::Stopped { left: w.num(1) }),
            "fenced" => Ok(Self::Fenced),
            "mismatch" => Ok(Self::Mismatch),
            _ => Err(w.unexpected("commit")),
        }
    }
}

/// `fail.lua`: stops the plan on its head task (which stays first, for `baton retry`),
/// publishing `task_failed` (if given) and the plan's event, fenced by the lease.
#[derive(Debug)]
pub struct Fail<'a> {
    pub plan: &'a PlanId,
    pub lock: &'a LockValue,
    /// Kept as the plan's `last_error`.
    pub reason: &'a str,
    pub task_event: Option<&'a Event>,
    pub plan_event: &'a Event,
    /// `None`: the plan fails. `Some(key)`: a spent budget pauses it; `key` is the concurrency
    /// key whose daily budget is spent (`""`: the plan's own budget).
    pub budget_pause: Option<&'a str>,
}

/// The reply of `fail.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReply {
    Failed,
    /// The lease is not ours: nothing was written.
    Fenced,
}

impl ScriptCall for Fail<'_> {
    type Reply = FailReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = FAIL.prepare_invoke();
        inv.key(k.lock(self.plan))
            .key(k.plan(self.plan))
            .key(k.events(self.plan))
            .arg(self.lock.as_str())
            .arg(self.reason)
            .arg(self.task_event.map(Event::to_json).unwrap_or_default())
            .arg(self.plan_event.to_json())
            .arg(k.channel())
            .arg(crate::time::now_rfc3339())
            .arg(env.event_cap)
            .arg(env.retention_secs)
            .arg(if self.budget_pause.is_some() {
                "paused"
            } else {
                ""
            })
            .arg(self.budget_pause.unwrap_or(""));
        inv
    }
}

impl FromRedisValue for FailReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Failed),
            "fenced" => Ok(Self::Fenced),
            _ => Err(w.unexpected("fail")),
        }
    }
}

/// `emit.lua`: stores and publishes one event of a plan. Replies with the event's `seq`.
#[derive(Debug)]
pub struct Emit<'a> {
    pub plan: &'a PlanId,
    pub event: &'a Event,
}

impl ScriptCall for Emit<'_> {
    type Reply = u64;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = EMIT.prepare_invoke();
        inv.key(env.keys.plan(self.plan))
            .key(env.keys.events(self.plan))
            .arg(self.event.to_json())
            .arg(env.keys.channel())
            .arg(env.event_cap)
            .arg(env.retention_secs);
        inv
    }
}

/// `compact.lua`: replaces the plan's transcript base and chunks by one pack holding them all,
/// fenced by the lease and only if no chunk was added since `chunks` were read.
#[derive(Debug)]
pub struct Compact<'a> {
    pub plan: &'a PlanId,
    pub lock: &'a LockValue,
    pub pack: &'a [u8],
    pub chunks: u64,
}

/// The reply of `compact.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactReply {
    Compacted,
    Fenced,
    /// Chunks were added meanwhile: nothing was written.
    Changed,
}

impl ScriptCall for Compact<'_> {
    type Reply = CompactReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = COMPACT.prepare_invoke();
        inv.key(k.lock(self.plan))
            .key(k.transcript(self.plan))
            .key(k.transcript_chunks(self.plan))
            .arg(self.lock.as_str())
            .arg(self.pack)
            .arg(self.chunks);
        inv
    }
}

impl FromRedisValue for CompactReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Compacted),
            "fenced" => Ok(Self::Fenced),
            "changed" => Ok(Self::Changed),
            _ => Err(w.unexpected("compact")),
        }
    }
}

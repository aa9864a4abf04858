//! The worker's view of Redis: one multiplexed, self-reconnecting connection that every slot
//! shares for ordinary commands (concurrent callers are pipelined on it), dedicated connections
//! for blocking pops, and one typed method per script or command group. Every key comes from
//! `baton_core::Keys`.
//!
//! Not a connection pool: deadpool-redis checks each connection out with `UNWATCH` + `PING`,
//! a round trip more than the command itself, and a multiplexed connection needs no checkout.

use std::collections::HashMap;
use std::time::Duration;

use baton_core::records::{DeadLetter, StoredTask};
use baton_core::{scripts, Event, Keys, PlanId, WorkerId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncCommands, AsyncConnectionConfig, Value};

/// A Redis failure, or the pool failing to hand out a connection.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from a baton script: {0}")]
    Protocol(String),
}

impl StoreError {
    /// True for failures that can pass (a dropped connection, a timeout, Redis loading its
    /// data or out of memory): worth retrying. False for answers that will not change (a wrong
    /// key type, a script error): retrying those would hang a worker loop silently.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Protocol(_) => false,
            Self::Redis(e) => {
                e.code() == Some("OOM") || !matches!(e.retry_method(), redis::RetryMethod::NoRetry)
            }
        }
    }
}

/// What the holder of a plan needs to run its next task.
#[derive(Debug, Clone)]
pub struct Head {
    pub task: StoredTask,
    /// The task's JSON exactly as stored: the commit compares it to check the head is unchanged.
    pub raw: String,
    /// The session record JSON, empty when there is none (first task, or expired).
    pub session: String,
    /// The plan's metadata hash.
    pub meta: HashMap<String, String>,
}

/// Outcome of taking a plan's lease.
#[derive(Debug)]
pub enum Acquired {
    Ok(Head),
    /// Another worker holds it.
    Busy,
    /// Nothing to run (no tasks, or the plan is failed/cancelled).
    Idle,
}

/// Outcome of a fenced read or write.
#[derive(Debug, PartialEq, Eq)]
pub enum Fenced<T> {
    Ok(T),
    /// Our lease is gone: another worker may hold the plan.
    LeaseLost,
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// Still ours, but someone ran `baton cancel`: stop the plan's task.
    Cancelled,
    /// Expired or taken by another worker.
    Lost,
}

/// Settings the scripts need besides keys.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub event_cap: u64,
    pub retention_secs: u64,
}

/// Connections and typed commands.
#[derive(Clone)]
pub struct Store {
    shared: ConnectionManager,
    client: redis::Client,
    pub keys: Keys,
    settings: StoreSettings,
}

/// Longest a single command may take before it counts as failed (scripts move transcripts of
/// a few hundred KB; redis-rs's default of 500 ms is too tight for a busy server).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// A store for `url`. Connects lazily.
    ///
    /// # Errors
    /// An invalid URL.
    pub fn new(url: &str, keys: Keys, settings: StoreSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        // Reconnects after a failure on its own; a command sent meanwhile fails at once and
        // the caller's own backoff (`redis_retry`) decides what to do.
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let shared = ConnectionManager::new_lazy_with_config(client.clone(), cfg)?;
        Ok(Self {
            shared,
            client,
            keys,
            settings,
        })
    }

    /// The shared connection (a cheap handle; concurrent commands on it are pipelined).
    pub async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        Ok(self.shared.clone())
    }

    /// A connection of its own for blocking pops of up to `block` (a blocking command on a
    /// shared multiplexed connection would stall every other caller).
    pub async fn blocking_conn(
        &self,
        block: Duration,
    ) -> Result<MultiplexedConnection, StoreError> {
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(Some(block + RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?)
    }

    /// `BLMOVE src dst RIGHT LEFT block`: the oldest entry of `src`, or `None` after `block`.
    pub async fn blocking_move(
        conn: &mut MultiplexedConnection,
        src: &str,
        dst: &str,
        block: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(redis::cmd("BLMOVE")
            .arg(src)
            .arg(dst)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(block.as_secs_f64())
            .query_async(conn)
            .await?)
    }

    /// Like [`Store::blocking_move`], with the pool pause's remaining time read right after the
    /// pop in the same pipeline (no extra round trip): a slot blocked before a pause began
    /// still learns of it before it runs anything.
    pub async fn blocking_claim(
        &self,
        conn: &mut MultiplexedConnection,
        worker: &WorkerId,
        block: Duration,
    ) -> Result<(Option<Vec<u8>>, Option<Duration>), StoreError> {
        let (popped, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .cmd("BLMOVE")
            .arg(self.keys.ready())
            .arg(self.keys.inflight(worker))
            .arg("RIGHT")
            .arg("LEFT")
            .arg(block.as_secs_f64())
            .cmd("PTTL")
            .arg(self.keys.pause())
            .query_async(conn)
            .await?;
        Ok((
            popped,
            (pttl > 0).then(|| Duration::from_millis(pttl as u64)),
        ))
    }

    fn now() -> String {
        baton_core::time::now_rfc3339()
    }

    // ---- ingest ----

    /// Replaces the newest entry of a worker's ingesting list (the one just taken) by its tagged form.
    pub async fn tag_ingesting(&self, worker: &WorkerId, tagged: &[u8]) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .await?
            .lset(self.keys.ingesting(worker), 0, tagged)
            .await?;
        Ok(())
    }

    /// Applies a validated document (see `lua/ingest.lua`). `Err(Ok((field, problem)))` is a
    /// rejection by the plan's current state.
    #[allow(clippy::too_many_arguments)]
    pub async fn ingest(
        &self,
        plan: &PlanId,
        tag: &str,
        workspace_given: &str,
        default_workspace: &str,
        options_json: &str,
        tasks_json: &str,
        accepted_event: &Event,
    ) -> Result<Result<IngestOutcome, (String, String)>, StoreError> {
        let k = &self.keys;
        let v: Vec<Value> = scripts::INGEST
            .key(k.plan(plan))
            .key(k.tasks(plan))
            .key(k.task_ids(plan))
            .key(k.ingested(plan))
            .key(k.events(plan))
            .arg(tag)
            .arg(plan.as_str())
            .arg(workspace_given)
            .arg(default_workspace)
            .arg(options_json)
            .arg(tasks_json)
            .arg(Self::now())
            .arg(self.settings.retention_secs)
            .arg(accepted_event.to_json())
            .arg(k.channel())
            .arg(self.settings.event_cap)
            .invoke_async(&mut self.conn().await?)
            .await?;
        let s = |i: usize| v.get(i).map(value_string).unwrap_or_default();
        match s(0).as_str() {
            "ok" => Ok(Ok(IngestOutcome {
                status: s(1),
                first_index: s(2).parse().unwrap_or(0),
                count: s(3).parse().unwrap_or(0),
                schedule: s(4) == "1",
            })),
            "err" => Ok(Err((s(1), s(2)))),
            other => Err(StoreError::Protocol(format!("ingest returned {other:?}"))),
        }
    }

    /// Ends an ingest: drops `entry` from the ingesting list, adds `counters` to the pool's,
    /// schedules the plan if asked.
    pub async fn finish_ingest(
        &self,
        worker: &WorkerId,
        entry: &[u8],
        plan: Option<&PlanId>,
        schedule: bool,
        counters: &[(&str, i64)],
    ) -> Result<(), StoreError> {
        let mut script = scripts::FINISH_INGEST.prepare_invoke();
        script
            .key(self.keys.ingesting(worker))
            .key(self.keys.ready())
            .key(self.keys.stats())
            .arg(entry)
            .arg(plan.map(PlanId::as_str).unwrap_or(""))
            .arg(if schedule { "1" } else { "0" });
        for (name, n) in counters {
            script.arg(*name).arg(*n);
        }
        let _: i64 = script.invoke_async(&mut self.conn().await?).await?;
        Ok(())
    }

    /// Stores a rejected document on the dead-letter list and drops it from the ingesting list,
    /// in one transaction, then publishes the rejection.
    pub async fn reject(
        &self,
        worker: &WorkerId,
        entry: &[u8],
        letter: &DeadLetter,
        event: &Event,
    ) -> Result<(), StoreError> {
        let letter =
            serde_json::to_string(letter).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let mut conn = self.conn().await?;
        let _: () = redis::pipe()
            .atomic()
            .lpush(self.keys.dead(), letter)
            .ignore()
            .lrem(self.keys.ingesting(worker), 1, entry)
            .ignore()
            .hincr(self.keys.stats(), "submissions_rejected", 1)
            .ignore()
            .query_async(&mut conn)
            .await?;
        let _: i64 = conn.publish(self.keys.channel(), event.to_json()).await?;
        Ok(())
    }

    // ---- claim, lease, commit, release ----

    /// Takes a plan's lease and reads its next task.
    pub async fn acquire(
        &self,
        plan: &PlanId,
        lock_value: &str,
        lease: Duration,
        worker: &WorkerId,
    ) -> Result<Acquired, StoreError> {
        let k = &self.keys;
        let v: Vec<Value> = scripts::ACQUIRE
            .key(k.lock(plan))
            .key(k.plan(plan))
            .key(k.tasks(plan))
            .key(k.session(plan))
            .arg(lock_value)
            .arg(lease.as_millis() as u64)
            .arg(Self::now())
            .arg(worker.as_str())
            .invoke_async(&mut self.conn().await?)
            .await?;
        match v.first().map(value_string).as_deref() {
            Some("ok") => Ok(Acquired::Ok(parse_head(&v)?)),
            Some("busy") => Ok(Acquired::Busy),
            Some("idle") => Ok(Acquired::Idle),
            other => Err(StoreError::Protocol(format!("acquire returned {other:?}"))),
        }
    }

    /// Renews the lease.
    pub async fn renew(
        &self,
        plan: &PlanId,
        lock_value: &str,
        lease: Duration,
    ) -> Result<Renewal, StoreError> {
        let r: i64 = scripts::RENEW
            .key(self.keys.lock(plan))
            .key(self.keys.plan(plan))
            .arg(lock_value)
            .arg(lease.as_millis() as u64)
            .invoke_async(&mut self.conn().await?)
            .await?;
        Ok(match r {
            1 => Renewal::Renewed,
            2 => Renewal::Cancelled,
            _ => Renewal::Lost,
        })
    }

    /// Commits a task (see `lua/commit.lua`): what is left to do comes back with it.
    pub async fn commit(
        &self,
        plan: &PlanId,
        lock_value: &str,
        c: &Commit<'_>,
    ) -> Result<Fenced<Committed>, StoreError> {
        let k = &self.keys;
        let mut script = scripts::COMMIT.prepare_invoke();
        script
            .key(k.lock(plan))
            .key(k.plan(plan))
            .key(k.tasks(plan))
            .key(k.results(plan))
            .key(k.session(plan))
            .key(k.events(plan))
            .key(k.transcript(plan))
            .key(k.task_ids(plan))
            .key(k.ingested(plan))
            .arg(lock_value)
            .arg(c.head_json)
            .arg(c.result_json)
            .arg(c.session_json)
            .arg(c.session_ttl_secs)
            .arg(c.succeeded_event.to_json())
            .arg(k.channel())
            .arg(c.cost_usd)
            .arg(Self::now())
            .arg(if c.refresh_ttls {
                self.settings.retention_secs
            } else {
                0
            })
            .arg(c.completed_event.to_json())
            .arg(self.settings.event_cap)
            .arg(c.transcript)
            .arg(c.worker.as_str())
            .arg(c.input_tokens)
            .arg(c.output_tokens)
            .arg(c.session_id);
        for (name, n) in c.plan_counters {
            script.arg(*name).arg(*n);
        }
        let v: Vec<Value> = script.invoke_async(&mut self.conn().await?).await?;
        let left = || {
            v.get(1)
                .map(value_string)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        match v.first().map(value_string).as_deref() {
            Some("ok") => {
                // Shift off the count so the rest reads like an acquire's reply.
                let head = parse_head(&v[1..])?;
                Ok(Fenced::Ok(Committed::Next { left: left(), head }))
            }
            Some("done") => Ok(Fenced::Ok(Committed::Done {
                completed: left() == 1,
            })),
            Some("idle") => Ok(Fenced::Ok(Committed::Stopped { left: left() })),
            Some("fenced") | Some("mismatch") => Ok(Fenced::LeaseLost),
            other => Err(StoreError::Protocol(format!("commit returned {other:?}"))),
        }
    }

    /// Announces a task attempt: stores and publishes `events` in order and adds to the plan's
    /// own counters, in one trip (see `lua/start.lua`). `refresh_ttls`: reset the retention
    /// TTLs of the plan hash and event list.
    pub async fn start(
        &self,
        plan: &PlanId,
        events: &[Event],
        plan_counters: &[(&str, i64)],
        refresh_ttls: bool,
    ) -> Result<(), StoreError> {
        let mut script = scripts::START.prepare_invoke();
        script
            .key(self.keys.plan(plan))
            .key(self.keys.events(plan))
            .arg(self.keys.channel())
            .arg(self.settings.event_cap)
            .arg(if refresh_ttls {
                self.settings.retention_secs
            } else {
                0
            })
            .arg(events.len());
        for e in events {
            script.arg(e.to_json());
        }
        for (name, n) in plan_counters {
            script.arg(*name).arg(*n);
        }
        let _: i64 = script.invoke_async(&mut self.conn().await?).await?;
        Ok(())
    }

    /// Stops a plan (`failed`, `cancelled`) with its events, fenced by the lease.
    pub async fn stop_plan(
        &self,
        plan: &PlanId,
        lock_value: &str,
        state: &str,
        reason: &str,
        task_event: Option<&Event>,
        plan_event: &Event,
    ) -> Result<Fenced<()>, StoreError> {
        let k = &self.keys;
        let v: Vec<Value> = scripts::FAIL
            .key(k.lock(plan))
            .key(k.plan(plan))
            .key(k.events(plan))
            .arg(lock_value)
            .arg(state)
            .arg(reason)
            .arg(task_event.map(Event::to_json).unwrap_or_default())
            .arg(plan_event.to_json())
            .arg(k.channel())
            .arg(Self::now())
            .arg(self.settings.event_cap)
            .arg(self.settings.retention_secs)
            .invoke_async(&mut self.conn().await?)
            .await?;
        match v.first().map(value_string).as_deref() {
            Some("ok") => Ok(Fenced::Ok(())),
            Some("fenced") => Ok(Fenced::LeaseLost),
            other => Err(StoreError::Protocol(format!("fail returned {other:?}"))),
        }
    }

    /// Gives the lease back. `Some(true)`: tasks are left and the plan needs a worker again.
    pub async fn release(
        &self,
        plan: &PlanId,
        lock_value: &str,
    ) -> Result<Option<bool>, StoreError> {
        let r: i64 = scripts::RELEASE
            .key(self.keys.lock(plan))
            .key(self.keys.plan(plan))
            .key(self.keys.tasks(plan))
            .arg(lock_value)
            .arg(Self::now())
            .invoke_async(&mut self.conn().await?)
            .await?;
        Ok(match r {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        })
    }

    /// Takes a plan off this worker's in-flight list; `requeue` is `back`, `front` or `` (drop).
    /// The hold's pool-wide counters go with it.
    pub async fn unclaim(
        &self,
        worker: &WorkerId,
        plan: &PlanId,
        requeue: &str,
        tally: &Tally,
    ) -> Result<(), StoreError> {
        let mut script = scripts::UNCLAIM.prepare_invoke();
        script
            .key(self.keys.inflight(worker))
            .key(self.keys.ready())
            .key(self.keys.stats())
            .arg(plan.as_str())
            .arg(requeue);
        for (name, n) in tally.args() {
            script.arg(name).arg(n);
        }
        let _: i64 = script.invoke_async(&mut self.conn().await?).await?;
        Ok(())
    }

    /// Drops an entry of this worker's in-flight list that is not a plan id (written there by
    /// something other than baton).
    pub async fn discard_claim(&self, worker: &WorkerId, raw: &[u8]) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .await?
            .lrem(self.keys.inflight(worker), 1, raw)
            .await?;
        Ok(())
    }

    /// Stores and publishes one event of a plan.
    pub async fn emit(&self, plan: &PlanId, event: &Event) -> Result<(), StoreError> {
        let _: i64 = scripts::EMIT
            .key(self.keys.plan(plan))
            .key(self.keys.events(plan))
            .arg(event.to_json())
            .arg(self.keys.channel())
            .arg(self.settings.event_cap)
            .arg(self.settings.retention_secs)
            .invoke_async(&mut self.conn().await?)
            .await?;
        Ok(())
    }

    /// Adds to counters, pool-wide and (when given) the plan's own.
    pub async fn count(
        &self,
        plan: Option<&PlanId>,
        counters: &[(&str, i64)],
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for (name, n) in counters {
            pipe.hincr(self.keys.stats(), *name, *n).ignore();
            if let Some(p) = plan {
                pipe.hincr(self.keys.plan(p), format!("stat:{name}"), *n)
                    .ignore();
            }
        }
        let _: () = pipe.query_async(&mut self.conn().await?).await?;
        Ok(())
    }

    /// Adds to pool-wide counters only, in one trip (the plan's own were kept by the script
    /// that did the work).
    pub async fn count_pool(&self, tally: &Tally) -> Result<(), StoreError> {
        if tally.is_empty() {
            return Ok(());
        }
        let mut script = scripts::COUNT.prepare_invoke();
        script.key(self.keys.stats());
        for (name, n) in tally.args() {
            script.arg(name).arg(n);
        }
        let _: i64 = script.invoke_async(&mut self.conn().await?).await?;
        Ok(())
    }

    /// Appends a dead letter.
    pub async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(letter).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let _: () = self.conn().await?.lpush(self.keys.dead(), json).await?;
        Ok(())
    }

    /// The committed transcript blob of a plan, if any.
    pub async fn transcript(&self, plan: &PlanId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.conn().await?.get(self.keys.transcript(plan)).await?)
    }

    /// A plan's results so far (JSON), oldest first.
    pub async fn results(&self, plan: &PlanId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()
            .await?
            .lrange(self.keys.results(plan), 0, -1)
            .await?)
    }

    // ---- pool pause (shared rate limit) ----

    /// Pauses claiming pool-wide for `for_ms`. `true` when this call started the pause (an
    /// existing pause is left as it is).
    pub async fn pause(&self, reason: &str, for_ms: u64) -> Result<bool, StoreError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.pause())
            .arg(reason)
            .arg("PX")
            .arg(for_ms.max(1))
            .arg("NX")
            .query_async(&mut self.conn().await?)
            .await?;
        Ok(set.is_some())
    }

    /// How long the pool stays paused, if it is.
    pub async fn paused_for(&self) -> Result<Option<Duration>, StoreError> {
        let ms: i64 = self.conn().await?.pttl(self.keys.pause()).await?;
        Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
    }

    // ---- liveness ----

    /// Records this worker's heartbeat.
    pub async fn heartbeat(&self, worker: &WorkerId) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .await?
            .zadd(
                self.keys.workers(),
                worker.as_str(),
                baton_core::time::now_millis(),
            )
            .await?;
        Ok(())
    }

    /// Workers whose last heartbeat is older than `cutoff_ms`.
    pub async fn silent_workers(&self, cutoff_ms: u64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()
            .await?
            .zrangebyscore(self.keys.workers(), "-inf", format!("({cutoff_ms}"))
            .await?)
    }

    /// Plans in a worker's in-flight list.
    pub async fn inflight(&self, worker: &WorkerId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()
            .await?
            .lrange(self.keys.inflight(worker), 0, -1)
            .await?)
    }

    /// Frees a dead worker's lease on a plan; returns the head task's recovery count (-1: not its lease).
    pub async fn reap_lock(&self, plan: &PlanId, dead: &WorkerId) -> Result<i64, StoreError> {
        Ok(scripts::REAP_LOCK
            .key(self.keys.lock(plan))
            .key(self.keys.tasks(plan))
            .key(self.keys.plan(plan))
            .arg(dead.as_str())
            .invoke_async(&mut self.conn().await?)
            .await?)
    }

    /// Hands a worker's plans and documents back to the pool (-1: it is alive after all).
    pub async fn reap_worker(&self, worker: &WorkerId, cutoff_ms: u64) -> Result<i64, StoreError> {
        Ok(scripts::REAP_WORKER
            .key(self.keys.workers())
            .key(self.keys.inflight(worker))
            .key(self.keys.ingesting(worker))
            .key(self.keys.ready())
            .key(self.keys.submit())
            .arg(worker.as_str())
            .arg(cutoff_ms)
            .invoke_async(&mut self.conn().await?)
            .await?)
    }
}

/// Pool-wide counter increments gathered over a hold, sent in one trip with the hand-back or
/// once they are a second old: the pool's counters are a few hundred milliseconds behind the
/// plans' own (kept in the scripts that do the work), at one trip less per task.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    ints: Vec<(String, i64)>,
    floats: Vec<(String, f64)>,
    since: Option<std::time::Instant>,
}

/// No counts at all (for hand-backs that carry none).
pub static NO_COUNTS: Tally = Tally {
    ints: Vec::new(),
    floats: Vec::new(),
    since: None,
};

impl Tally {
    /// How long unsent counts may wait.
    const MAX_AGE: Duration = Duration::from_secs(1);

    /// True when the oldest unsent count is older than [`Tally::MAX_AGE`].
    pub fn due(&self) -> bool {
        self.since.is_some_and(|t| t.elapsed() >= Self::MAX_AGE)
    }

    /// Script arguments: name, increment pairs (floats always with a decimal point: that is how
    /// the scripts tell them).
    fn args(&self) -> Vec<(String, String)> {
        let ints = self.ints.iter().map(|(k, n)| (k.clone(), n.to_string()));
        let floats = self
            .floats
            .iter()
            .map(|(k, x)| (k.clone(), format!("{x:.9}")));
        ints.chain(floats).collect()
    }

    /// Adds `n` to counter `name`.
    pub fn add(&mut self, name: &str, n: i64) {
        self.since.get_or_insert_with(std::time::Instant::now);
        match self.ints.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v += n,
            None => self.ints.push((name.to_owned(), n)),
        }
    }

    /// Adds `x` to floating-point counter `name`.
    pub fn add_float(&mut self, name: &str, x: f64) {
        self.since.get_or_insert_with(std::time::Instant::now);
        match self.floats.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v += x,
            None => self.floats.push((name.to_owned(), x)),
        }
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.floats.is_empty()
    }
}

/// What a commit left to do.
#[derive(Debug)]
pub enum Committed {
    /// Tasks are left; here is the next one (the lease is still ours).
    Next { left: u64, head: Head },
    /// No task is left: the lease was given back; `completed` when this commit completed the plan.
    Done { completed: bool },
    /// Tasks are left but the plan stopped meanwhile (cancelled): release it.
    Stopped { left: u64 },
}

/// Fields of a commit.
pub struct Commit<'a> {
    /// The head task's JSON as read (see [`Head::raw`]).
    pub head_json: &'a str,
    pub result_json: &'a str,
    pub session_json: &'a str,
    pub session_ttl_secs: u64,
    pub succeeded_event: &'a Event,
    pub completed_event: &'a Event,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub transcript: &'a [u8],
    pub worker: &'a WorkerId,
    pub session_id: &'a str,
    /// Added to the plan's `stat:<name>` counters in the same script.
    pub plan_counters: &'a [(&'a str, i64)],
    /// Reset the plan keys' retention TTLs (once per hold is enough).
    pub refresh_ttls: bool,
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    /// `created`, `appended` or `duplicate`.
    pub status: String,
    pub first_index: u64,
    pub count: u64,
    /// The plan needs to go on the ready list.
    pub schedule: bool,
}

fn value_string(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".into(),
        _ => String::new(),
    }
}

fn parse_head(v: &[Value]) -> Result<Head, StoreError> {
    let task_json = v.get(1).map(value_string).unwrap_or_default();
    let task: StoredTask = serde_json::from_str(&task_json)
        .map_err(|e| StoreError::Protocol(format!("stored task is not valid: {e}")))?;
    let session = v.get(2).map(value_string).unwrap_or_default();
    let mut meta = HashMap::new();
    let rest: Vec<String> = v.iter().skip(3).map(value_string).collect();
    for pair in rest.chunks(2) {
        if let [k, val] = pair {
            meta.insert(k.clone(), val.clone());
        }
    }
    Ok(Head {
        task,
        raw: task_json,
        session,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_failures_are_retried() {
        let dropped: redis::RedisError =
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into();
        assert!(StoreError::Redis(dropped).is_transient());
        let refused = redis::RedisError::from((redis::ErrorKind::Client, "bad command"));
        assert!(!StoreError::Redis(refused).is_transient());
        assert!(!StoreError::Protocol("unexpected".into()).is_transient());
    }
}

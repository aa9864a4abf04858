//! One worker run in this test process (`baton_worker::testing`) against a real `redis-server`
//! of the test's own, its holds running scripted engines instead of the CLI, and what a test
//! reads back from Redis. For behaviours of the worker's own (leases, retries, counters, Redis
//! outages, webhooks at shutdown) that need neither the CLI nor the stand-in.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use baton_core::{Counter, Event, EventKind, Keys, PlanId, PlanState};
use baton_worker::testing::{Harness, Options};
use redis::AsyncCommands;

use crate::pool::strict_event;
use crate::proc::TempDir;
use crate::redis_server::Redis;

/// The prefix every in-process pool uses (each has a Redis of its own).
const PREFIX: &str = "baton";

/// A test's Redis and its in-process worker.
pub struct InProc {
    pub redis: Redis,
    pub dir: TempDir,
    pub keys: Keys,
    /// `None` once drained.
    pub worker: Option<Harness>,
}

impl InProc {
    /// A Redis of its own and a worker with the harness's short times.
    pub fn start() -> Result<Self> {
        Self::start_with(|_| {})
    }

    /// As [`InProc::start`], the worker's options changed by `adjust` first.
    pub fn start_with(adjust: impl FnOnce(&mut Options)) -> Result<Self> {
        Self::start_on(Redis::start()?, adjust)
    }

    /// As [`InProc::start_with`], on `redis`.
    pub fn start_on(redis: Redis, adjust: impl FnOnce(&mut Options)) -> Result<Self> {
        let dir = TempDir::new("inproc");
        let mut opts = Options::new(&redis.url(), PREFIX, dir.path());
        adjust(&mut opts);
        let worker = Harness::start(&opts)?;
        Ok(Self {
            redis,
            dir,
            keys: Keys::new(PREFIX),
            worker: Some(worker),
        })
    }

    /// The running worker.
    ///
    /// # Panics
    /// After [`InProc::drain`].
    pub fn worker(&self) -> &Harness {
        self.worker.as_ref().expect("the worker is running")
    }

    /// Drains the worker and waits until it has handed everything back.
    pub async fn drain(&mut self) -> Result<()> {
        if let Some(w) = self.worker.take() {
            w.drain().await?;
        }
        Ok(())
    }

    pub async fn conn(&self) -> Result<baton_connect::Conn> {
        self.redis.conn().await
    }

    /// `LPUSH`es a document onto the submit list.
    pub async fn submit(&self, doc: &str) -> Result<()> {
        let mut c = self.conn().await?;
        let _: i64 = c.lpush(self.keys.submit(), doc).await?;
        Ok(())
    }

    /// The plan's stored events, each read strictly.
    pub async fn events(&self, plan: &PlanId) -> Result<Vec<Event>> {
        let mut c = self.conn().await?;
        let raw: Vec<String> = c.lrange(self.keys.events(plan), 0, -1).await?;
        raw.iter().map(|r| strict_event(r)).collect()
    }

    /// Waits for the `n`-th (1-based) event of `kind` of the plan.
    pub async fn wait_event(
        &self,
        plan: &PlanId,
        kind: EventKind,
        n: usize,
        within: Duration,
    ) -> Result<Event> {
        let deadline = Instant::now() + within;
        loop {
            let events = self.events(plan).await?;
            if let Some(e) = events.iter().filter(|e| e.kind() == kind).nth(n - 1) {
                return Ok(e.clone());
            }
            if Instant::now() > deadline {
                let kinds: Vec<_> = events.iter().map(|e| e.kind()).collect();
                bail!("no {kind} #{n} of {plan} within {within:?}; events: {kinds:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The plan's state.
    pub async fn state(&self, plan: &PlanId) -> Result<Option<PlanState>> {
        let mut c = self.conn().await?;
        let s: Option<String> = c.hget(self.keys.plan(plan), "state").await?;
        Ok(s.map(|s| s.parse()).transpose()?)
    }

    /// Waits until the plan is in `state`.
    pub async fn wait_state(
        &self,
        plan: &PlanId,
        state: PlanState,
        within: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let now = self.state(plan).await?;
            if now == Some(state) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{plan} is {now:?}, not {state} after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The plan's committed results' task ids, in order.
    pub async fn committed(&self, plan: &PlanId) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let raw: Vec<String> = c.lrange(self.keys.results(plan), 0, -1).await?;
        raw.iter()
            .map(|r| {
                let result: baton_core::records::TaskResult = serde_json::from_str(r)?;
                Ok(result.task_id.to_string())
            })
            .collect()
    }

    /// A pool-wide counter.
    pub async fn stat(&self, counter: Counter) -> Result<i64> {
        let mut c = self.conn().await?;
        let v: Option<i64> = c.hget(self.keys.stats(), counter.to_string()).await?;
        Ok(v.unwrap_or(0))
    }
}

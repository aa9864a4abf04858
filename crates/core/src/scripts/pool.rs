//! The pool's bookkeeping: heartbeats (`beat.lua`), counters (`count.lua`, pool slot) and handing a dead worker's work
//! back (`reap_lock.lua` per plan in its slot, then `reap_worker.lua` in the pool's); keeping
//! the plan index to plans that still exist (`prune_index.lua`).

use redis::{FromRedisValue, ParsingError, ScriptInvocation, Value};

use super::{Env, ScriptCall, BEAT, COUNT, PRUNE_INDEX, REAP_LOCK, REAP_WORKER, TALLY};
use crate::counters::{Counts, PlanTotals};
use crate::ids::{PlanId, WorkerId};

/// `count.lua`: adds to the pool-wide counters in one trip.
#[derive(Debug)]
pub struct Count<'a> {
    pub counts: &'a Counts,
}

impl ScriptCall for Count<'_> {
    type Reply = ();

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = COUNT.prepare_invoke();
        inv.key(env.keys.stats()).key(env.keys.this_minute());
        for (name, n) in self.counts.args() {
            inv.arg(name).arg(n);
        }
        inv
    }
}

/// `reap_lock.lua`: frees a dead worker's lease on a plan and counts a recovery on the task it
/// was running.
#[derive(Debug)]
pub struct ReapLock<'a> {
    pub plan: &'a PlanId,
    pub dead: &'a WorkerId,
}

/// The head task's recovery count after this one; `None` when the dead worker was not running
/// the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recoveries(pub Option<u64>);

impl ScriptCall for ReapLock<'_> {
    type Reply = Recoveries;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = REAP_LOCK.prepare_invoke();
        inv.key(k.lock(self.plan))
            .key(k.tasks(self.plan))
            .key(k.plan(self.plan))
            .arg(self.dead.as_str());
        inv
    }
}

impl FromRedisValue for Recoveries {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        Ok(Self(u64::try_from(i64::from_redis_value(v)?).ok()))
    }
}

/// `reap_worker.lua`: hands a silent worker's claimed plans and half-ingested documents back.
#[derive(Debug)]
pub struct ReapWorker<'a> {
    pub worker: &'a WorkerId,
    /// A heartbeat newer than this (ms since the epoch) means it is alive after all.
    pub cutoff_ms: u64,
}

/// Plans handed back; `None` when the worker turned out to be alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandedBack(pub Option<u64>);

impl ScriptCall for ReapWorker<'_> {
    type Reply = HandedBack;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = REAP_WORKER.prepare_invoke();
        inv.key(k.workers())
            .key(k.inflight(self.worker))
            .key(k.ingesting(self.worker))
            .key(k.ready())
            .key(k.handback())
            .key(k.wake())
            .key(k.worker_info())
            .key(k.plan_keys())
            .key(k.limits())
            .key(k.ready_for(crate::vocab::Priority::High))
            .key(k.key_base())
            .key(k.ready_for(crate::vocab::Priority::Low))
            .arg(self.worker.as_str())
            .arg(self.cutoff_ms);
        inv
    }
}

impl FromRedisValue for HandedBack {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        Ok(Self(u64::try_from(i64::from_redis_value(v)?).ok()))
    }
}

/// `prune_index.lua`: drops plans found expired from the plan index, each only if its score is
/// still the one read with it (a plan submitted again in between stays), and releases the
/// workspaces they held.
#[derive(Debug)]
pub struct PruneIndex<'a> {
    /// (plan id as stored, which may not be UTF-8; score as read).
    pub expired: &'a [(Vec<u8>, String)],
}

impl ScriptCall for PruneIndex<'_> {
    /// Entries removed.
    type Reply = u64;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = PRUNE_INDEX.prepare_invoke();
        let k = &env.keys;
        inv.key(k.plans())
            .key(k.stats_seen())
            .key(k.workspace_owners())
            .key(k.workspace_paths())
            .key(k.plan_workspaces())
            .key(k.plan_keys())
            .key(k.spend_seen());
        for (member, score) in self.expired {
            inv.arg(member).arg(score);
        }
        inv
    }
}

/// `beat.lua`: records a worker's heartbeat at the server's clock and finds the workers silent
/// for longer than `dead_after_ms` by the same clock.
#[derive(Debug)]
pub struct Beat<'a> {
    pub worker: &'a WorkerId,
    pub dead_after_ms: u64,
}

/// The silent workers (ids that do not parse are left out) and the cutoff they were found with
/// (ms since the epoch, server clock), to pass on to [`ReapWorker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub cutoff_ms: u64,
    pub workers: Vec<WorkerId>,
    /// A user paused the pool (`baton pause --all`).
    pub user_paused: bool,
}

impl ScriptCall for Beat<'_> {
    type Reply = Silent;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = BEAT.prepare_invoke();
        inv.key(env.keys.workers())
            .key(env.keys.pause())
            .arg(self.worker.as_str())
            .arg(self.dead_after_ms);
        inv
    }
}

impl FromRedisValue for Silent {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let (cutoff, ids, paused): (i64, Vec<String>, i64) = FromRedisValue::from_redis_value(v)?;
        Ok(Self {
            cutoff_ms: u64::try_from(cutoff).unwrap_or(0),
            workers: ids.iter().filter_map(|w| w.parse().ok()).collect(),
            user_paused: paused == 1,
        })
    }
}

/// `tally.lua`: brings the pool's counters up to a plan's totals (adds what they do not hold
/// yet; sending the same totals again adds nothing).
#[derive(Debug)]
pub struct Tally<'a> {
    pub plan: &'a PlanId,
    pub totals: &'a PlanTotals,
}

impl ScriptCall for Tally<'_> {
    type Reply = ();

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = TALLY.prepare_invoke();
        inv.key(k.stats())
            .key(k.this_minute())
            .key(k.stats_seen())
            .arg(self.plan.as_str());
        for (name, total) in self.totals.args() {
            inv.arg(name).arg(total);
        }
        inv
    }
}

//! Every Redis key and channel baton uses, built in this one module.
//!
//! Global coordination keys share the hash tag `{<prefix>}` so that `BLMOVE` between them and
//! the scripts over them stay in one slot on Redis Cluster. Each plan's keys share the hash tag
//! `{<plan id>}`, so one plan's scripts touch one slot and plans spread across a cluster. No
//! script touches both kinds of key.
//!
//! | key | type | written by | expires |
//! |---|---|---|---|
//! | `{p}:submit` | list of raw documents | any client (`LPUSH`) | never |
//! | `{p}:ingesting:<worker>` | list: documents a worker is validating | the worker | never; reaped if the worker dies |
//! | `{p}:ready` | list of plan ids waiting for a worker | workers | never |
//! | `{p}:inflight:<worker>` | list of plan ids a worker has claimed | the worker | never; reaped if the worker dies |
//! | `{p}:workers` | sorted set: worker id → last heartbeat (ms) | each worker | never |
//! | `{p}:dead` | list of dead letters (JSON) | workers | never |
//! | `{p}:stats` | hash of pool-wide counters | workers | never |
//! | `{p}:pause` | string: why the pool stopped claiming, with a TTL until the reset | workers | at the reset |
//! | `{p}:stats_seen` | hash: plan id → the plan's counter totals already in `{p}:stats` (JSON) | workers | entries pruned with the plan index |
//! | `{p}:plans` | sorted set: every plan id → when it was last submitted to or handed back (ms) | workers | entries pruned by workers once the plan has expired |
//! | `{p}:workspaces` | hash: workspace path → the plan holding it | workers (`claim_workspace.lua` at ingest) | entries released by `prune_index.lua` once the plan has expired |
//! | `{p}:workspace_paths` | sorted set: every held workspace path, score 0 (`ZRANGEBYLEX` finds those below a folder) | workers | with `{p}:workspaces` |
//! | `{p}:plan_workspaces` | hash: plan id → the workspace path it holds (to release it) | workers | with `{p}:workspaces` |
//! | `{p}:minute:<m>` | hash: pool counters added during minute `m` (since the epoch) | workers | 2 hours |
//! | `{p}:schedules` | hash: schedule name → its definition (JSON: cron, zone, plan document) | `baton schedule add`/`remove` | never |
//! | `{p}:schedule_fired` | hash: schedule name → the last tick fired (JSON: tick, plan id, when, missed) | the scheduler (`schedule_fire.lua`) | with the schedule |
//! | `{p}:schedule_runs` | hash: schedule name → the last `run-now` (JSON, as above) | `baton schedule run-now` (`schedule_fire.lua`) | with the schedule |
//! | `{p}:scheduler` | string `<worker>/<token>`: the lease of the one worker that fires schedules | the scheduler | the lease |
//! | `p:{P}:plan` | hash: plan metadata and counters | workers | retention after last use |
//! | `p:{P}:tasks` | list of pending tasks (JSON), first = next | workers | retention |
//! | `p:{P}:task_ids` | set of every task id the plan has had | workers | retention |
//! | `p:{P}:ingested` | set of submission tags already applied (makes ingest idempotent) | workers | retention |
//! | `p:{P}:lock` | string `<worker>/<token>`: the lease | the holder | the lease |
//! | `p:{P}:session` | string: the session record (JSON) | the holder | the session TTL |
//! | `p:{P}:transcript` | string: the committed transcript's base pack (compressed) | the holder | the session TTL |
//! | `p:{P}:transcript_chunks` | list: what each later commit added to it, in order | the holder | the session TTL |
//! | `p:{P}:results` | list of task results (JSON), in task order | the holder | retention |
//! | `p:{P}:events` | list of the plan's events (JSON), in order | workers | retention |
//!
//! The channel `p:events` carries every event as it happens.

use crate::ids::{PlanId, WorkerId};

/// Events kept per plan (the event list is capped to this many, newest kept).
pub const DEFAULT_EVENT_CAP: u64 = 10_000;
/// How long a plan's results, events and metadata outlive its last use, by default (7 days).
pub const DEFAULT_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// The key layout for one prefix (default `baton`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new("baton")
    }
}

impl Keys {
    /// Keys under `prefix`. The prefix must be in the id character set (the worker and the
    /// producer check it through clap).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix, e.g. `baton`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn global(&self, name: &str) -> String {
        format!("{{{}}}:{name}", self.prefix)
    }

    fn of_plan(&self, plan: &PlanId, name: &str) -> String {
        format!("{}:{{{plan}}}:{name}", self.prefix)
    }

    /// Where clients `LPUSH` plan documents.
    pub fn submit(&self) -> String {
        self.global("submit")
    }
    /// Half-ingested documents (tagged) the reaper took from dead workers' ingesting lists;
    /// workers take from it before the submit list. Only workers write it: a tag is trusted
    /// only on a document taken from here, never on one a client put on `submit`.
    pub fn handback(&self) -> String {
        self.global("handback")
    }
    /// Documents one worker has taken off `submit` and not yet applied.
    pub fn ingesting(&self, worker: &WorkerId) -> String {
        self.global(&format!("ingesting:{worker}"))
    }
    /// Plan ids of normal priority waiting for a worker; consumers take from the right end.
    pub fn ready(&self) -> String {
        self.global("ready")
    }
    /// The ready list of plans of `priority` (normal: [`Keys::ready`]).
    pub fn ready_for(&self, priority: crate::vocab::Priority) -> String {
        match priority {
            crate::vocab::Priority::High => self.global("ready:high"),
            crate::vocab::Priority::Normal => self.ready(),
            crate::vocab::Priority::Low => self.global("ready:low"),
        }
    }
    /// Every ready list, highest priority first.
    pub fn ready_lists(&self) -> [String; 3] {
        use crate::vocab::Priority;
        [Priority::High, Priority::Normal, Priority::Low].map(|p| self.ready_for(p))
    }
    /// At most one token, there while a ready list has plans: what idle slots block on.
    pub fn wake(&self) -> String {
        self.global("wake")
    }
    /// Plans not to be claimed before a time: `<priority>:<plan id>` scored by that time (ms,
    /// server clock); claims move the due ones to their ready list.
    pub fn delayed(&self) -> String {
        self.global("delayed")
    }
    /// Counts claims: the share of claims that go to lower priorities first.
    pub fn claim_seq(&self) -> String {
        self.global("claim_seq")
    }
    /// Plan ids one worker has claimed.
    pub fn inflight(&self, worker: &WorkerId) -> String {
        self.global(&format!("inflight:{worker}"))
    }
    /// Heartbeats of live workers.
    pub fn workers(&self) -> String {
        self.global("workers")
    }
    /// Hash: worker id -> what the worker said of itself at start-up, as JSON (`version`,
    /// `mode`, `sandbox`: `boxed` or `unconfined`), for the dashboard. Written by the worker,
    /// removed with its heartbeat by `reap_worker.lua`.
    pub fn worker_info(&self) -> String {
        self.global("worker_info")
    }
    /// Rejected documents and failed tasks, kept for inspection and requeue.
    pub fn dead(&self) -> String {
        self.global("dead")
    }
    /// Pool-wide counters.
    pub fn stats(&self) -> String {
        self.global("stats")
    }
    /// What the pool's counters already hold of each plan's totals (plan id → JSON).
    pub fn stats_seen(&self) -> String {
        self.global("stats_seen")
    }
    /// A pool-wide pause (rate limit) with its reason.
    pub fn pause(&self) -> String {
        self.global("pause")
    }
    /// Every plan, scored by when it was last submitted to or handed back (for listings, and
    /// for a watcher catching up); workers drop a plan from it once its keys have expired.
    pub fn plans(&self) -> String {
        self.global("plans")
    }
    /// Which plan holds each workspace (path → plan id): a workspace belongs to one live plan,
    /// claimed at ingest before the plan is written, released when the plan expires.
    pub fn workspace_owners(&self) -> String {
        self.global("workspaces")
    }
    /// Every held workspace path (a sorted set, all scores 0), so a claim finds the paths
    /// inside a folder with `ZRANGEBYLEX`.
    pub fn workspace_paths(&self) -> String {
        self.global("workspace_paths")
    }
    /// The workspace each plan holds (plan id → path), so an expired plan's claim is released.
    pub fn plan_workspaces(&self) -> String {
        self.global("plan_workspaces")
    }
    /// Pool-wide limits on running plans per concurrency key (key → N; `repo:*` is the
    /// default for every `repo:` key without its own).
    pub fn limits(&self) -> String {
        self.global("limits")
    }
    /// Each plan's concurrency key (plan id → key), set when the plan is created, so that
    /// `claim.lua` (pool slot) knows it without reading the plan's hash (another slot).
    pub fn plan_keys(&self) -> String {
        self.global("plan_keys")
    }
    /// The start of the per-key keys: `<base>running:<key>` (hash: plan id → claimed copies,
    /// one field per running plan) and `<base>waiting:<key>` (list of `priority:plan` parked
    /// while the key is at its limit).
    pub fn key_base(&self) -> String {
        self.global("key:")
    }
    /// Plans running under `key`.
    pub fn key_running(&self, key: &str) -> String {
        format!("{}running:{key}", self.key_base())
    }
    /// Plans parked while `key` is at its limit, oldest first.
    pub fn key_waiting(&self, key: &str) -> String {
        format!("{}waiting:{key}", self.key_base())
    }
    /// Every concurrency key a claim has seen (a set): what `baton limit list` walks.
    pub fn concurrency_keys(&self) -> String {
        self.global("concurrency_keys")
    }
    /// Daily spend limits per concurrency key (key → USD).
    pub fn budgets(&self) -> String {
        self.global("budgets")
    }
    /// The start of the daily spend keys: `<base><day>` (day number since the epoch, UTC) is
    /// a hash of concurrency key → USD spent that day, kept three days.
    pub fn spend_base(&self) -> String {
        self.global("spend:")
    }
    /// The cost total each plan with a key reported last (plan id → USD): what makes a
    /// spend report idempotent.
    pub fn spend_seen(&self) -> String {
        self.global("spend_seen")
    }
    /// The pool counters added during minute `minute` since the epoch (the dashboard's
    /// timeline).
    pub fn minute(&self, minute: u64) -> String {
        self.global(&format!("minute:{minute}"))
    }
    /// The current minute's counters.
    pub fn this_minute(&self) -> String {
        self.minute(crate::time::now_millis() / 60_000)
    }
    /// Recurring plans: schedule name -> its definition (JSON).
    pub fn schedules(&self) -> String {
        self.global("schedules")
    }
    /// Schedule name -> the last tick it fired (JSON).
    pub fn schedule_fired(&self) -> String {
        self.global("schedule_fired")
    }
    /// Schedule name -> its last `baton schedule run-now` (JSON).
    pub fn schedule_runs(&self) -> String {
        self.global("schedule_runs")
    }
    /// The lease of the one worker firing schedules: `<worker>/<token>`, fenced like a plan's.
    pub fn scheduler(&self) -> String {
        self.global("scheduler")
    }
    /// A plan's metadata hash.
    pub fn plan(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "plan")
    }
    /// A plan's pending tasks.
    pub fn tasks(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "tasks")
    }
    /// Every task id a plan has had.
    pub fn task_ids(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "task_ids")
    }
    /// Submission tags already applied to a plan.
    pub fn ingested(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "ingested")
    }
    /// A plan's lease lock.
    pub fn lock(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "lock")
    }
    /// A plan's Claude session record.
    pub fn session(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "session")
    }
    /// A plan's committed transcript: the base pack.
    pub fn transcript(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "transcript")
    }
    /// What each commit after the base pack added to the transcript, oldest first.
    pub fn transcript_chunks(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "transcript_chunks")
    }
    /// A plan's task results.
    pub fn results(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "results")
    }
    /// A plan's events, kept durably.
    pub fn events(&self, plan: &PlanId) -> String {
        self.of_plan(plan, "events")
    }
    /// The pub/sub channel of all events.
    pub fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_documented_hash_tags() {
        let k = Keys::default();
        let p: PlanId = "p1".parse().unwrap();
        let w: WorkerId = "w1".parse().unwrap();
        assert_eq!(k.submit(), "{baton}:submit");
        assert_eq!(k.inflight(&w), "{baton}:inflight:w1");
        assert_eq!(k.lock(&p), "baton:{p1}:lock");
        assert_eq!(k.channel(), "baton:events");
        assert_eq!(Keys::new("x").ready(), "{x}:ready");
        assert_eq!(k.workspace_owners(), "{baton}:workspaces");
    }
}

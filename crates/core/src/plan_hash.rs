//! The plan hash `p:{P}:plan`: its field names ([`PlanField`], named once here and spelled the
//! same in the Lua scripts) and a typed view of it ([`PlanHash`]) for whoever reads it.

use std::collections::BTreeMap;

use crate::counters::Counter;
use crate::ids::{ClaudeSessionId, PlanId, WorkerId};
use crate::plan::PlanOptions;
use crate::repo::RepoSpec;
use crate::vocab::{closed_enum, PlanState};

/// Prefix of a plan's own counters in its hash: `stat:<counter>`.
pub const STAT_PREFIX: &str = "stat:";

closed_enum! {
    /// A field of the plan hash (besides the `stat:<counter>` fields).
    pub enum PlanField ("plan field") {
        PlanId = "plan_id",
        /// Relative to the worker's workspace root.
        Workspace = "workspace",
        /// The plan's options (JSON), replaced by a follow-up that carries options.
        Options = "options",
        /// A [`PlanState`].
        State = "state",
        CreatedAt = "created_at",
        UpdatedAt = "updated_at",
        /// The index the next accepted task gets.
        NextIndex = "next_index",
        /// Tasks committed.
        Done = "done",
        CostUsd = "cost_usd",
        InputTokens = "input_tokens",
        OutputTokens = "output_tokens",
        /// The session of the last committed task (kept after the session record expires).
        SessionId = "session_id",
        /// The worker that committed the last task.
        LastWorker = "last_worker",
        /// The worker that took the lease last (the reaper reads it).
        Holder = "holder",
        /// Why the plan stopped.
        LastError = "last_error",
        /// `1` while the plan id is on the ready list or held: nothing schedules it twice.
        Scheduled = "scheduled",
        /// Events stored so far: the next event's `seq`.
        EventSeq = "event_seq",
        /// The pool's `--retention` when the plan was created: what `baton cancel` and
        /// `baton retry` keep the plan for.
        RetentionSecs = "retention_secs",
        /// The pool's event cap when the plan was created.
        EventCap = "event_cap",
        /// The plan's git repository (a `RepoSpec` as JSON), when it has one.
        Repo = "repo",
        /// The commit recorded with the last committed task (a plan with a repository): the
        /// files the next task starts from.
        Checkpoint = "checkpoint",
        /// `1` when a pause (`baton pause --now`) stops the running task too.
        PauseNow = "pause_now",
        /// Why the plan was paused.
        PauseReason = "pause_reason",
        /// The task a paused review waits on (its id).
        ReviewTask = "review_task",
        /// The checkpoint before the task under review: where a rejection rewinds the files.
        ReviewBase = "review_base",
        /// The reviewer's note for the next task's prompt (`baton approve --note`), taken by
        /// the commit of that task.
        ReviewNote = "review_note",
        /// `high`, `normal` or `low` (absent: normal).
        Priority = "priority",
        /// Claimed only from this time on (ms since the epoch, server clock).
        NotBefore = "not_before",
        /// The plans this one waits for (a JSON array of plan ids).
        After = "after",
        /// The key the plan counts against in pool-wide limits and team budgets (see
        /// [`crate::limits`]), set when the plan is created.
        ConcurrencyKey = "concurrency_key",
        /// A budget raised by `baton budget PLAN --usd` (USD): in force over the options'
        /// `max_budget_usd` until a follow-up's options replace them.
        BudgetUsd = "budget_usd",
        /// For a plan paused because its key's daily budget is spent: that key (the plan goes
        /// on by itself the next UTC day, or when the budget is raised).
        PauseKey = "pause_key",
        /// The W3C `traceparent` of the plan's root span (OpenTelemetry): set once, by the
        /// first hold of a worker that exports traces, never overwritten; every later hold,
        /// on any worker, is its child.
        Trace = "trace",
    }
}

/// Where a plan keeps its own copy of each counter: named here, with the hash's other fields
/// (`counters` names the counters and knows nothing of the hash).
impl Counter {
    /// The field of a plan's own copy of this counter in its hash.
    pub fn plan_field(self) -> String {
        format!("{STAT_PREFIX}{}", self.as_str())
    }

    /// The plan hash field holding a plan's total of this counter: its cost and tokens are the
    /// plan's `cost_usd`, `input_tokens` and `output_tokens` (kept once, not again as
    /// `stat:` counters), the other counters `stat:<name>`.
    pub fn total_field(self) -> String {
        match self {
            Self::CostUsd => PlanField::CostUsd.as_str().to_owned(),
            Self::InputTokens => PlanField::InputTokens.as_str().to_owned(),
            Self::OutputTokens => PlanField::OutputTokens.as_str().to_owned(),
            other => other.plan_field(),
        }
    }
}

/// The plan hash, typed. Fields that are absent or unreadable read as their default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanHash {
    pub plan_id: Option<PlanId>,
    pub workspace: Option<String>,
    /// `None` when the plan has no options (or they no longer parse).
    pub options: Option<PlanOptions>,
    pub state: Option<PlanState>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub next_index: u64,
    pub done: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub session_id: Option<ClaudeSessionId>,
    pub last_worker: Option<WorkerId>,
    pub holder: Option<WorkerId>,
    pub last_error: Option<String>,
    pub scheduled: bool,
    pub event_seq: u64,
    pub retention_secs: Option<u64>,
    pub event_cap: Option<u64>,
    pub repo: Option<RepoSpec>,
    pub checkpoint: Option<String>,
    pub pause_reason: Option<String>,
    pub review_task: Option<String>,
    pub review_note: Option<String>,
    pub priority: Option<crate::vocab::Priority>,
    pub not_before_ms: Option<u64>,
    pub after: Vec<PlanId>,
    pub concurrency_key: Option<String>,
    /// The raised budget, already applied to `options.max_budget_usd`.
    pub budget_usd: Option<f64>,
    pub pause_key: Option<String>,
    /// The root span's `traceparent` (`00-<trace id>-<span id>-01`), once a tracing worker
    /// held the plan.
    pub trace: Option<String>,
    /// The plan's own counters.
    pub stats: BTreeMap<Counter, i64>,
}

impl PlanHash {
    /// Reads the hash from its field/value pairs (`HGETALL`, or a script's partial reply).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut h = Self::default();
        for (k, v) in pairs {
            h.set(k.as_ref(), v.as_ref());
        }
        if let Some(b) = h.budget_usd {
            h.options
                .get_or_insert_with(PlanOptions::default)
                .max_budget_usd = Some(b);
        }
        h
    }

    fn set(&mut self, field: &str, v: &str) {
        if let Some(name) = field.strip_prefix(STAT_PREFIX) {
            // A counter whose total is a plan field of its own (tokens, cost) is read there: a
            // `stat:` copy left by an older worker stopped growing.
            if let (Ok(c), Ok(n)) = (name.parse::<Counter>(), v.parse::<i64>()) {
                if c.total_field() == c.plan_field() {
                    self.stats.insert(c, n);
                }
            }
            return;
        }
        let Ok(field) = field.parse::<PlanField>() else {
            return;
        };
        let text = || (!v.is_empty()).then(|| v.to_owned());
        let num = || v.parse::<u64>().unwrap_or(0);
        match field {
            PlanField::PlanId => self.plan_id = v.parse().ok(),
            PlanField::Workspace => self.workspace = text(),
            PlanField::Options => self.options = serde_json::from_str(v).ok(),
            PlanField::State => self.state = v.parse().ok(),
            PlanField::CreatedAt => self.created_at = text(),
            PlanField::UpdatedAt => self.updated_at = text(),
            PlanField::NextIndex => self.next_index = num(),
            PlanField::Done => self.done = num(),
            PlanField::CostUsd => self.cost_usd = v.parse().unwrap_or(0.0),
            // The plan's token totals are its counters of them too (kept once).
            PlanField::InputTokens => {
                self.input_tokens = num();
                self.stats
                    .insert(Counter::InputTokens, v.parse().unwrap_or(0));
            }
            PlanField::OutputTokens => {
                self.output_tokens = num();
                self.stats
                    .insert(Counter::OutputTokens, v.parse().unwrap_or(0));
            }
            PlanField::SessionId => self.session_id = v.parse().ok(),
            PlanField::LastWorker => self.last_worker = v.parse().ok(),
            PlanField::Holder => self.holder = v.parse().ok(),
            PlanField::LastError => self.last_error = text(),
            PlanField::Scheduled => self.scheduled = v == "1",
            PlanField::EventSeq => self.event_seq = num(),
            PlanField::RetentionSecs => self.retention_secs = v.parse().ok(),
            PlanField::EventCap => self.event_cap = v.parse().ok(),
            PlanField::Repo => self.repo = serde_json::from_str(v).ok(),
            PlanField::Checkpoint => self.checkpoint = text(),
            PlanField::PauseNow | PlanField::ReviewBase => {}
            PlanField::PauseReason => self.pause_reason = text(),
            PlanField::ReviewTask => self.review_task = text(),
            PlanField::ReviewNote => self.review_note = text(),
            PlanField::Priority => self.priority = v.parse().ok(),
            PlanField::NotBefore => self.not_before_ms = v.parse().ok(),
            PlanField::After => self.after = serde_json::from_str(v).unwrap_or_default(),
            PlanField::ConcurrencyKey => self.concurrency_key = text(),
            PlanField::BudgetUsd => self.budget_usd = v.parse().ok().filter(|b: &f64| *b > 0.0),
            PlanField::PauseKey => self.pause_key = text(),
            PlanField::Trace => self.trace = text(),
        }
    }

    /// The plan's trace id (32 hex digits), from its root's `traceparent`.
    pub fn trace_id(&self) -> Option<&str> {
        let id = self.trace.as_deref()?.split('-').nth(1)?;
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
    }

    /// The id of the task a plan awaiting review waits on.
    pub fn review_task_id(&self) -> Option<String> {
        let raw = self.review_task.as_deref()?;
        let task: crate::records::StoredTask = serde_json::from_str(raw).ok()?;
        Some(task.id.to_string())
    }

    /// True when the hash had no fields at all (no such plan, or past its retention).
    pub fn is_missing(&self) -> bool {
        *self == Self::default()
    }

    /// The options in force (defaults when the plan set none).
    pub fn options_or_default(&self) -> PlanOptions {
        self.options.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_reads_typed_and_ignores_what_it_does_not_know() {
        let h = PlanHash::from_pairs([
            ("plan_id", "p1"),
            ("state", "running"),
            ("cost_usd", "0.25"),
            ("done", "3"),
            ("session_id", "6bbba7b0-f321-478c-b8a3-4f20b5839a74"),
            ("options", r#"{"model":"sonnet"}"#),
            ("stat:handoffs", "2"),
            ("stat:no_such_counter", "9"),
            ("mystery", "x"),
            ("scheduled", "1"),
        ]);
        assert_eq!(h.state, Some(PlanState::Running));
        assert_eq!((h.done, h.cost_usd, h.scheduled), (3, 0.25, true));
        assert!(h.session_id.is_some());
        assert_eq!(h.options_or_default().model.as_deref(), Some("sonnet"));
        assert_eq!(h.stats.get(&Counter::Handoffs), Some(&2));
        assert_eq!(h.stats.len(), 1);
        assert!(PlanHash::from_pairs(Vec::<(String, String)>::new()).is_missing());
    }

    #[test]
    fn token_counters_are_the_plans_token_fields_whatever_a_stale_stat_copy_says() {
        for pairs in [
            [("input_tokens", "50"), ("stat:input_tokens", "7")],
            [("stat:input_tokens", "7"), ("input_tokens", "50")],
        ] {
            let h = PlanHash::from_pairs(pairs);
            assert_eq!(h.input_tokens, 50);
            assert_eq!(h.stats.get(&Counter::InputTokens), Some(&50));
        }
    }
}

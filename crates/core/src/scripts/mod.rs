//! The Lua scripts that change several keys at once, with what each takes and returns.
//!
//! Each script lives in `lua/<name>.lua` with a KEYS/ARGV/Returns header, touches keys of one
//! hash slot only (a plan's, or the pool's), and checks the lease token before writing where a
//! stale worker could interfere. Scripts marked `prelude = true` get `lua/prelude.lua` (`emit`,
//! `keep_for`, `add_counts`, `plan_limits`, `append_holder_fields`) prepended.
//!
//! Every script has a call type here (one module per group: [`ingest`], [`hold`], [`task`],
//! [`pool`], [`control`]) that implements [`ScriptCall`]: it builds the invocation from typed
//! values, and names the typed reply (a `FromRedisValue`) it decodes to. Workers, the `baton`
//! CLI and the tests all call scripts through these, so the argument order and the reply
//! format are written down once.

pub mod control;
pub mod hold;
pub mod ingest;
pub mod limits;
pub mod pool;
pub mod schedule;
pub mod task;

use std::sync::LazyLock;

use redis::{FromRedisValue, ParsingError, Script, ScriptInvocation, Value};

use crate::keys::{Keys, DEFAULT_EVENT_CAP, DEFAULT_RETENTION_SECS};

const PRELUDE: &str = include_str!("../../lua/prelude.lua");

macro_rules! scripts {
    ($($(#[$doc:meta])* $name:ident = $file:literal, prelude = $prelude:literal;)*) => {
        $(
            $(#[$doc])*
            pub static $name: LazyLock<Script> = LazyLock::new(|| {
                let body = include_str!(concat!("../../lua/", $file));
                if $prelude { Script::new(&format!("{PRELUDE}\n{body}")) } else { Script::new(body) }
            });
        )*

        /// Every script with its file name (without `.lua`): for tools that read `EVALSHA`
        /// traffic, such as the benchmark's command count.
        pub fn named() -> Vec<(&'static str, &'static Script)> {
            vec![$((strip_lua($file), &*$name),)*]
        }

        #[cfg(test)]
        const SOURCES: &[(&str, &str)] = &[$(($file, include_str!(concat!("../../lua/", $file))),)*];
    };
}

const fn strip_lua(file: &'static str) -> &'static str {
    match file.as_bytes() {
        [rest @ .., b'.', b'l', b'u', b'a'] => match std::str::from_utf8(rest) {
            Ok(s) => s,
            Err(_) => file,
        },
        _ => file,
    }
}

scripts! {
    /// Applies a validated document to its plan (plan slot).
    INGEST = "ingest.lua", prelude = true;
    /// Ends an ingest: drops the document, schedules the plan (pool slot).
    FINISH_INGEST = "finish_ingest.lua", prelude = true;
    /// Claims the next plan by priority, after moving due delayed plans (pool slot).
    CLAIM = "claim.lua", prelude = true;
    /// Takes a plan's lease and reads its next task (plan slot).
    ACQUIRE = "acquire.lua", prelude = true;
    /// Announces a task attempt: its events and the plan's counters (plan slot).
    START = "start.lua", prelude = true;
    /// Adds to pool-wide counters (pool slot).
    COUNT = "count.lua", prelude = true;
    /// Renews a lease (plan slot).
    RENEW = "renew.lua", prelude = false;
    /// Commits a task result and returns the next task or gives the lease back, fenced (plan slot).
    COMMIT = "commit.lua", prelude = true;
    /// Stops a plan on a failed task or a spent budget, fenced (plan slot).
    FAIL = "fail.lua", prelude = true;
    /// Gives a lease back (plan slot).
    RELEASE = "release.lua", prelude = false;
    /// Takes a plan off an in-flight list, optionally requeueing it (pool slot).
    UNCLAIM = "unclaim.lua", prelude = true;
    /// Stores and publishes one plan event (plan slot).
    EMIT = "emit.lua", prelude = true;
    /// Frees a dead worker's lease on a plan (plan slot).
    REAP_LOCK = "reap_lock.lua", prelude = false;
    /// Hands a dead worker's plans and documents back (pool slot).
    REAP_WORKER = "reap_worker.lua", prelude = true;
    /// Puts a failed plan back in service, once per action document (plan slot).
    RETRY = "retry.lua", prelude = true;
    /// Cancels a plan (plan slot).
    CANCEL = "cancel.lua", prelude = true;
    /// Pauses a plan (plan slot).
    PAUSE = "pause.lua", prelude = true;
    /// Resumes a paused plan, once per action document (plan slot).
    RESUME = "resume.lua", prelude = true;
    /// Lets a plan awaiting review go on, once per action document (plan slot).
    APPROVE = "approve.lua", prelude = true;
    /// Runs a task under review again with the reviewer's note, once per document (plan slot).
    REJECT = "reject.lua", prelude = true;
    /// Sets or removes a limit per concurrency key and lets parked plans go (pool slot).
    LIMIT = "limit.lua", prelude = true;
    /// Adds a keyed plan's spend to its key's day and reads the key's budget (pool slot).
    SPEND = "spend.lua", prelude = false;
    /// Sets or removes a key's daily budget and lets its paused plans go (pool slot).
    KEY_BUDGET = "key_budget.lua", prelude = true;
    /// Raises a plan's budget and resumes it from a budget pause, once per document (plan slot).
    BUDGET = "budget.lua", prelude = true;
    /// Pauses or resumes the pool (pool slot).
    POOL_PAUSE = "pool_pause.lua", prelude = false;
    /// Replaces a transcript's base and chunks by one pack, fenced (plan slot).
    COMPACT = "compact.lua", prelude = false;
    /// A worker's heartbeat at the server's clock; returns the silent workers (pool slot).
    BEAT = "beat.lua", prelude = false;
    /// Brings the pool's counters up to a plan's totals (pool slot).
    TALLY = "tally.lua", prelude = true;
    /// Drops expired plans from the plan index, releasing their workspaces (pool slot).
    PRUNE_INDEX = "prune_index.lua", prelude = false;
    /// Claims a plan's workspace at ingest, refusing one another live plan holds (pool slot).
    CLAIM_WORKSPACE = "claim_workspace.lua", prelude = false;
    /// Takes, renews or gives back the scheduler's lease (pool slot).
    SCHEDULE_LEASE = "schedule_lease.lua", prelude = false;
    /// Fires one tick of a schedule (or a run-now): submits its document, once (pool slot).
    SCHEDULE_FIRE = "schedule_fire.lua", prelude = false;
}

/// What every script call needs besides its own arguments: the key layout and the pool's
/// limits (workers take them from their flags; clients use the defaults, and the scripts they
/// call prefer the limits recorded in the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub keys: Keys,
    /// Events kept per plan.
    pub event_cap: u64,
    /// How long a plan's keys outlive its last use, in seconds.
    pub retention_secs: u64,
}

impl Env {
    /// The layout under `keys`, with the default limits.
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            event_cap: DEFAULT_EVENT_CAP,
            retention_secs: DEFAULT_RETENTION_SECS,
        }
    }

    /// The retention argument of a script that resets TTLs only when `refresh` (`0` leaves them).
    pub(crate) fn retention_if(&self, refresh: bool) -> u64 {
        if refresh {
            self.retention_secs
        } else {
            0
        }
    }
}

/// One call of one script: its keys and arguments, and the type its reply decodes to.
pub trait ScriptCall {
    /// The decoded reply.
    type Reply: FromRedisValue;
    /// The script with this call's keys and arguments, ready to invoke.
    fn invocation(&self, env: &Env) -> ScriptInvocation<'static>;
}

/// A script reply read word by word (`{'ok', ...}`, `{'err', ...}`, or a number).
pub(crate) struct Words(Vec<Value>);

impl Words {
    pub(crate) fn of(v: Value) -> Result<Self, ParsingError> {
        match v {
            Value::Array(items) => Ok(Self(items)),
            other => Err(format!("a baton script returned {other:?}, not a list").into()),
        }
    }

    /// Word `i` as text ('' when absent).
    pub(crate) fn text(&self, i: usize) -> String {
        self.0.get(i).map(text).unwrap_or_default()
    }

    /// Word `i` as a number (0 when absent or not a number).
    pub(crate) fn num(&self, i: usize) -> u64 {
        self.text(i).parse().unwrap_or(0)
    }

    /// The words from `i` on.
    pub(crate) fn rest(&self, i: usize) -> &[Value] {
        self.0.get(i..).unwrap_or(&[])
    }

    /// An error for a reply whose first word is unexpected.
    pub(crate) fn unexpected(&self, script: &str) -> ParsingError {
        format!("{script}.lua returned {:?}", self.text(0)).into()
    }
}

/// A reply value as text.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".into(),
        _ => String::new(),
    }
}

/// Prefix of a document that a worker has taken for ingest: `baton-tag:<uuid>\n<document>`.
/// The tag makes ingest idempotent when a crashed worker's document is ingested again; it can
/// never start a JSON document, so a tagged entry and a raw one cannot be confused. Workers
/// trust a tag only on an entry the reaper handed back (`Keys::handback`): one a client puts
/// on the submit list is dead-lettered, since a copied or invented tag could otherwise make
/// ingest take a new document for one already applied and drop it.
pub const INGEST_TAG_PREFIX: &str = "baton-tag:";

/// Splits an ingest entry into its tag (if it has one) and the document.
pub fn split_tagged(entry: &[u8]) -> (Option<&str>, &[u8]) {
    let Some(rest) = entry.strip_prefix(INGEST_TAG_PREFIX.as_bytes()) else {
        return (None, entry);
    };
    match rest.iter().position(|b| *b == b'\n') {
        Some(nl) => match std::str::from_utf8(&rest[..nl]) {
            Ok(tag) if uuid::Uuid::parse_str(tag).is_ok() => (Some(tag), &rest[nl + 1..]),
            _ => (None, entry),
        },
        None => (None, entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_and_untagged_documents_pass_through() {
        let e = b"baton-tag:5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11\n{\"tasks\":[]}";
        let (tag, doc) = split_tagged(e);
        assert_eq!(tag, Some("5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11"));
        assert_eq!(doc, b"{\"tasks\":[]}");
        assert_eq!(split_tagged(b"{}"), (None, &b"{}"[..]));
        assert_eq!(split_tagged(b"baton-tag:nope\n{}").0, None);
    }

    #[test]
    fn every_script_loads_under_its_file_name() {
        let all = named();
        assert_eq!(all.len(), SOURCES.len());
        assert!(all.iter().any(|(n, _)| *n == "commit"));
        for (_, s) in all {
            assert_eq!(s.get_hash().len(), 40);
        }
    }

    /// Events are built in Rust, from the typed structs of `event`; a script only adds what it
    /// alone knows with `emit_with` (cjson), never writes an event's JSON itself.
    #[test]
    fn scripts_build_no_event_json() {
        for (file, src) in SOURCES {
            for line in src.lines().filter(|l| !l.trim_start().starts_with("--")) {
                assert!(
                    !line.contains("\"kind\""),
                    "{file} builds an event by hand: {line}"
                );
            }
        }
    }

    /// The scripts spell plan fields, states and requeue positions by hand: every quoted word in
    /// them must be a name this crate knows (so a typo in a field name fails here, not in a
    /// plan that silently never gets scheduled).
    #[test]
    fn scripts_use_only_names_of_the_closed_vocabulary() {
        use crate::plan_hash::{PlanField, STAT_PREFIX};
        use crate::vocab::{PlanState, Requeue};
        // Words the scripts use that are not names of baton's own: the reply words, and the
        // transcript modes of a commit.
        const REPLIES: &[&str] = &[
            "ok",
            "err",
            "busy",
            "idle",
            "fenced",
            "mismatch",
            "done",
            "duplicate",
            "created",
            "appended",
            "changed",
            "full",
            "append",
            "none",
            "later",
            "review",
            // Lua's type names.
            "string",
            "number",
            "table",
            // The separator of a delayed entry, `<priority>:<plan id>`.
            ":",
            // Concurrency keys: the repo default's start, the per-key keys, a budget pause.
            "repo:",
            "running:",
            "waiting:",
            "budget",
        ];
        let mut sources: Vec<(&str, &str)> = SOURCES.to_vec();
        sources.push(("prelude.lua", PRELUDE));
        for (file, src) in sources {
            for line in src.lines().filter(|l| !l.trim_start().starts_with("--")) {
                let line = line.replace("\\'", "");
                // Quoted words that look like names (messages and Redis arguments do not).
                let names = line
                    .split('\'')
                    .skip(1)
                    .step_by(2)
                    .filter(|w| !w.is_empty())
                    .filter(|w| {
                        w.chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':')
                    });
                for word in names {
                    let known = REPLIES.contains(&word)
                        || word == STAT_PREFIX
                        || word
                            .strip_prefix(STAT_PREFIX)
                            .is_some_and(|c| c.parse::<crate::counters::Counter>().is_ok())
                        || word.parse::<PlanField>().is_ok()
                        || word.parse::<PlanState>().is_ok()
                        || word.parse::<Requeue>().is_ok()
                        || word.parse::<crate::vocab::Priority>().is_ok();
                    assert!(known, "{file}: {word:?} is not a known name: {line}");
                }
            }
        }
    }
}

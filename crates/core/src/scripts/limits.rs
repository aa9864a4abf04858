//! Limits per concurrency key (`limit.lua`), spend per key and day (`spend.lua`), daily budgets
//! per key (`key_budget.lua`), all in the pool's slot; and a plan's own budget raised
//! (`budget.lua`, the plan's slot, applied from an action document). See [`crate::limits`].

use redis::{FromRedisValue, ParsingError, ScriptInvocation, Value};

use super::control::{resuming, ActionReply, Resume};
use super::{Env, ScriptCall, Words, BUDGET, KEY_BUDGET, LIMIT, SPEND};
use crate::event::Event;
use crate::ids::PlanId;
use crate::vocab::Priority;

/// `limit.lua`: sets (`Some(n)`) or removes (`None`) the limit on `key`'s running plans.
/// Replies with the number of parked plans let go.
#[derive(Debug)]
pub struct SetLimit<'a> {
    /// A key, or [`crate::limits::DEFAULT_REPO_KEY`].
    pub key: &'a str,
    pub limit: Option<u64>,
}

impl ScriptCall for SetLimit<'_> {
    type Reply = u64;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = LIMIT.prepare_invoke();
        inv.key(k.limits())
            .key(k.ready_for(Priority::High))
            .key(k.ready())
            .key(k.ready_for(Priority::Low))
            .key(k.wake())
            .key(k.key_base())
            .key(k.concurrency_keys())
            .arg(self.key)
            .arg(self.limit.map(|n| n.to_string()).unwrap_or_default());
        inv
    }
}

/// `spend.lua`: reports a keyed plan's cost total; replies with its key's day.
#[derive(Debug)]
pub struct Spend<'a> {
    pub key: &'a str,
    pub plan: &'a PlanId,
    /// The plan's cost so far (USD).
    pub total_usd: f64,
}

/// A concurrency key's spend today and its daily budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyDay {
    pub spent_usd: f64,
    pub budget_usd: Option<f64>,
    /// The start of the next UTC day (ms since the epoch, server clock).
    pub next_day_ms: u64,
}

impl KeyDay {
    /// True when the key has a budget and today's spend has reached it.
    pub fn spent(&self) -> bool {
        self.budget_usd.is_some_and(|b| self.spent_usd >= b)
    }
}

impl ScriptCall for Spend<'_> {
    type Reply = KeyDay;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = SPEND.prepare_invoke();
        inv.key(k.budgets())
            .key(k.spend_seen())
            .key(k.spend_base())
            .arg(self.key)
            .arg(self.plan.as_str())
            .arg(format!("{:.9}", self.total_usd));
        inv
    }
}

impl FromRedisValue for KeyDay {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        Ok(Self {
            spent_usd: w.text(0).parse().unwrap_or(0.0),
            budget_usd: w.text(1).parse().ok(),
            next_day_ms: w.num(2),
        })
    }
}

/// `key_budget.lua`: sets (`Some(usd)`) or removes a key's daily budget.
#[derive(Debug)]
pub struct SetKeyBudget<'a> {
    pub key: &'a str,
    pub per_day_usd: Option<f64>,
}

/// Plans let go (paused on the key's budget, now under it) and the key's spend today.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyBudgetSet {
    pub resumed: u64,
    pub spent_usd: f64,
}

impl ScriptCall for SetKeyBudget<'_> {
    type Reply = KeyBudgetSet;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = KEY_BUDGET.prepare_invoke();
        inv.key(k.budgets())
            .key(k.delayed())
            .key(k.plan_keys())
            .key(k.ready_for(Priority::High))
            .key(k.ready())
            .key(k.ready_for(Priority::Low))
            .key(k.wake())
            .key(k.spend_base())
            .arg(self.key)
            .arg(self.per_day_usd.map(|u| u.to_string()).unwrap_or_default());
        inv
    }
}

impl FromRedisValue for KeyBudgetSet {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        Ok(Self {
            resumed: w.num(0),
            spent_usd: w.text(1).parse().unwrap_or(0.0),
        })
    }
}

/// `budget.lua`: raises a plan's budget, once per action document; a plan paused on a spent
/// budget resumes.
#[derive(Debug)]
pub struct RaiseBudget<'a> {
    pub plan: &'a PlanId,
    pub tag: &'a str,
    pub usd: f64,
    /// `plan_budget_raised`.
    pub raised: &'a Event,
    /// `plan_resumed`, sent when the plan was paused on its budget.
    pub resumed: &'a Event,
    /// The pool's `--session-ttl`, for a plan without its own.
    pub session_ttl_secs: u64,
}

impl ScriptCall for RaiseBudget<'_> {
    type Reply = ActionReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let resume = Resume {
            plan: self.plan,
            tag: self.tag,
            event: self.resumed,
            session_ttl_secs: self.session_ttl_secs,
        };
        let mut inv = resuming(&BUDGET, &resume, env);
        inv.arg(self.usd.to_string()).arg(self.raised.to_json());
        inv
    }
}

//! The plans this worker's slots hold now, by the entries they took onto its in-flight list.
//!
//! A claim whose reply was lost (Redis stopped, or the connection broke, after `claim.lua`
//! ran) leaves an entry on the in-flight list that no slot holds; since this worker is alive,
//! no reaper hands it back, and the plan would wait for ever. The heartbeat compares the list
//! with this registry and hands back an entry nobody holds (see `liveness`).

use std::collections::HashMap;
use std::sync::Mutex;

use baton_core::PlanId;

/// How many of this worker's slots hold each plan (a duplicate ready entry can be taken twice).
#[derive(Debug, Default)]
pub(crate) struct Claimed(Mutex<HashMap<PlanId, u32>>);

impl Claimed {
    /// Marks `plan` held by a slot until the returned guard is dropped.
    pub(crate) fn hold(&self, plan: &PlanId) -> Holding<'_> {
        *self.lock().entry(plan.clone()).or_default() += 1;
        Holding {
            claimed: self,
            plan: plan.clone(),
        }
    }

    /// True when a slot holds `plan`.
    pub(crate) fn contains(&self, plan: &PlanId) -> bool {
        self.lock().contains_key(plan)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PlanId, u32>> {
        // Never held across an await (nor while anything can panic), so never poisoned.
        self.0.lock().expect("claimed registry lock")
    }
}

/// A slot's hold of one plan (see [`Claimed::hold`]).
pub(crate) struct Holding<'c> {
    claimed: &'c Claimed,
    plan: PlanId,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        let mut held = self.claimed.lock();
        if let Some(n) = held.get_mut(&self.plan) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.plan);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_held_until_its_last_holding_ends() {
        let c = Claimed::default();
        let p: PlanId = "p".parse().unwrap();
        let first = c.hold(&p);
        let second = c.hold(&p);
        drop(first);
        assert!(c.contains(&p));
        drop(second);
        assert!(!c.contains(&p));
    }
}

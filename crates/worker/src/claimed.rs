//! The plans this worker's slots hold now, by the entries they took onto its in-flight list.
//!
//! A claim whose reply was lost (Redis stopped, or the connection broke, after `claim.lua`
//! ran) leaves an entry on the in-flight list that no slot holds; since this worker is alive,
//! no reaper hands it back, and the plan would wait for ever. The heartbeat compares the list
//! with this registry and hands back an entry nobody holds (see `liveness`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_core::PlanId;

/// How many of this worker's slots hold each plan (a duplicate ready entry can be taken twice),
/// and when a slot last let go of each plan that none holds now.
#[derive(Debug, Default)]
pub(crate) struct Claimed(Mutex<Registry>);

#[derive(Debug, Default)]
struct Registry {
    held: HashMap<PlanId, u32>,
    released: HashMap<PlanId, Instant>,
}

impl Claimed {
    /// Marks `plan` held by a slot until the returned guard is dropped.
    pub(crate) fn hold(&self, plan: &PlanId) -> Holding<'_> {
        *self.lock().held.entry(plan.clone()).or_default() += 1;
        Holding {
            claimed: self,
            plan: plan.clone(),
        }
    }

    /// True when a slot holds `plan`, or let go of it less than `within` ago. A slot hands its
    /// entry back before it lets go, and may take the plan again at once: a read of the
    /// in-flight list made meanwhile can show an entry of a plan no slot holds for a moment.
    /// Forgets the releases older than `within`.
    pub(crate) fn held_within(&self, plan: &PlanId, within: Duration) -> bool {
        let mut r = self.lock();
        r.released.retain(|_, at| at.elapsed() < within);
        r.held.contains_key(plan) || r.released.contains_key(plan)
    }

    /// True when a slot holds `plan` now.
    #[cfg(test)]
    fn contains(&self, plan: &PlanId) -> bool {
        self.lock().held.contains_key(plan)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
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
        let mut r = self.claimed.lock();
        if let Some(n) = r.held.get_mut(&self.plan) {
            *n -= 1;
            if *n == 0 {
                r.held.remove(&self.plan);
                r.released.insert(self.plan.clone(), Instant::now());
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
        // Let go just now: still counted as held within a beat, not after.
        assert!(c.held_within(&p, Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!c.held_within(&p, Duration::from_millis(1)));
    }
}

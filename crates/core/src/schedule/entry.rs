//! A schedule as its readers see it: the definition with its last tick fired and its last
//! run-now, decoded from the three hashes (`baton schedule list`, the dashboard, the
//! scheduler itself).

use std::collections::HashMap;

use super::{Fired, ScheduleDef};

/// One schedule and what it fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub def: ScheduleDef,
    /// The last tick fired.
    pub fired: Option<Fired>,
    /// The last `run-now`.
    pub run_now: Option<Fired>,
}

impl Entry {
    /// The time ticks are counted after: the last tick fired, else when the schedule was added.
    pub fn counted_from(&self) -> u64 {
        self.fired
            .as_ref()
            .map_or(self.def.created_ms, |f| f.tick_ms.max(self.def.created_ms))
    }

    /// The next tick to fire after `now_ms` is seen (`None`: its cron no longer parses).
    pub fn next_tick(&self, now_ms: u64) -> Option<u64> {
        let spec = self.def.spec().ok()?;
        spec.next_after(self.counted_from().max(now_ms))
    }
}

/// Decodes every schedule from `defs` (name → definition JSON) with its records (name →
/// record JSON), by name. A definition that does not decode is left out (and named in the
/// second list).
pub fn entries(
    defs: HashMap<String, String>,
    fired: &HashMap<String, String>,
    runs: &HashMap<String, String>,
) -> (Vec<Entry>, Vec<String>) {
    let mut out = Vec::new();
    let mut broken = Vec::new();
    for (name, raw) in defs {
        let Ok(def) = serde_json::from_str::<ScheduleDef>(&raw) else {
            broken.push(name);
            continue;
        };
        let record = |m: &HashMap<String, String>| {
            m.get(&name)
                .and_then(|r| serde_json::from_str::<Fired>(r).ok())
        };
        out.push(Entry {
            fired: record(fired),
            run_now: record(runs),
            def,
        });
    }
    out.sort_by(|a, b| a.def.name.cmp(&b.def.name));
    broken.sort();
    (out, broken)
}

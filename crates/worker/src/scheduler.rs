//! The scheduler: fires recurring plans (`baton schedule`). Every worker runs this loop next to
//! its heartbeat (unless `--scheduler false`), and one at a time holds the scheduler lease
//! (`{p}:scheduler`, `<worker>/<token>`, taken when free, renewed every third of `--lease`,
//! given back at shutdown). The holder reads the schedules, and for each whose tick is due
//! (by the Redis server's clock) fires the latest due tick with `schedule_fire.lua`, which
//! submits the tick's document on the submit list (a worker ingests it like any document) and
//! records the tick, fenced by the lease and only when the tick is after the last one fired.
//! So two holders (one whose lease ran out mid-pass) or a call retried after a lost reply
//! never fire a tick twice, and a tick's plan id (`<name>-<UTC time>Z`) names one plan.
//!
//! After an outage (no worker, or Redis away) only the latest missed tick fires, once; the
//! ones before it are counted (`missed`). Due schedules fire by tick, and a schedule whose
//! `after` names another due one fires after it, so its reference resolves to the new plan.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use baton_core::event::{Event, ScheduleFired};
use baton_core::schedule::{
    entries, schedule_refs, tick_document, tick_plan_id, Due, Entry, Fired, ScheduleName,
};
use baton_core::scripts::schedule::{FireOutcome, ScheduleFire, ScheduleLease};
use baton_core::PlanId;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::pool::Pool;
use crate::store::StoreError;

/// Longest sleep between two looks at the schedules (a new schedule is seen within it).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What one pass found: the schedules, the server's clock, and when it was read here.
struct Look {
    entries: Vec<Entry>,
    now_ms: u64,
    read_at: Instant,
}

/// Runs until the worker drains, then gives the lease back if it holds it.
pub(crate) async fn run(pool: Arc<Pool>) {
    let value = format!("{}/{}", pool.id, uuid::Uuid::new_v4().simple());
    let lease_ms = u64::try_from(pool.cfg.lease.as_millis()).unwrap_or(u64::MAX);
    let renew_every = pool.cfg.lease / 3;
    let drain = pool.shutdown.drain.clone();
    let mut held = false;
    let mut renewed_at: Option<Instant> = None;
    loop {
        if renewed_at.is_none_or(|t| t.elapsed() >= renew_every) {
            let sent = Instant::now();
            match pool
                .store
                .call(&ScheduleLease {
                    value: &value,
                    lease_ms,
                })
                .await
            {
                Ok(now_held) => {
                    if now_held != held {
                        info!(held = now_held, "scheduler lease");
                    }
                    held = now_held;
                    renewed_at = Some(sent);
                }
                Err(e) => debug!(error = %e, "scheduler lease: redis unavailable"),
            }
        }
        let wake = if held {
            match pass(&pool, &value).await {
                Ok(Some(wake)) => wake.min(renewed_at.map_or(wake, |t| t + renew_every)),
                Ok(None) => {
                    held = false;
                    Instant::now() + renew_every
                }
                Err(e) => {
                    debug!(error = %e, "scheduler pass failed; trying again");
                    Instant::now() + LOOK_EVERY
                }
            }
        } else {
            Instant::now() + renew_every
        };
        tokio::select! {
            () = drain.cancelled() => break,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    if held {
        let _ = pool
            .store
            .call(&ScheduleLease {
                value: &value,
                lease_ms: 0,
            })
            .await;
    }
}

/// Reads every schedule and the server's clock in one round trip.
async fn look(pool: &Pool) -> Result<Look, StoreError> {
    let k = &pool.store.env().keys;
    type Reply = (HashMap<String, String>, HashMap<String, String>, (u64, u64));
    let (defs, fired, time): Reply = redis::pipe()
        .hgetall(k.schedules())
        .hgetall(k.schedule_fired())
        .cmd("TIME")
        .query_async(&mut pool.store.conn())
        .await?;
    let (entries, broken) = entries(defs, &fired, &HashMap::new());
    for name in broken {
        warn!(schedule = %name, "a schedule's definition does not decode; it never fires");
    }
    Ok(Look {
        entries,
        now_ms: baton_core::time::server_millis(time),
        read_at: Instant::now(),
    })
}

/// One pass: fires every due tick. Returns when to look again (the next tick, at most
/// [`LOOK_EVERY`] away), or `None` when the lease turned out not to be ours.
async fn pass(pool: &Pool, lease: &str) -> Result<Option<Instant>, StoreError> {
    let look = look(pool).await?;
    let mut last: HashMap<ScheduleName, PlanId> = look
        .entries
        .iter()
        .filter_map(|e| Some((e.def.name.clone(), e.fired.as_ref()?.plan_id.clone())))
        .collect();
    for (entry, due) in firing_order(&look) {
        let plan = tick_plan_id(&entry.def.name, due.tick_ms);
        match fire(pool, lease, entry, due, &plan, &last).await? {
            FireOutcome::Fired(at) => {
                info!(schedule = %entry.def.name, plan = %plan, late_ms = at.saturating_sub(due.tick_ms), missed = due.missed, "schedule fired");
                last.insert(entry.def.name.clone(), plan);
            }
            FireOutcome::AlreadyFired | FireOutcome::Gone => {}
            FireOutcome::NotHolder => return Ok(None),
        }
    }
    let next = look
        .entries
        .iter()
        .filter_map(|e| e.next_tick(look.now_ms))
        .min()
        .map_or(LOOK_EVERY, |t| {
            Duration::from_millis(t.saturating_sub(look.now_ms))
        });
    Ok(Some(look.read_at + next.min(LOOK_EVERY)))
}

/// The due schedules with their ticks: by tick, and one whose `after` names another due
/// schedule after that one (a cycle is broken by name order).
fn firing_order(look: &Look) -> Vec<(&Entry, Due)> {
    let mut due: Vec<(&Entry, Due)> = look
        .entries
        .iter()
        .filter_map(|e| {
            let spec = e.def.spec().ok()?;
            Some((e, spec.latest_due(e.counted_from(), look.now_ms)?))
        })
        .collect();
    due.sort_by_key(|(e, d)| (d.tick_ms, e.def.name.clone()));
    let mut ordered = Vec::with_capacity(due.len());
    while !due.is_empty() {
        let waiting = |e: &Entry| {
            schedule_refs(&e.def.document)
                .iter()
                .any(|r| *r != e.def.name && due.iter().any(|(o, _)| o.def.name == *r))
        };
        let i = due.iter().position(|(e, _)| !waiting(e)).unwrap_or(0);
        ordered.push(due.remove(i));
    }
    ordered
}

/// Fires `entry`'s tick `due` as `plan`, its references resolved through `last`.
async fn fire(
    pool: &Pool,
    lease: &str,
    entry: &Entry,
    due: Due,
    plan: &PlanId,
    last: &HashMap<ScheduleName, PlanId>,
) -> Result<FireOutcome, StoreError> {
    let document = tick_document(&entry.def.document, plan, &|n| last.get(n).cloned());
    let record = Fired {
        tick_ms: due.tick_ms,
        plan_id: plan.clone(),
        missed: due.missed,
        fired_ms: 0,
    };
    let event = Event::new(
        Some(plan),
        ScheduleFired {
            schedule: entry.def.name.to_string(),
            tick: humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + Duration::from_millis(due.tick_ms),
            )
            .to_string(),
            missed: due.missed,
            run_now: false,
        },
    )
    .worker(&pool.id);
    pool.store
        .call(&ScheduleFire {
            name: &entry.def.name,
            lease: Some(lease),
            created_ms: entry.def.created_ms,
            record: &record,
            document: &document,
            event: &event,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::schedule::ScheduleDef;

    fn entry(name: &str, cron: &str, after: &[&str]) -> Entry {
        Entry {
            def: ScheduleDef {
                name: name.parse().unwrap(),
                cron: cron.into(),
                zone: "UTC".into(),
                document: serde_json::json!({"tasks": [{"prompt": "x"}], "options": {"after": after}}),
                created_ms: 1_796_207_400_000,
            },
            fired: None,
            run_now: None,
        }
    }

    /// Due at the same tick, a schedule runs after those its `after` names (whatever the
    /// names' order); an earlier tick goes first; one not due is left out.
    #[test]
    fn due_schedules_fire_by_tick_and_after_the_schedules_they_name() {
        let look = Look {
            entries: vec![
                entry("a-deploy", "*/2 * * * * *", &["schedule:b-build"]),
                entry("b-build", "*/2 * * * * *", &["schedule:c-lint"]),
                entry("c-lint", "*/2 * * * * *", &[]),
                entry("d-odd", "1-59/2 * * * * *", &[]),
                entry("e-later", "0 0 3 * * *", &[]),
            ],
            now_ms: 1_796_207_400_000 + 2500,
            read_at: Instant::now(),
        };
        let order: Vec<(&str, u64)> = firing_order(&look)
            .iter()
            .map(|(e, d)| (e.def.name.as_str(), d.tick_ms - 1_796_207_400_000))
            .collect();
        assert_eq!(
            order,
            [
                ("d-odd", 1000),
                ("c-lint", 2000),
                ("b-build", 2000),
                ("a-deploy", 2000)
            ]
        );
    }
}

//! `baton status PLAN`: where a plan stands.

use std::collections::HashMap;

use baton_core::records::{SessionRecord, StoredTask, TaskResult};
use baton_core::PlanId;
use serde_json::json;

use crate::{Ctx, Failure};

/// Plan hash, pending tasks, results, session record, its TTL, the pool pause.
type Snapshot = (
    HashMap<String, String>,
    Vec<String>,
    Vec<String>,
    Option<String>,
    i64,
    Option<String>,
);

/// Show a plan: its state, tasks done (with results) and pending, its Claude session and how
/// long the session has left, its cost and statistics.
#[derive(clap::Args, Debug)]
pub(crate) struct Status {
    /// The plan id.
    plan: PlanId,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

impl Status {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let k = &ctx.keys;
        let p = &self.plan;
        let mut conn = ctx.conn().await?;
        let (meta, pending, results, session, ttl, pause): Snapshot = redis::pipe()
            .hgetall(k.plan(p))
            .lrange(k.tasks(p), 0, -1)
            .lrange(k.results(p), 0, -1)
            .get(k.session(p))
            .ttl(k.session(p))
            .get(k.pause())
            .query_async(&mut conn)
            .await?;
        if meta.is_empty() {
            return Err(Failure::BadInput(format!(
                "no plan {p} (never submitted, or past its retention)"
            )));
        }
        let pending: Vec<StoredTask> = pending
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect();
        let results: Vec<TaskResult> = results
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect();
        let session: Option<SessionRecord> = session.and_then(|s| serde_json::from_str(&s).ok());
        let stats: HashMap<&str, i64> = meta
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("stat:")?, v.parse().ok()?)))
            .collect();
        let get = |f: &str| meta.get(f).cloned().unwrap_or_default();
        if self.json {
            let v = json!({
                "plan_id": p.as_str(), "state": get("state"), "workspace": get("workspace"),
                "created_at": get("created_at"), "updated_at": get("updated_at"),
                "tasks_done": results.len(), "tasks_pending": pending.len(),
                "cost_usd": get("cost_usd").parse::<f64>().unwrap_or(0.0),
                "last_error": meta.get("last_error"),
                "session": session, "session_ttl_secs": (ttl >= 0).then_some(ttl),
                "last_session_id": meta.get("session_id"),
                "results": results, "pending": pending, "stats": stats,
                "pool_paused": pause,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("JSON values serialize")
            );
            return Ok(());
        }
        println!("plan       {p}");
        println!("state      {}", get("state"));
        println!("workspace  {}", get("workspace"));
        println!(
            "tasks      {} done, {} pending",
            results.len(),
            pending.len()
        );
        println!(
            "cost       ${:.4}",
            get("cost_usd").parse::<f64>().unwrap_or(0.0)
        );
        match &session {
            Some(s) => println!(
                "session    {} ({} task(s), expires in {}s, last worker {})",
                s.session_id, s.tasks, ttl, s.last_worker
            ),
            None => println!(
                "session    none live{}",
                meta.get("session_id")
                    .map(|s| format!(" (last: {s}, expired)"))
                    .unwrap_or_default()
            ),
        }
        if let Some(e) = meta.get("last_error") {
            println!("last error {e}");
        }
        if let Some(reason) = pause {
            println!("pool       paused: {reason}");
        }
        if !stats.is_empty() {
            let mut s: Vec<_> = stats.iter().collect();
            s.sort();
            println!(
                "stats      {}",
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        for r in &results {
            let text = crate::render::short(&r.result, 100);
            println!(
                "  done    {:>3} {:<20} ${:.4} {}",
                r.task_index + 1,
                r.task_id,
                r.cost_usd,
                text
            );
        }
        for t in &pending {
            let text = crate::render::short(&t.prompt, 100);
            println!("  pending {:>3} {:<20} {}", t.index + 1, t.id, text);
        }
        Ok(())
    }
}

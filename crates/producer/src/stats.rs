//! `baton stats`: pool-wide counters and queue depths.

use std::collections::HashMap;
use std::time::Duration;

use baton_core::{Counter, FallbackReason, Priority};
use redis::AsyncCommands;
use serde_json::json;

use crate::{Ctx, Failure};

/// Counters, submit/ready/dead depths, workers with their heartbeat scores.
type Snapshot = (
    HashMap<String, String>,
    u64,
    u64,
    u64,
    Vec<(String, u64)>,
    (u64, u64),
);

/// Show pool-wide statistics: the resume success rate first, then sessions, handoffs,
/// fallbacks, tasks, cost, tokens, and the depth of each queue.
#[derive(clap::Args, Debug)]
pub(crate) struct Stats {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

impl Stats {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let k = &ctx.keys;
        let mut conn = ctx.conn().await?;
        let (counters, submit, ready, dead, workers, time): Snapshot = redis::pipe()
            .hgetall(k.stats())
            .llen(k.submit())
            .llen(k.ready())
            .llen(k.dead())
            .zrange_withscores(k.workers(), 0, -1)
            .cmd("TIME")
            .query_async(&mut conn)
            .await?;
        let pause: Option<String> = conn.get(k.pause()).await?;
        // The other lines: plans of high and low priority, and plans waiting for a time.
        let (high, low, delayed): (u64, u64, u64) = redis::pipe()
            .llen(k.ready_for(Priority::High))
            .llen(k.ready_for(Priority::Low))
            .zcard(k.delayed())
            .query_async(&mut conn)
            .await?;
        let normal = ready;
        let ready = high + normal + low;
        let n = |c: Counter| {
            counters
                .get(c.as_str())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let attempted = n(Counter::ResumesAttempted);
        let rate = (attempted > 0.0).then(|| n(Counter::ResumesSucceeded) / attempted);
        // Heartbeats carry the server's clock.
        let now = baton_core::time::server_millis(time);
        if self.json {
            let mut c: serde_json::Map<String, serde_json::Value> = counters
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.parse::<f64>()
                            .map(serde_json::Value::from)
                            .unwrap_or(v.clone().into()),
                    )
                })
                .collect();
            c.insert("resume_success_rate".into(), rate.into());
            let v = json!({
                "counters": c,
                "queues": {"submit": submit, "ready": ready, "dead": dead,
                           "ready_high": high, "ready_normal": normal, "ready_low": low,
                           "delayed": delayed},
                "workers": workers.iter().map(|(w, s)| json!({"worker": w, "last_heartbeat_ms_ago": now.saturating_sub(*s)})).collect::<Vec<_>>(),
                "pool_paused": pause,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("JSON values serialize")
            );
            return Ok(());
        }
        match rate {
            Some(r) => println!(
                "resume success rate  {:.1}% ({} of {} resumes)",
                r * 100.0,
                n(Counter::ResumesSucceeded),
                attempted
            ),
            None => println!("resume success rate  n/a (no resumes yet)"),
        }
        println!("sessions created     {}", n(Counter::SessionsCreated));
        println!("handoffs             {}", n(Counter::Handoffs));
        let fallbacks: Vec<String> = FallbackReason::ALL
            .iter()
            .filter_map(|r| {
                let v = counters.get(Counter::fallback(*r).as_str())?;
                Some(format!("{r}={v}"))
            })
            .collect();
        println!(
            "fallbacks            {} {}",
            n(Counter::Fallbacks),
            if fallbacks.is_empty() {
                String::new()
            } else {
                format!("({})", fallbacks.join(", "))
            }
        );
        println!("rotations            {}", n(Counter::Rotations));
        println!(
            "tasks                {} succeeded, {} failed, {} retries",
            n(Counter::TasksSucceeded),
            n(Counter::TasksFailed),
            n(Counter::TaskRetries)
        );
        println!(
            "plans                {} accepted, {} completed, {} failed",
            n(Counter::PlansAccepted),
            n(Counter::PlansCompleted),
            n(Counter::PlansFailed)
        );
        println!("submissions rejected {}", n(Counter::SubmissionsRejected));
        println!("cost                 ${:.4}", n(Counter::CostUsd));
        println!(
            "tokens               {} in, {} out",
            n(Counter::InputTokens),
            n(Counter::OutputTokens)
        );
        println!(
            "queues               submit={submit} ready={ready} (high={high} normal={normal} low={low}) delayed={delayed} dead={dead}"
        );
        println!("workers              {}", workers.len());
        for (w, s) in &workers {
            let ago = Duration::from_millis(now.saturating_sub(*s));
            println!("  {w} (heartbeat {:.1}s ago)", ago.as_secs_f64());
        }
        if let Some(p) = pause {
            println!("pool paused          {p}");
        }
        Ok(())
    }
}

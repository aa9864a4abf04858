//! `baton stats`: pool-wide counters and queue depths.

use std::collections::HashMap;
use std::time::Duration;

use baton_core::{Counter, FallbackReason, Priority};
use redis::AsyncCommands;
use serde_json::json;

use crate::{Ctx, Failure};

/// Counters, submit/ready/dead depths, workers with their heartbeat scores, the server's time.
type Snapshot = (
    HashMap<String, String>,
    u64,
    u64,
    u64,
    Vec<(String, u64)>,
    (u64, u64),
);

/// One reading of the pool, as both outputs show it.
struct Reading {
    /// The pool's counters as stored (numbers written as text).
    counters: HashMap<String, String>,
    submit: u64,
    /// Plans ready at every priority together.
    ready: u64,
    high: u64,
    normal: u64,
    low: u64,
    delayed: u64,
    dead: u64,
    /// Each worker and how long ago (ms, by the server's clock) its last heartbeat was.
    workers: Vec<(String, u64)>,
    /// Why the pool is paused, if it is.
    pause: Option<String>,
}

impl Reading {
    async fn read(ctx: &Ctx) -> Result<Self, Failure> {
        let k = &ctx.keys;
        let mut conn = ctx.conn().await?;
        let (counters, submit, normal, dead, workers, time): Snapshot = redis::pipe()
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
        // Heartbeats carry the server's clock.
        let now = baton_core::time::server_millis(time);
        Ok(Self {
            counters,
            submit,
            ready: high + normal + low,
            high,
            normal,
            low,
            delayed,
            dead,
            workers: workers
                .into_iter()
                .map(|(w, s)| (w, now.saturating_sub(s)))
                .collect(),
            pause,
        })
    }

    /// A counter's value, 0 if it was never written.
    fn n(&self, c: Counter) -> f64 {
        self.counters
            .get(c.as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    /// The share of resumes that worked, if there were any.
    fn resume_rate(&self) -> Option<f64> {
        let attempted = self.n(Counter::ResumesAttempted);
        (attempted > 0.0).then(|| self.n(Counter::ResumesSucceeded) / attempted)
    }

    fn print_json(&self) {
        let mut c: serde_json::Map<String, serde_json::Value> = self
            .counters
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
        c.insert("resume_success_rate".into(), self.resume_rate().into());
        let v = json!({
            "counters": c,
            "queues": {"submit": self.submit, "ready": self.ready, "dead": self.dead,
                       "ready_high": self.high, "ready_normal": self.normal, "ready_low": self.low,
                       "delayed": self.delayed},
            "workers": self.workers.iter().map(|(w, ago)| json!({"worker": w, "last_heartbeat_ms_ago": ago})).collect::<Vec<_>>(),
            "pool_paused": self.pause,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON values serialize")
        );
    }

    fn print_text(&self) {
        let n = |c: Counter| self.n(c);
        match self.resume_rate() {
            Some(r) => println!(
                "resume success rate  {:.1}% ({} of {} resumes)",
                r * 100.0,
                n(Counter::ResumesSucceeded),
                n(Counter::ResumesAttempted)
            ),
            None => println!("resume success rate  n/a (no resumes yet)"),
        }
        println!("sessions created     {}", n(Counter::SessionsCreated));
        println!("handoffs             {}", n(Counter::Handoffs));
        let fallbacks: Vec<String> = FallbackReason::ALL
            .iter()
            .filter_map(|r| {
                let v = self.counters.get(Counter::fallback(*r).as_str())?;
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
        let Self {
            submit,
            ready,
            high,
            normal,
            low,
            delayed,
            dead,
            ..
        } = self;
        println!(
            "queues               submit={submit} ready={ready} (high={high} normal={normal} low={low}) delayed={delayed} dead={dead}"
        );
        println!("workers              {}", self.workers.len());
        for (w, ago) in &self.workers {
            let ago = Duration::from_millis(*ago);
            println!("  {w} (heartbeat {:.1}s ago)", ago.as_secs_f64());
        }
        if let Some(p) = &self.pause {
            println!("pool paused          {p}");
        }
    }
}

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
        let reading = Reading::read(ctx).await?;
        if self.json {
            reading.print_json();
        } else {
            reading.print_text();
        }
        Ok(())
    }
}

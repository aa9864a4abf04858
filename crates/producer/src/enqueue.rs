//! `baton enqueue`: validate a document locally, submit it, optionally wait for the end.

use std::io::Read;
use std::path::PathBuf;

use baton_core::{Document, PlanId};
use redis::AsyncCommands;

use crate::watch::follow;
use crate::{Ctx, Failure};

/// Validate a plan document and submit it (one LPUSH, like any Redis client would). Prints the
/// plan id. A document naming an existing plan_id continues that plan's conversation.
#[derive(clap::Args, Debug)]
pub(crate) struct Enqueue {
    /// The plan document (JSON), or - for standard input.
    file: PathBuf,
    /// Follow the plan's events until it ends; exit 1 if it failed.
    #[arg(long)]
    wait: bool,
    /// With --wait: print events as JSON lines.
    #[arg(long, requires = "wait")]
    json: bool,
}

impl Enqueue {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let raw = if self.file.as_os_str() == "-" {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| Failure::BadInput(format!("reading stdin: {e}")))?;
            b
        } else {
            std::fs::read(&self.file)
                .map_err(|e| Failure::BadInput(format!("reading {}: {e}", self.file.display())))?
        };
        let doc = Document::parse(&raw)
            .map_err(|e| Failure::BadInput(format!("invalid plan document: {e}")))?;
        // Give the plan its id here, so it can be printed and waited for.
        let (plan, raw) = match doc {
            Document::Action(a) => (a.plan_id, raw),
            Document::Plan(sub) => match sub.plan_id {
                Some(p) => (p, raw),
                None => {
                    let p = PlanId::generate();
                    let mut v: serde_json::Value = serde_json::from_slice(&raw)
                        .map_err(|e| Failure::BadInput(e.to_string()))?;
                    v["plan_id"] = serde_json::Value::String(p.to_string());
                    (p, serde_json::to_vec(&v).expect("a JSON value serializes"))
                }
            },
        };
        submit(ctx, &plan, raw, self.wait, self.json).await?;
        if !self.wait {
            println!("{plan}");
        }
        Ok(())
    }
}

/// Submits a document for `plan` (one `LPUSH`); with `wait`, follows the plan's events from
/// the submission to its end (subscribed first, so no event can be missed).
pub(crate) async fn submit(
    ctx: &Ctx,
    plan: &PlanId,
    doc: Vec<u8>,
    wait: bool,
    json: bool,
) -> Result<(), Failure> {
    let mut conn = ctx.conn().await?;
    if !wait {
        let _: i64 = conn.lpush(ctx.keys.submit(), doc).await?;
        return Ok(());
    }
    let mut pubsub = ctx.pubsub().await?;
    pubsub.subscribe(ctx.keys.channel()).await?;
    let _: i64 = conn.lpush(ctx.keys.submit(), doc).await?;
    eprintln!("submitted plan {plan}; following its events");
    if !crate::render::out(plan.as_str()) {
        return Ok(());
    }
    follow(ctx, pubsub, Some(plan), json, true).await
}

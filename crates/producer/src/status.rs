//! `baton status PLAN`: where a plan stands.

use baton_client::{DetailParts, PlanDetail};
use baton_core::PlanId;
use serde_json::json;

use crate::{Ctx, Failure};

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
        let p = &self.plan;
        let client = ctx.client().await?;
        let detail = client.plan_detail(p, DetailParts::default()).await?;
        // The pool's pause lives in the pool's slot.
        let pause = client.pool_pause().await?;
        let Some(detail) = detail else {
            return Err(Failure::BadInput(format!(
                "no plan {p} (never submitted, or past its retention)"
            )));
        };
        if self.json {
            print_json(p, &detail, pause.as_deref());
        } else {
            print_text(p, &detail, pause.as_deref());
        }
        Ok(())
    }
}

/// `baton status --json`: one object.
fn print_json(p: &PlanId, detail: &PlanDetail, pause: Option<&str>) {
    let (plan, pending, results) = (&detail.view.hash, &detail.tasks, &detail.results);
    let session = &detail.view.session;
    let ttl = detail.view.session_ttl.unwrap_or(-2);
    let state = plan.state.map(|s| s.as_str()).unwrap_or("");
    let workspace = plan.workspace.as_deref().unwrap_or("");
    let v = json!({
        "plan_id": p.as_str(), "state": state, "workspace": workspace,
        "created_at": plan.created_at, "updated_at": plan.updated_at,
        "tasks_done": results.len(), "tasks_pending": pending.len(),
        "cost_usd": plan.cost_usd,
        "last_error": plan.last_error,
        "session": session, "session_ttl_secs": (ttl >= 0).then_some(ttl),
        "last_session_id": plan.session_id,
        "repo": plan.repo.as_ref().map(|r| json!({
            "url": r.url.redacted(), "branch": r.branch, "base": r.base,
            "checkpoint": plan.checkpoint,
        })),
        "results": results, "pending": pending, "stats": plan.stats,
        "pool_paused": pause,
        "priority": plan.priority.unwrap_or_default(),
        "pause_reason": plan.pause_reason,
        "pause_key": plan.pause_key,
        "concurrency_key": plan.concurrency_key,
        "max_budget_usd": plan.options.as_ref().and_then(|o| o.max_budget_usd),
        "review_task": plan.review_task_id(),
        "not_before_ms": plan.not_before_ms,
        "after": plan.after,
        "trace_id": plan.trace_id(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&v).expect("JSON values serialize")
    );
}

/// Why the plan is paused and what goes on with it, and its concurrency key.
fn print_pause_and_key(p: &PlanId, plan: &baton_core::PlanHash) {
    match (&plan.pause_reason, &plan.pause_key) {
        (Some(_), Some(key)) => println!(
            "paused     budget: {key}'s daily budget is spent; goes on the next UTC day \
             (or `baton budget --key {key} --per-day USD`)"
        ),
        (Some(why), None) if why == "budget" => {
            println!("paused     budget spent (`baton budget {p} --usd X` raises it and resumes)")
        }
        (Some(why), None) => println!("paused     {why} (`baton resume {p}`)"),
        _ => {}
    }
    if let Some(key) = &plan.concurrency_key {
        println!("key        {key} (`baton limit list`)");
    }
}

/// `baton status`: the plan for a person, then its tasks.
fn print_text(p: &PlanId, detail: &PlanDetail, pause: Option<&str>) {
    let (plan, pending, results) = (&detail.view.hash, &detail.tasks, &detail.results);
    let session = &detail.view.session;
    let ttl = detail.view.session_ttl.unwrap_or(-2);
    let state = plan.state.map(|s| s.as_str()).unwrap_or("");
    let workspace = plan.workspace.as_deref().unwrap_or("");
    println!("plan       {p}");
    println!("state      {state}");
    print_pause_and_key(p, plan);
    if let Some(t) = plan.review_task_id() {
        println!("review     task {t} waits: `baton approve {p}` or `baton reject {p} --note ...`");
    }
    if let Some(prio) = plan.priority {
        println!("priority   {prio}");
    }
    if let Some(ms) = plan.not_before_ms {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        println!("not before {}", humantime::format_rfc3339_seconds(at));
    }
    if !plan.after.is_empty() {
        let names: Vec<&str> = plan.after.iter().map(|p| p.as_str()).collect();
        println!("after      {} (to complete first)", names.join(", "));
    }
    println!("workspace  {workspace}");
    if let Some(r) = &plan.repo {
        let at = plan
            .checkpoint
            .as_deref()
            .map_or("(nothing committed yet)".to_owned(), |c| {
                format!("at {}", short_sha(c))
            });
        println!("repo       {} branch {} {at}", r.url.redacted(), r.branch);
    }
    println!(
        "tasks      {} done, {} pending",
        results.len(),
        pending.len()
    );
    println!("cost       ${:.4}", plan.cost_usd);
    match &session {
        Some(s) => println!(
            "session    {} ({} task(s), expires in {}s, last worker {})",
            s.session_id, s.tasks, ttl, s.last_worker
        ),
        None => println!(
            "session    none live{}",
            plan.session_id
                .map(|s| format!(" (last: {s}, expired)"))
                .unwrap_or_default()
        ),
    }
    if let Some(e) = &plan.last_error {
        println!("last error {e}");
    }
    if let Some(t) = plan.trace_id() {
        println!("trace      {t}");
    }
    if let Some(reason) = pause {
        println!("pool       paused: {reason}");
    }
    if !plan.stats.is_empty() {
        println!(
            "stats      {}",
            plan.stats
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    print_tasks(detail);
}

/// The plan's tasks: the done ones with their results, then the pending ones.
fn print_tasks(detail: &PlanDetail) {
    for r in &detail.results {
        let text = crate::render::short(&r.result, 100);
        let commit = match (&r.commit, r.diffstat) {
            (Some(c), Some(d)) => format!(
                " {} {} file(s) +{} -{}",
                short_sha(c),
                d.files,
                d.insertions,
                d.deletions
            ),
            _ => String::new(),
        };
        println!(
            "  done    {:>3} {:<20} ${:.4}{commit} {}",
            r.task_index + 1,
            r.task_id.as_str(),
            r.cost_usd,
            text
        );
    }
    for t in &detail.tasks {
        let text = crate::render::short(&t.prompt, 100);
        println!("  pending {:>3} {:<20} {}", t.index + 1, t.id, text);
    }
}

/// The first 12 characters of a commit id.
fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

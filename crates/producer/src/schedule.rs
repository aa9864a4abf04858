//! `baton schedule`: recurring plans. `add` checks the name, the cron, the zone and the plan
//! document (as `baton enqueue` checks a document) and stores the schedule; `list` shows each
//! with its next tick and what it fired last; `remove` deletes it; `run-now` submits its plan
//! at once (a plan of its own, `<name>-now-<time>Z`, besides the ticks). The workers fire the
//! ticks (one of them at a time, holding the scheduler lease).

use std::io::Read;
use std::path::PathBuf;

use baton_core::event::{Event, ScheduleFired};
use baton_core::schedule::{
    check_plan_document, run_now_plan_id, tick_document, CronSpec, Entry, Fired, ScheduleDef,
    ScheduleName,
};
use baton_core::scripts::schedule::{FireOutcome, ScheduleFire};
use baton_core::scripts::ScriptCall;
use baton_core::PlanId;
use clap::Subcommand;
use redis::AsyncCommands;

use crate::{Ctx, Failure};

/// Recurring plans: a plan document submitted on a cron schedule (with seconds, in UTC or a
/// named time zone). Each tick's plan is `<name>-<UTC time>Z`, so a tick never runs twice.
#[derive(clap::Args, Debug)]
pub(crate) struct Schedule {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(Subcommand, Debug)]
enum ScheduleCommand {
    Add(Add),
    List(List),
    Remove(Remove),
    RunNow(RunNow),
}

/// Add a schedule. Its first tick is the first after now.
#[derive(clap::Args, Debug)]
struct Add {
    /// The schedule's name: 1-40 ASCII letters, digits, '-' and '_', starting with a letter or
    /// digit.
    name: String,
    /// When: 6 fields with seconds first (`*/2 * * * * *`, `0 0 2 * * *`), or 5 fields at
    /// second 0, or `@daily`, `@hourly`...
    #[arg(long)]
    cron: String,
    /// The plan document (JSON; - for standard input), without plan_id and workspace.
    #[arg(long)]
    plan: PathBuf,
    /// The time zone the cron reads in: an IANA name such as Europe/Paris.
    #[arg(long = "tz", default_value = "UTC")]
    zone: String,
}

/// List the schedules: cron, zone, next tick, the last tick fired and its plan.
#[derive(clap::Args, Debug)]
struct List {
    /// One JSON array.
    #[arg(long)]
    json: bool,
}

/// Remove a schedule: no tick fires after this (plans it submitted are left alone).
#[derive(clap::Args, Debug)]
struct Remove {
    name: String,
}

/// Submit a schedule's plan now, as a plan of its own (`<name>-now-<time>Z`); the ticks go on.
#[derive(clap::Args, Debug)]
struct RunNow {
    name: String,
}

impl Schedule {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        match self.command {
            ScheduleCommand::Add(c) => c.run(ctx).await,
            ScheduleCommand::List(c) => c.run(ctx).await,
            ScheduleCommand::Remove(c) => c.run(ctx).await,
            ScheduleCommand::RunNow(c) => c.run(ctx).await,
        }
    }
}

fn parse_name(name: &str) -> Result<ScheduleName, Failure> {
    name.parse()
        .map_err(|e| Failure::BadInput(format!("NAME: {e}")))
}

fn read_plan(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| Failure::BadInput(format!("--plan: reading stdin: {e}")))?;
        return Ok(b);
    }
    std::fs::read(path)
        .map_err(|e| Failure::BadInput(format!("--plan: reading {}: {e}", path.display())))
}

/// The Redis server's clock (ms): schedules count ticks by it, whoever's clock is off.
async fn server_now(ctx: &Ctx) -> Result<u64, Failure> {
    let mut conn = ctx.conn().await?;
    let time: (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
    Ok(baton_core::time::server_millis(time))
}

/// A time in ms as RFC 3339 (UTC, seconds).
pub(crate) fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

impl Add {
    async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let name = parse_name(&self.name)?;
        let spec = CronSpec::parse(&self.cron, &self.zone).map_err(Failure::BadInput)?;
        let raw = read_plan(&self.plan)?;
        let document = check_plan_document(&raw, &name).map_err(|e| {
            Failure::BadInput(format!(
                "--plan {}: invalid plan document: {e}",
                self.plan.display()
            ))
        })?;
        let created_ms = server_now(ctx).await?;
        let def = ScheduleDef {
            name: name.clone(),
            cron: self.cron,
            zone: self.zone,
            document,
            created_ms,
        };
        let json = serde_json::to_string(&def).expect("a definition serializes");
        let mut conn = ctx.conn().await?;
        let added: bool = conn
            .hset_nx(ctx.keys.schedules(), name.as_str(), json)
            .await?;
        if !added {
            return Err(Failure::BadInput(format!(
                "NAME: schedule {name} exists (`baton schedule remove {name}` first)"
            )));
        }
        let next = spec.next_after(created_ms).map_or("never".into(), rfc3339);
        println!("schedule {name} added; next tick {next}");
        Ok(())
    }
}

impl Remove {
    async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let name = parse_name(&self.name)?;
        let mut conn = ctx.conn().await?;
        // The definition first: the firing script fires nothing without it.
        let removed: i64 = conn.hdel(ctx.keys.schedules(), name.as_str()).await?;
        let _: () = redis::pipe()
            .hdel(ctx.keys.schedule_fired(), name.as_str())
            .hdel(ctx.keys.schedule_runs(), name.as_str())
            .query_async(&mut conn)
            .await?;
        if removed == 0 {
            return Err(Failure::BadInput(format!("no schedule {name}")));
        }
        println!("schedule {name} removed");
        Ok(())
    }
}

/// The entry named `name`.
async fn find(ctx: &Ctx, name: &ScheduleName) -> Result<(Entry, Vec<Entry>, u64), Failure> {
    let all = ctx.client().await?.schedules().await?;
    let entry = all
        .entries
        .iter()
        .find(|e| e.def.name == *name)
        .cloned()
        .ok_or_else(|| Failure::BadInput(format!("no schedule {name}")))?;
    Ok((entry, all.entries, all.now_ms))
}

impl RunNow {
    async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let plan = run_now(ctx, &parse_name(&self.name)?).await?;
        println!("{plan}");
        Ok(())
    }
}

/// Submits `name`'s plan now (`baton schedule run-now`, the dashboard's button); its plan id.
pub(crate) async fn run_now(ctx: &Ctx, name: &ScheduleName) -> Result<PlanId, Failure> {
    let (entry, all, now_ms) = find(ctx, name).await?;
    let plan = run_now_plan_id(name, now_ms);
    let last_of = |n: &ScheduleName| {
        all.iter()
            .find(|e| e.def.name == *n)
            .and_then(|e| e.fired.as_ref())
            .map(|f| f.plan_id.clone())
    };
    let document = tick_document(&entry.def.document, &plan, &last_of);
    let record = Fired {
        tick_ms: now_ms,
        plan_id: plan.clone(),
        missed: 0,
        fired_ms: 0,
    };
    let event = Event::new(
        Some(&plan),
        ScheduleFired {
            schedule: name.to_string(),
            tick: rfc3339(now_ms),
            missed: 0,
            run_now: true,
        },
    );
    let call = ScheduleFire {
        name,
        lease: None,
        created_ms: entry.def.created_ms,
        record: &record,
        document: &document,
        event: &event,
    };
    let mut conn = ctx.conn().await?;
    match call.invocation(&ctx.env).invoke_async(&mut conn).await? {
        FireOutcome::Fired(_) => Ok(plan),
        _ => Err(Failure::BadInput(format!("no schedule {name}"))),
    }
}

impl List {
    async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let all = ctx.client().await?.schedules().await?;
        for name in &all.broken {
            eprintln!("warning: schedule {name} does not decode; `baton schedule remove {name}`");
        }
        if self.json {
            let rows: Vec<_> = all
                .entries
                .iter()
                .map(|e| row_json(e, all.now_ms))
                .collect();
            println!("{}", serde_json::Value::Array(rows));
            return Ok(());
        }
        if all.entries.is_empty() {
            println!("no schedules");
        }
        for e in &all.entries {
            let next = e.next_tick(all.now_ms).map_or("never".into(), rfc3339);
            let last = match &e.fired {
                Some(f) => format!(
                    "{} ({}, {} missed)",
                    rfc3339(f.tick_ms),
                    f.plan_id,
                    f.missed
                ),
                None => "none yet".into(),
            };
            println!(
                "{}  cron {:?} {}  next {next}  last {last}",
                e.def.name, e.def.cron, e.def.zone
            );
        }
        Ok(())
    }
}

/// One schedule for `list --json`.
fn row_json(e: &Entry, now_ms: u64) -> serde_json::Value {
    let record = |f: &Option<Fired>| {
        f.as_ref().map(|f| {
            serde_json::json!({
                "tick": rfc3339(f.tick_ms), "tick_ms": f.tick_ms, "plan_id": f.plan_id,
                "fired_ms": f.fired_ms, "missed": f.missed,
            })
        })
    };
    serde_json::json!({
        "name": e.def.name,
        "cron": e.def.cron,
        "zone": e.def.zone,
        "created_ms": e.def.created_ms,
        "next_tick": e.next_tick(now_ms).map(rfc3339),
        "next_tick_ms": e.next_tick(now_ms),
        "last_fired": record(&e.fired),
        "last_run_now": record(&e.run_now),
        "document": e.def.document,
    })
}

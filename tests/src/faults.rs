//! The fault suite: each scenario runs a load of plans on a pool of real workers and the real
//! CLI, injects one fault, and counts what the delivery guarantee forbids: tasks lost, tasks out
//! of order, tasks committed twice. Used at full size by the `fault-suite` binary and scaled
//! down by the end-to-end tests.

use std::collections::HashSet;
use std::fmt;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::{plan_id, Pool, Redis};
use baton_core::{Counter, PlanState};

/// One fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of a worker while its tasks run, twice, each replaced by a new worker.
    KillWorker,
    /// SIGSTOP of a worker past its lease and dead-after limit, then SIGCONT.
    StallWorker,
    /// redis-server (AOF on) shut down and started again mid-run.
    RestartRedis,
    /// redis-server (AOF on) killed with SIGKILL and started again mid-run.
    KillRedis,
    /// The model answers 529 (overloaded) to everything for a while, then recovers.
    Overloaded,
    /// The model answers 401 for one plan only: that plan fails within seconds.
    Unauthorized,
    /// The model's stream stalls mid-answer on some tasks, past the silence limit.
    HungStream,
    /// Running CLI processes are killed mid-stream, twice.
    KillCli,
    /// 30 malformed or hostile documents interleaved with the valid plans.
    HostileInput,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::KillWorker,
        Fault::StallWorker,
        Fault::RestartRedis,
        Fault::KillRedis,
        Fault::Overloaded,
        Fault::Unauthorized,
        Fault::HungStream,
        Fault::KillCli,
        Fault::HostileInput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::KillWorker => "kill -9 worker x2",
            Fault::StallWorker => "SIGSTOP worker past lease",
            Fault::RestartRedis => "redis restarted (AOF)",
            Fault::KillRedis => "redis killed + restarted (AOF)",
            Fault::Overloaded => "model 529 storm",
            Fault::Unauthorized => "model 401 for one plan",
            Fault::HungStream => "stream hangs past timeout",
            Fault::KillCli => "CLI killed mid-stream x2",
            Fault::HostileInput => "30 hostile documents",
        }
    }
}

/// How big a run is.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub plans: usize,
    pub tasks: usize,
    pub workers: usize,
    pub concurrency: u16,
    /// How long the 529 storm lasts.
    pub storm: Duration,
}

impl Scale {
    /// The size the issue asks for: 50 plans x 5 tasks, 3 worker processes.
    pub fn full() -> Self {
        Self {
            plans: 50,
            tasks: 5,
            workers: 3,
            concurrency: 2,
            storm: Duration::from_secs(20),
        }
    }
    /// Small enough for CI.
    pub fn ci() -> Self {
        Self {
            plans: 6,
            tasks: 3,
            workers: 3,
            concurrency: 1,
            storm: Duration::from_secs(6),
        }
    }
}

/// One scenario's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: &'static str,
    pub plans: usize,
    pub tasks: usize,
    pub lost: usize,
    pub out_of_order: usize,
    pub committed_twice: usize,
    pub retried: i64,
    pub seconds: f64,
    /// Plans that ended otherwise than the scenario says they must.
    pub wrong_end: Vec<String>,
    pub note: String,
}

impl Row {
    /// True when the row shows the guarantee held.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.out_of_order == 0
            && self.committed_twice == 0
            && self.wrong_end.is_empty()
    }

    pub fn header() -> String {
        format!(
            "| {:<32} | {:>5} | {:>5} | {:>4} | {:>12} | {:>15} | {:>7} | {:>7} | {} |\n|{}|",
            "scenario",
            "plans",
            "tasks",
            "lost",
            "out of order",
            "committed twice",
            "retried",
            "seconds",
            "notes",
            "---|".repeat(9).trim_end_matches('|')
        )
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut note = self.note.clone();
        if !self.wrong_end.is_empty() {
            note += &[" WRONG END: ", &self.wrong_end.join(", ")].concat();
        }
        write!(
            f,
            "| {:<32} | {:>5} | {:>5} | {:>4} | {:>12} | {:>15} | {:>7} | {:>7.1} | {} |",
            self.scenario,
            self.plans,
            self.tasks,
            self.lost,
            self.out_of_order,
            self.committed_twice,
            self.retried,
            self.seconds,
            note
        )
    }
}

fn plan_doc(plan: &str, tasks: usize, fault: Fault, index: usize) -> String {
    let tasks: Vec<Value> = (1..=tasks)
        .map(|k| {
            let mut prompt = format!(
                "Task marker {plan}-T{k}: step {k}.\nFile: step{k}.txt\n```\n{plan} {k}\n```\n"
            );
            if fault == Fault::Unauthorized && index == 0 {
                prompt.push_str("UNAUTHORIZED-PLAN\n");
            }
            if fault == Fault::HungStream && k == 2 && index.is_multiple_of(2) {
                prompt.push_str("[[standin:hang times=1]]\n");
            }
            json!({"id": format!("t{k}"), "prompt": prompt})
        })
        .collect();
    json!({"plan_id": plan, "tasks": tasks}).to_string()
}

/// Thirty documents a hostile or careless client might push.
pub fn hostile_documents() -> Vec<Vec<u8>> {
    let big_prompt = "x".repeat(baton_core::plan::MAX_PROMPT_BYTES + 1);
    let mut docs: Vec<Vec<u8>> = [
        "not json at all".to_owned(),
        "{}".to_owned(),
        r#"{"tasks":[]}"#.to_owned(),
        r#"{"tasks":"run everything"}"#.to_owned(),
        r#"{"tasks":[{"prompt":""}]}"#.to_owned(),
        r#"{"tasks":[{"prompt":"   "}]}"#.to_owned(),
        r#"{"tasks":[{"prompt":5}]}"#.to_owned(),
        r#"{"tasks":[{}]}"#.to_owned(),
        r#"{"tasks":[{"prompt":"a\u0000b"}]}"#.to_owned(),
        r#"{"plan_id":"a{b}","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"plan_id":"a:b","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"plan_id":"a b","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"plan_id":"-rf","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"plan_id":"a\nb","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"workspace":"../escape","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"workspace":"/etc","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"workspace":"a/../../b","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"workspace":"a//b","tasks":[{"prompt":"x"}]}"#.to_owned(),
        r#"{"tasks":[{"id":"x","prompt":"a"},{"id":"x","prompt":"b"}]}"#.to_owned(),
        r#"{"tasks":[{"id":"a}b","prompt":"a"}]}"#.to_owned(),
        r#"{"tasks":[{"prompt":"x"}],"options":{"permission_mode":"bypassPermissions"}}"#
            .to_owned(),
        r#"{"tasks":[{"prompt":"x"}],"options":{"permission_mode":"yolo"}}"#.to_owned(),
        r#"{"tasks":[{"prompt":"x"}],"options":{"max_budget_usd":-5}}"#.to_owned(),
        r#"{"tasks":[{"prompt":"x"}],"options":{"session_ttl_secs":0}}"#.to_owned(),
        r#"{"tasks":[{"prompt":"x"}],"options":{"model":"--dangerously-skip-permissions"}}"#
            .to_owned(),
        r#"{"tasks":[{"prompt":"x"}],"options":{"allowed_tools":["--help"]}}"#.to_owned(),
        r#"{"tasks":[{"prompt":"x"}],"rm":"-rf /"}"#.to_owned(),
        format!(r#"{{"tasks":[{{"prompt":"{big_prompt}"}}]}}"#),
        r#"[{"prompt":"x"}]"#.to_owned(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    docs.push(b"{\"tasks\":[{\"prompt\":\"\xff\xfe\"}]}".to_vec()); // invalid UTF-8
    assert_eq!(docs.len(), 30);
    docs
}

async fn total_done(pool: &Pool, plans: &[String]) -> Result<(u64, usize)> {
    let mut done = 0;
    let mut ended = 0;
    for view in pool
        .client()
        .plans(&plans.iter().map(plan_id).collect::<Vec<_>>())
        .await?
    {
        let Some(view) = view else { continue };
        done += view.tasks_done();
        if matches!(
            view.state(),
            Some(PlanState::Completed | PlanState::Failed | PlanState::Cancelled)
        ) {
            ended += 1;
        }
    }
    Ok((done, ended))
}

fn kill_running_clis() -> usize {
    // Every CLI baton starts has this argument; nothing else on the machine does.
    let out = std::process::Command::new("pkill")
        .args(["-9", "-c", "-f", "--", "--output-format=stream-json"])
        .output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// `args` without the given flags and their values.
fn without_flags(args: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if flags.contains(&a.as_str()) {
            skip = true;
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// The plans the worker with process id `pid` holds now (its in-flight list; worker ids carry
/// the pid).
async fn held_by(pool: &Pool, pid: i32) -> Result<Vec<String>> {
    let mut conn = pool.conn().await?;
    let workers: Vec<String> =
        redis::AsyncCommands::zrange(&mut conn, pool.keys.workers(), 0, -1).await?;
    let Some(id) = workers.iter().find(|w| w.contains(&format!("-{pid}-"))) else {
        return Ok(Vec::new());
    };
    let id: baton_core::WorkerId = id.parse()?;
    Ok(redis::AsyncCommands::lrange(&mut conn, pool.keys.inflight(&id), 0, -1).await?)
}

/// How long after `killed_at` the last of `held` ran a task again (its first `task_started`
/// after the kill); `None` when nothing was held.
async fn recovery_time(
    pool: &Pool,
    killed_at: SystemTime,
    held: &[String],
) -> Result<Option<Duration>> {
    let mut slowest: Option<Duration> = None;
    for plan in held {
        let restarted = pool
            .events(&plan_id(plan))
            .await?
            .into_iter()
            .find_map(|e| {
                let at = humantime::parse_rfc3339(&e.at).ok()?;
                (e.kind() == baton_core::EventKind::TaskStarted && at > killed_at)
                    .then(|| at.duration_since(killed_at).unwrap_or_default())
            });
        // A plan that never ran again shows up as lost or wrongly ended in the row itself.
        if let Some(t) = restarted {
            slowest = Some(slowest.map_or(t, |s| s.max(t)));
        }
    }
    Ok(slowest)
}

/// Waits (up to 30 s: a dead worker's plans are reaped after --dead-after) until the pool's
/// counters equal the sum of the plans' own for every counter that reaches the pool by
/// transfer; the counters that still differ otherwise.
async fn pool_counters_match(pool: &Pool, plans: &[String]) -> std::result::Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let differ = counter_differences(pool, plans)
            .await
            .unwrap_or_else(|e| vec![format!("cannot read counters: {e}")]);
        if differ.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pool counters differ from the plans': {}",
                differ.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn counter_differences(pool: &Pool, plans: &[String]) -> Result<Vec<String>> {
    use baton_core::{Counter, PlanTotals};
    let mut conn = pool.conn().await?;
    let fields = PlanTotals::fields();
    let mut sums = vec![0.0f64; fields.len()];
    for p in plans {
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(pool.keys.plan(&p.parse()?))
            .arg(&fields)
            .query_async(&mut conn)
            .await?;
        for (sum, v) in sums.iter_mut().zip(values) {
            *sum += v.and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        }
    }
    let stats: std::collections::HashMap<String, String> =
        redis::AsyncCommands::hgetall(&mut conn, pool.keys.stats()).await?;
    Ok(Counter::TRANSFERRED
        .iter()
        .zip(sums)
        .filter_map(|(c, plans_sum)| {
            let pool_value = stats
                .get(c.as_str())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            ((pool_value - plans_sum).abs() > 1e-6)
                .then(|| format!("{} pool {pool_value} plans {plans_sum}", c.as_str()))
        })
        .collect())
}

/// Runs one scenario.
pub async fn run(fault: Fault, scale: Scale) -> Result<Row> {
    let redis = match fault {
        // `always`: a SIGKILL of Redis loses nothing that was acknowledged, so the row shows
        // baton's guarantee rather than Redis's fsync window.
        Fault::RestartRedis | Fault::KillRedis => {
            Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"])?
        }
        _ => Redis::start()?,
    };
    let mut pool = Pool::start_with_redis(redis)?;
    let mut opts = Vec::new();
    for i in 0..scale.workers {
        let mut o = pool.machine(&format!("w{i}"), scale.concurrency);
        // A CLI on a loaded 2-core machine can take seconds to print its first line: the
        // silence limit must leave room for that, or healthy runs are cut off.
        if fault == Fault::KillWorker {
            // The recovery time is reported for the default --lease and --dead-after.
            o.extra = without_flags(&o.extra, &["--lease", "--dead-after"]);
        }
        o.extra.extend([
            "--silence-timeout".into(),
            "15s".into(),
            "--max-attempts".into(),
            "6".into(),
            "--max-tasks-per-hold".into(),
            "2".into(),
        ]);
        pool.add_worker(&o)?;
        opts.push(o);
    }
    let tag = match fault {
        Fault::KillWorker => "kill",
        Fault::StallWorker => "stall",
        Fault::RestartRedis => "rrestart",
        Fault::KillRedis => "rkill",
        Fault::Overloaded => "o529",
        Fault::Unauthorized => "a401",
        Fault::HungStream => "hang",
        Fault::KillCli => "kcli",
        Fault::HostileInput => "hostile",
    };
    let plans: Vec<String> = (0..scale.plans).map(|i| format!("{tag}-{i:03}")).collect();
    if fault == Fault::Overloaded {
        pool.standin
            .control(json!({"fail_status": 529, "for_secs": scale.storm.as_secs_f64()}))?;
    }
    if fault == Fault::Unauthorized {
        pool.standin
            .control(json!({"fail_status": 401, "match": "UNAUTHORIZED-PLAN"}))?;
    }
    let start = Instant::now();
    let hostile = hostile_documents();
    let mut conn = pool.conn().await?;
    for (i, p) in plans.iter().enumerate() {
        if fault == Fault::HostileInput {
            // Each hostile document once, spread evenly between the valid plans.
            let (from, to) = (
                i * hostile.len() / scale.plans,
                (i + 1) * hostile.len() / scale.plans,
            );
            for d in &hostile[from..to] {
                let _: i64 =
                    redis::AsyncCommands::lpush(&mut conn, pool.keys.submit(), d.as_slice())
                        .await?;
            }
        }
        pool.submit(&plan_doc(p, scale.tasks, fault, i)).await?;
    }
    let total = (scale.plans * scale.tasks) as u64;
    let deadline = start + Duration::from_secs(120 + 3 * total);
    let mut injected = 0;
    let mut note = String::new();
    let mut unauthorized_failed_after = None;
    // Each kill -9: when, and the plans the worker held then.
    let mut kills: Vec<(SystemTime, Vec<String>)> = Vec::new();
    loop {
        // While Redis is down in a scenario, progress reads as nothing done.
        let (done, ended) = total_done(&pool, &plans).await.unwrap_or_default();
        if ended == plans.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{}: only {done}/{total} tasks done, {ended}/{} plans ended in time; worker logs:\n{}",
                fault.name(),
                plans.len(),
                pool.log_tail()
            );
        }
        let progress = done as f64 / total as f64;
        match fault {
            Fault::KillWorker
                if (injected == 0 && progress >= 0.2) || (injected == 1 && progress >= 0.5) =>
            {
                let pid = pool.workers[injected].proc.pid();
                let held = held_by(&pool, pid).await?;
                pool.workers[injected].proc.signal(libc::SIGKILL);
                kills.push((SystemTime::now(), held));
                let o = opts[injected].clone();
                pool.add_worker(&o)?; // a replacement, as an autoscaler would start
                injected += 1;
            }
            Fault::StallWorker if injected == 0 && progress >= 0.2 => {
                pool.workers[0].proc.signal(libc::SIGSTOP);
                tokio::time::sleep(Duration::from_secs(16)).await; // past lease (6 s) and dead-after (8 s)
                pool.workers[0].proc.signal(libc::SIGCONT);
                injected += 1;
            }
            Fault::RestartRedis | Fault::KillRedis if injected == 0 && progress >= 0.3 => {
                if fault == Fault::RestartRedis {
                    if let Some(p) = &pool.redis.proc {
                        p.signal(libc::SIGTERM);
                    }
                    if let Some(p) = pool.redis.proc.as_mut() {
                        p.wait_exit(Duration::from_secs(10));
                    }
                } else {
                    pool.redis.kill();
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                pool.redis.restart_keeping_data()?;
                injected += 1;
            }
            Fault::KillCli
                if (injected == 0 && progress >= 0.2) || (injected == 1 && progress >= 0.5) =>
            {
                let n = kill_running_clis();
                let _ = write!(note, "{n} CLIs killed; ");
                injected += 1;
            }
            Fault::Unauthorized
                if unauthorized_failed_after.is_none()
                    && pool.state(&plan_id(&plans[0])).await? == Some(PlanState::Failed) =>
            {
                unauthorized_failed_after = Some(start.elapsed());
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seconds = start.elapsed().as_secs_f64();

    let mut row = Row {
        scenario: fault.name(),
        plans: scale.plans,
        tasks: scale.plans * scale.tasks,
        lost: 0,
        out_of_order: 0,
        committed_twice: 0,
        retried: pool.stat(Counter::TaskRetries).await?
            + pool.stat(Counter::PlansRecovered).await?,
        seconds,
        wrong_end: Vec::new(),
        note,
    };
    for (i, p) in plans.iter().enumerate() {
        let state = pool.state(&plan_id(p)).await?;
        let must_fail = fault == Fault::Unauthorized && i == 0;
        let want_state = if must_fail {
            PlanState::Failed
        } else {
            PlanState::Completed
        };
        if state != Some(want_state) {
            let state = state.map_or("", PlanState::as_str);
            row.wrong_end.push(format!("{p}={state}"));
        }
        let results = pool.results(&plan_id(p)).await?;
        let ids: Vec<&str> = results.iter().map(|r| r.task_id.as_str()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        row.committed_twice += ids.len() - unique.len();
        let expected = if must_fail { 0 } else { scale.tasks };
        row.lost += expected.saturating_sub(unique.len());
        let indexes: Vec<u64> = results.iter().map(|r| r.task_index).collect();
        row.out_of_order += indexes.windows(2).filter(|w| w[0] >= w[1]).count();
    }
    if fault == Fault::Unauthorized {
        match unauthorized_failed_after {
            Some(t) => {
                let _ = write!(row.note, "401 plan failed after {:.1}s", t.as_secs_f64());
            }
            None => row.note.push_str("401 plan failed (after the others)"),
        }
    }
    if fault == Fault::HostileInput {
        let mut c = pool.conn().await?;
        let dead: i64 = redis::AsyncCommands::llen(&mut c, pool.keys.dead()).await?;
        let _ = write!(row.note, "{dead} dead-lettered");
        if dead != 30 {
            row.wrong_end
                .push(format!("{dead} of 30 hostile documents dead-lettered"));
        }
    }
    for (at, held) in &kills {
        match recovery_time(&pool, *at, held).await? {
            Some(t) => {
                let _ = write!(
                    row.note,
                    "{} held plan(s) running again {:.1} s after the kill; ",
                    held.len(),
                    t.as_secs_f64()
                );
            }
            None => row.note.push_str("the killed worker held no plan; "),
        }
    }
    if fault == Fault::StallWorker {
        let stale = pool.workers[0].log().matches("lease lost").count();
        let _ = write!(row.note, "stale worker saw {stale} lost lease(s)");
    }
    if let Err(differ) = pool_counters_match(&pool, &plans).await {
        row.wrong_end.push(differ);
    }
    row.note = row.note.trim_end_matches("; ").to_owned();
    Ok(row)
}

//! The first-task section of the benchmark (issue 21, part 3, the target "a one-task plan,
//! submit to result, against a direct `claude -p`: ≤ 0.6× with spares"): one-task plans through
//! a worker with spare CLIs (`--spare-cli 1`, a CLI started ahead and parked with
//! `--await-claim`, which a plan's first task claims instead of spawning one) against a worker
//! without (`--spare-cli 0`) and against `claude -p` run by hand, in cold and warm session mode.
//!
//! Each arm keeps one worker (one pool of its own: redis-server, stand-in) for the whole
//! section, and plans go one at a time. Before each submit to the worker with spares, the
//! benchmark waits until the worker has a parked spare that has been up at least
//! [`PARKED_FOR`] (read from `/proc`: a descendant of the worker whose command line has
//! `--await-claim`), giving up after [`PARK_WITHIN`] and saying so; a plan with no spare ready
//! would measure a cold start, not a spare. How many plans took a spare is counted from the
//! worker's log (the line `claimed a spare CLI`, at info level), never assumed.
//!
//! Called from `bench.rs` as `bench.first_task().await?` (`--only first-task`); `--first-plans
//! N` sets the plans per arm per mode (rounds; default 6).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use baton_core::event::EventBody;
use baton_core::EventKind;
use baton_tests::Pool;
use serde_json::json;
use tokio::sync::mpsc;

use super::{direct_loop, now_ms, percentile, subscribe, wait_event, worker_opts, Bench};

/// How long a spare must have been up before a plan is submitted to it.
const PARKED_FOR: f64 = 1.5;
/// How long the benchmark waits for such a spare before submitting without one.
const PARK_WITHIN: Duration = Duration::from_secs(20);
/// The worker's log line for each claim (info level).
const CLAIM_LINE: &str = "claimed a spare CLI";
const PROMPT: &str = "Reply with one short sentence.";
const MODES: [&str; 2] = ["cold", "warm"];
/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on every Linux architecture).
const TICKS: f64 = 100.0;

type Events = mpsc::UnboundedReceiver<(f64, baton_core::Event)>;

/// A worker of one arm: its pool, the events it publishes, and the plans it has run.
struct Arm {
    pool: Pool,
    rx: Events,
    /// `--spare-cli 1`: wait for a parked spare before each submit.
    spares: bool,
    /// Spares (by session id) a plan has claimed: not parked any more, even while alive.
    claimed: HashSet<String>,
}

/// One plan: submit → the task's `task_succeeded` and submit → `plan_completed` (ms); for the
/// arm with spares, how long the benchmark waited for a parked one and whether it found one.
#[derive(Clone, Copy)]
struct Run {
    to_result: f64,
    to_done: f64,
    waited: f64,
    parked: bool,
}

/// A parked spare seen in `/proc`: its session id (or pid, without one) and age in seconds.
struct Parked {
    key: String,
    age: f64,
}

/// The fields of `/proc/<pid>/stat` after the command name (field 3 on).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Every spare CLI under process `root`: descendants whose command line has `--await-claim`,
/// one entry per session (a box's `bwrap` and the CLI in it share one; the youngest counts).
fn spares_under(root: i32) -> Vec<Parked> {
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let mut children: HashMap<i32, Vec<(i32, f64)>> = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        let Some(f) = stat_fields(&name) else {
            continue;
        };
        // ppid is field 4, starttime field 22 (ticks since boot).
        let ppid = f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        let start: f64 = f.get(19).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        children
            .entry(ppid)
            .or_default()
            .push((pid, uptime - start / TICKS));
    }
    let mut by_session: HashMap<String, f64> = HashMap::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &(pid, age) in children.get(&p).into_iter().flatten() {
            stack.push(pid);
            let args = baton_tests::cmdline(&pid.to_string());
            if !args.iter().any(|a| a == "--await-claim") {
                continue;
            }
            let key = baton_tests::spare_session(&args).unwrap_or_else(|| format!("pid {pid}"));
            let seen = by_session.entry(key).or_insert(age);
            *seen = seen.min(age);
        }
    }
    by_session
        .into_iter()
        .map(|(key, age)| Parked { key, age })
        .collect()
}

/// Waits until the worker `pid` has a spare up for [`PARKED_FOR`] that no plan has claimed;
/// returns its key (`None`: gave up after [`PARK_WITHIN`]) and how long it waited (ms).
async fn wait_parked(pid: i32, claimed: &HashSet<String>) -> (Option<String>, f64) {
    let started = Instant::now();
    loop {
        let ready = spares_under(pid)
            .into_iter()
            .find(|s| s.age >= PARKED_FOR && !claimed.contains(&s.key));
        let waited = started.elapsed();
        if let Some(s) = ready {
            return (Some(s.key), waited.as_secs_f64() * 1000.0);
        }
        if waited >= PARK_WITHIN {
            return (None, waited.as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Times in the worker's log so far that it claimed a spare.
fn claims(pool: &Pool) -> usize {
    pool.workers
        .iter()
        .map(|w| w.log().matches(CLAIM_LINE).count())
        .sum()
}

impl Arm {
    async fn start(mode: &str, spares: bool) -> Result<Self> {
        let mut pool = Pool::start()?;
        let n = if spares { "1" } else { "0" };
        let mut opts = worker_opts(&pool, "a", 1, &["--session-mode", mode, "--spare-cli", n]);
        // Info level: the claim line is logged there (the same level for both arms).
        opts.log_filter = "info".into();
        pool.add_worker(&opts)?;
        tokio::time::sleep(Duration::from_millis(800)).await; // the worker is up and waiting
        let rx = subscribe(&pool).await?;
        Ok(Self {
            pool,
            rx,
            spares,
            claimed: HashSet::new(),
        })
    }

    /// Runs one one-task plan, waiting for a parked spare first when the arm has them.
    async fn plan(&mut self, name: &str) -> Result<Run> {
        let (mut spare, mut waited) = (None, 0.0);
        if self.spares {
            (spare, waited) = wait_parked(self.pool.workers[0].proc.pid(), &self.claimed).await;
        }
        let claims_before = claims(&self.pool);
        let doc = json!({"plan_id": name, "tasks": [{"id": "t1", "prompt": PROMPT}]});
        let submitted = now_ms();
        self.pool.submit(&doc.to_string()).await?;
        let within = Duration::from_secs(120);
        let (result_at, ev) =
            wait_event(&mut self.rx, name, &[EventKind::TaskSucceeded], within).await?;
        let EventBody::TaskSucceeded(s) = &ev.body else {
            bail!("waited for task_succeeded, got {}", ev.kind());
        };
        self.claimed.insert(s.session_id.to_string());
        let (done_at, _) =
            wait_event(&mut self.rx, name, &[EventKind::PlanCompleted], within).await?;
        // With one spare, the one waited for is the one a claim took, whatever its session.
        if let (Some(key), true) = (spare.clone(), claims(&self.pool) > claims_before) {
            self.claimed.insert(key);
        }
        Ok(Run {
            to_result: result_at - submitted,
            to_done: done_at - submitted,
            waited,
            parked: spare.is_some(),
        })
    }
}

/// The median of `f` over `runs`.
fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// One mode's runs (direct, baton without spares, baton with one) and its two workers.
struct Mode {
    runs: [Vec<Run>; 3],
    without: Arm,
    with: Arm,
}

/// A direct `claude -p` of a one-task plan (a new session, in the mode's folder): spawn → exit.
fn direct(pool: &Pool, mode: &str) -> Result<Run> {
    let took = direct_loop(pool, &format!("first-{mode}"), &[PROMPT.to_owned()])?;
    let ms = took.as_secs_f64() * 1000.0;
    Ok(Run {
        to_result: ms,
        to_done: ms,
        waited: 0.0,
        parked: false,
    })
}

impl Bench {
    pub(super) async fn first_task(&mut self) -> Result<()> {
        let rounds = self.first_plans;
        println!("\n## A plan's first task with spare CLIs: one-task plans, one at a time, one worker, real CLI, against `claude -p` by hand ({rounds} plans per arm per mode)\n");
        let mut modes = Vec::new();
        for mode in MODES {
            let without = Arm::start(mode, false).await?;
            let with = Arm::start(mode, true).await?;
            // The first CLI start in a folder pays for cold caches: not part of any figure.
            direct(&without.pool, mode)?;
            modes.push(Mode {
                runs: Default::default(),
                without,
                with,
            });
        }
        println!("Rounds interleave the arms (modes in turn, and who goes first in a mode rotates by round); each arm keeps one worker (a pool of its own) for the whole section. Before each plan to the worker with spares, the benchmark waits until it has a spare parked at least {PARKED_FOR} s (from `/proc`), giving up after {} s.\n", PARK_WITHIN.as_secs());
        println!("| round | mode | direct | --spare-cli 0 | --spare-cli 1 | spare wait | parked spare found |");
        println!("|---|---|---:|---:|---:|---:|---|");
        for round in 0..rounds {
            for (mode, m) in MODES.iter().zip(modes.iter_mut()) {
                let mut got: [Option<Run>; 3] = [None; 3];
                for k in 0..3 {
                    let arm = (k + round) % 3;
                    let name = format!("first-{mode}-{round}-{arm}");
                    got[arm] = Some(match arm {
                        0 => direct(&m.without.pool, mode)?,
                        1 => m.without.plan(&name).await?,
                        _ => m.with.plan(&name).await?,
                    });
                }
                let [Some(d), Some(n), Some(s)] = got else {
                    unreachable!("every arm ran")
                };
                println!(
                    "| {} | {mode} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
                    round + 1,
                    d.to_done,
                    n.to_done,
                    s.to_done,
                    s.waited,
                    if s.parked { "yes" } else { "**no**" }
                );
                for (runs, r) in m.runs.iter_mut().zip([d, n, s]) {
                    runs.push(r);
                }
            }
        }
        self.first_task_summary(&modes);
        Ok(())
    }

    fn first_task_summary(&mut self, modes: &[Mode]) {
        println!("\n| mode | until | direct `claude -p` | baton, no spares | baton, spares | no spares / direct | **spares / direct** | plans that took a spare (worker log) | plans with a parked spare ready |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        let (mut ratios, mut met) = (Vec::new(), true);
        for (mode, m) in MODES.iter().zip(modes) {
            let d = med(&m.runs[0], |r| r.to_done);
            let plans = m.runs[2].len();
            let took = claims(&m.with.pool);
            let ready = m.runs[2].iter().filter(|r| r.parked).count();
            let stray = match claims(&m.without.pool) {
                0 => String::new(),
                n => format!(" (and {n} with --spare-cli 0)"),
            };
            for (until, f) in [
                ("plan_completed", (|r: &Run| r.to_done) as fn(&Run) -> f64),
                ("task_succeeded", |r: &Run| r.to_result),
            ] {
                let (n, s) = (med(&m.runs[1], f), med(&m.runs[2], f));
                let count = if until == "plan_completed" {
                    format!("{took} of {plans}{stray} | {ready} of {plans}")
                } else {
                    " | ".to_owned()
                };
                println!(
                    "| {mode} | {until} | {d:.0} ms | {n:.0} ms | {s:.0} ms | {:.3} | **{:.3}** | {count} |",
                    n / d,
                    s / d
                );
                if until == "plan_completed" {
                    ratios.push(format!(
                        "{mode} {:.3} ({took} of {plans} took a spare)",
                        s / d
                    ));
                    met &= s / d <= 0.6;
                }
            }
        }
        println!("\n(Medians. direct: `claude -p --session-id=<new> --output-format=json` in one folder with one config dir, spawn → exit, as a shell would run it (no box); the same figure in both rows of a mode. baton: from the submit (LPUSH) to the plan_completed event (or to the task's task_succeeded), the worker already running (in its box, unless the machine has none). \"took a spare\": lines `{CLAIM_LINE}` in that worker's log; 0 when the worker logs none. A plan for which no parked spare was found in time was submitted anyway (\"parked spare found: no\").)");
        self.target(
            "a one-task plan, submit → result, against direct `claude -p`, with spares",
            "≤ 0.6",
            ratios.join("; "),
            Some(met),
        );
    }
}

//! `baton eval`: runs the eval suite through a pool in arms and checks what each plan leaves
//! with the language's real toolchain (see `eval/README.md` and the README's "Evaluate").
//!
//! # Layout
//! - `pool`: the pool it starts for itself (redis-server, stand-in, two worker machines).
//! - `drive`: submitting the plans, following them, and the handoff arm's rounds.
//! - `collect`: the remotes, what each plan did, and the checker's run on its branch.
//! - `output`: the run's id, the toolchains' default folder, the report's files.

mod collect;
mod drive;
mod output;
mod pool;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use baton_core::PlanId;
use baton_eval::arm::{plan_document, plan_id, Arm};
use baton_eval::check::Toolchains;
use baton_eval::report::{self, PlanRun, Report, ReportHead};
use baton_eval::suite::{Project, Suite};
use futures_util::StreamExt;

use crate::{Ctx, Failure};
use output::{default_tools_dir, run_id, write_report};
use pool::{EmbeddedPool, WorkerSettings};

/// Measure what one conversation per plan buys: run the eval suite's multi-file plans through a
/// pool in arms, check the code each leaves with the language's real toolchain (tsc, pyflakes
/// and mypy, cargo), and report errors per project by arm against the seed's success criteria.
///
/// By default it starts a pool of its own (a redis-server and two workers standing for two
/// machines) and, unless ANTHROPIC_API_KEY is set, runs the model stand-in with the suite's
/// answer keys: offline figures measure the harness, not a model. Writes report.json,
/// report.md and errors.svg to --out and prints the tables.
#[derive(clap::Args, Debug)]
pub(crate) struct Eval {
    /// The suite folder (it holds projects/), relative to the current folder.
    #[arg(long, default_value = "eval")]
    suite: PathBuf,
    /// Arms, comma-separated: session (one conversation per plan), isolated (every task a new
    /// session with no context), recap (a new session seeded with baton's recap), handoff (one
    /// conversation, every task on the other machine).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "session,isolated,recap,handoff"
    )]
    arms: Vec<Arm>,
    /// Runs of each project in each arm (a confidence interval needs 2 or more).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    repeat: u32,
    /// Only these projects (names, comma-separated). Default: all.
    #[arg(long, value_delimiter = ',')]
    projects: Vec<String>,
    /// Where the report, the checked trees and the pool's files go. Default: .eval/<run id>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the toolchains are installed (on first use). Default: $XDG_CACHE_HOME/baton/eval-tools,
    /// else ~/.cache/baton/eval-tools.
    #[arg(long, env = "BATON_EVAL_TOOLS")]
    tools_dir: Option<PathBuf>,
    /// Plans each of the pool's two workers runs at once (not with --use-pool).
    #[arg(long, default_value_t = 2)]
    concurrency: u16,
    /// The workers' session mode: warm or cold (not with --use-pool).
    #[arg(long, default_value = "warm", value_parser = ["warm", "cold"])]
    session_mode: String,
    /// The workers' --rotate-at-tokens: the context size past which a session is rotated to a
    /// new one with a recap (not with --use-pool). Default: the worker's.
    #[arg(long)]
    rotate_at_tokens: Option<u64>,
    /// The model the plans ask for (options.model). Default: the CLI's.
    #[arg(long)]
    model: Option<String>,
    /// Use the model stand-in even when ANTHROPIC_API_KEY is set.
    #[arg(long)]
    offline: bool,
    /// The Claude Code CLI the pool's workers run (not with --use-pool).
    #[arg(long, env = "BATON_CLAUDE_BIN", default_value = "claude")]
    claude_bin: PathBuf,
    /// Longest the run may take before it gives up on the plans still going.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Run in the pool at --redis-url and --prefix, on its own workers, instead of starting
    /// one. Its workers must reach --out's remotes/ folder as a local path (--repo-allow-path);
    /// the handoff arm needs workers it can stop and start, so it is refused here.
    #[arg(long)]
    use_pool: bool,
    /// Compare two reports (their report.json) instead of running: prints both side by side.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    compare: Option<Vec<PathBuf>>,
}

impl Eval {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        if let Some(files) = &self.compare {
            let read = |p: &PathBuf| -> Result<Report, Failure> {
                let raw = std::fs::read(p)
                    .map_err(|e| Failure::BadInput(format!("reading {}: {e}", p.display())))?;
                serde_json::from_slice(&raw).map_err(|e| {
                    Failure::BadInput(format!("{}: not a baton eval report: {e}", p.display()))
                })
            };
            let (a, b) = (read(&files[0])?, read(&files[1])?);
            print!("{}", report::compare_markdown(&a, &b));
            return Ok(());
        }
        let suite = Suite::load(&self.suite)
            .and_then(|s| s.only(&self.projects))
            .map_err(|e| Failure::BadInput(e.to_string()))?;
        if self.arms.is_empty() {
            return Err(Failure::BadInput("--arms names no arm".into()));
        }
        if self.use_pool && self.arms.contains(&Arm::Handoff) {
            return Err(Failure::BadInput(
                "--use-pool: the handoff arm needs workers the eval can stop and start; leave it out of --arms".into(),
            ));
        }
        let pool = self.use_pool.then(|| ctx.clone());
        self.evaluate(suite, pool).await.map_err(Failure::Other)
    }

    /// Runs and checks every plan, then writes the report; in the user's pool (`pool`) or
    /// one of its own.
    async fn evaluate(self, suite: Suite, pool: Option<Ctx>) -> Result<()> {
        let started = Instant::now();
        if pool.is_none() {
            self.check_claude_bin()?;
        }
        let run = run_id();
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(".eval").join(&run));
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let out = out.canonicalize()?;
        let offline =
            self.offline || (pool.is_none() && std::env::var_os("ANTHROPIC_API_KEY").is_none());
        let tools_dir =
            std::path::absolute(self.tools_dir.clone().unwrap_or_else(default_tools_dir))
                .context("the toolchains' folder")?;
        let languages = suite.languages();
        // Installed first: a run whose plans all ran and whose checker cannot be installed
        // would be lost.
        eprintln!("eval: toolchains in {}", tools_dir.display());
        let tools = Toolchains::install(&tools_dir, &languages)
            .await
            .context("installing the toolchains")?;
        let mut arms = self.arms.clone();
        arms.sort();
        arms.dedup();
        eprintln!(
            "eval {run}: {} projects × {} arm(s) × {} repeat(s); model: {}; files in {}",
            suite.projects.len(),
            arms.len(),
            self.repeat,
            match (offline, self.use_pool) {
                (true, _) => "the stand-in (offline)",
                (false, true) => "the pool's",
                (false, false) => "the CLI's (ANTHROPIC_API_KEY)",
            },
            out.display()
        );
        let plans = self.plans(&suite, &run, &arms, &out).await?;
        let answers = offline.then(|| suite.dir.join("projects"));
        // A signal ends the run: the pool it started (dropped with this future) goes too.
        let runs = tokio::select! {
            runs = self.run_all(pool, &plans, &out, answers.as_deref(), started) => runs?,
            signal = drive::interrupted() => bail!("{signal}: the eval stopped; its pool is stopped too"),
        };
        eprintln!("eval: every plan ended; checking what they left");
        let runs = check_all(&plans, runs, &tools, &out).await;
        let head = ReportHead {
            run,
            started_at: humantime::format_rfc3339_seconds(
                std::time::SystemTime::now() - started.elapsed(),
            )
            .to_string(),
            model: match (&self.model, offline, self.use_pool) {
                (_, true, _) => "stand-in".into(),
                (Some(m), false, _) => m.clone(),
                (None, false, true) => "the pool's".into(),
                (None, false, false) => "the CLI's default".into(),
            },
            offline,
            session_mode: if self.use_pool {
                "the pool's".into()
            } else {
                self.session_mode.clone()
            },
            rotate_at_tokens: self.rotate_at_tokens,
            repeat: self.repeat,
            arms,
            wall_secs: started.elapsed().as_secs_f64(),
        };
        write_report(&out, &Report::new(head, runs))
    }

    /// The CLI the workers run, found (a path, or a name on PATH).
    fn check_claude_bin(&self) -> Result<()> {
        let bin = &self.claude_bin;
        let found = if bin.components().count() > 1 {
            bin.is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        };
        if !found {
            bail!(
                "the Claude Code CLI {} was not found: install it (scripts/eval.sh installs the pinned one) or name it with --claude-bin or BATON_CLAUDE_BIN",
                bin.display()
            );
        }
        Ok(())
    }

    /// Runs every plan, in the user's pool (`pool`) or one of its own; returns what each did
    /// (not checked yet).
    async fn run_all(
        &self,
        pool: Option<Ctx>,
        plans: &[EvalPlan<'_>],
        out: &Path,
        answers: Option<&Path>,
        started: Instant,
    ) -> Result<Vec<PlanRun>> {
        let Some(ctx) = pool else {
            return self.run_plans(plans, out, answers, started).await;
        };
        let docs: Vec<(PlanId, serde_json::Value)> = plans
            .iter()
            .map(|p| (p.id.clone(), p.doc.clone()))
            .collect();
        drive::submit_all(&ctx, &docs).await?;
        let ids: Vec<PlanId> = docs.into_iter().map(|(p, _)| p).collect();
        drive::wait_all(&ctx, &ids, started + self.timeout, None).await?;
        collect_all(&ctx, plans).await
    }

    /// Runs every plan through the embedded pool; returns what each did (not checked yet).
    async fn run_plans(
        &self,
        plans: &[EvalPlan<'_>],
        out: &Path,
        answers: Option<&Path>,
        started: Instant,
    ) -> Result<Vec<PlanRun>> {
        let settings = WorkerSettings {
            concurrency: self.concurrency,
            session_mode: self.session_mode.clone(),
            claude_bin: self.claude_bin.clone(),
            remotes: out.join("remotes"),
            rotate_at_tokens: self.rotate_at_tokens,
        };
        let mut pool = EmbeddedPool::start(&out.join("pool"), answers, settings).await?;
        let ctx = pool_ctx(&pool.redis_url)?;
        run_arms(&ctx, &mut pool, plans, started + self.timeout).await?;
        collect_all(&ctx, plans).await
    }

    /// Every plan of the run, its remote made.
    async fn plans<'s>(
        &self,
        suite: &'s Suite,
        run: &str,
        arms: &[Arm],
        out: &Path,
    ) -> Result<Vec<EvalPlan<'s>>> {
        let mut plans = Vec::new();
        for &arm in arms {
            for repeat in 0..self.repeat {
                for project in &suite.projects {
                    let id: PlanId = plan_id(run, arm, repeat, &project.name)
                        .parse()
                        .context("the eval's plan id")?;
                    let remote = out.join("remotes").join(format!("{id}.git"));
                    let scratch = out.join("scratch").join(id.as_str());
                    collect::make_remote(&remote, project, &scratch).await?;
                    let doc = plan_document(
                        project,
                        arm,
                        id.as_str(),
                        &remote.display().to_string(),
                        self.model.as_deref(),
                    );
                    plans.push(EvalPlan {
                        id,
                        arm,
                        repeat,
                        project,
                        remote,
                        doc,
                    });
                }
            }
        }
        Ok(plans)
    }
}

/// One plan of the run.
struct EvalPlan<'s> {
    id: PlanId,
    arm: Arm,
    repeat: u32,
    project: &'s Project,
    remote: PathBuf,
    doc: serde_json::Value,
}

/// The arms that need no forcing run together on both machines; then the handoff arm, in rounds.
async fn run_arms(
    ctx: &Ctx,
    pool: &mut EmbeddedPool,
    plans: &[EvalPlan<'_>],
    deadline: Instant,
) -> Result<()> {
    let docs = |handoff: bool| -> Vec<(PlanId, serde_json::Value)> {
        plans
            .iter()
            .filter(|p| (p.arm == Arm::Handoff) == handoff)
            .map(|p| (p.id.clone(), p.doc.clone()))
            .collect()
    };
    let together = docs(false);
    if !together.is_empty() {
        for m in 0..pool.machines() {
            pool.start_worker(m)?;
        }
        drive::submit_all(ctx, &together).await?;
        let ids: Vec<PlanId> = together.iter().map(|(p, _)| p.clone()).collect();
        drive::wait_all(ctx, &ids, deadline, Some(pool)).await?;
        for m in 0..pool.machines() {
            pool.stop_worker(m).await?;
        }
    }
    let handoff = docs(true);
    if !handoff.is_empty() {
        drive::submit_all(ctx, &handoff).await?;
        let ids: Vec<PlanId> = handoff.iter().map(|(p, _)| p.clone()).collect();
        drive::handoff_rounds(ctx, pool, &ids, deadline).await?;
    }
    Ok(())
}

/// What each plan did, as the pool recorded it.
async fn collect_all(ctx: &Ctx, plans: &[EvalPlan<'_>]) -> Result<Vec<PlanRun>> {
    let client = ctx
        .client()
        .await
        .map_err(|f| anyhow::anyhow!(f.message()))?;
    let mut runs = Vec::new();
    for p in plans {
        runs.push(collect::plan_run(&client, p.arm, p.repeat, p.project, &p.id).await?);
    }
    Ok(runs)
}

/// Checks what each plan left, two at a time (a compiler each, on 2 cores).
async fn check_all(
    plans: &[EvalPlan<'_>],
    runs: Vec<PlanRun>,
    tools: &Toolchains,
    out: &Path,
) -> Vec<PlanRun> {
    let checks = plans.iter().zip(runs).map(|(p, mut r)| async move {
        let tree = out.join("trees").join(p.id.as_str());
        let work = out.join("work").join(p.id.as_str());
        let branch = format!("eval/{}", p.id);
        collect::check_plan(tools, p.project, &p.remote, &branch, &tree, &work, &mut r).await;
        r
    });
    futures_util::stream::iter(checks)
        .buffered(2)
        .collect()
        .await
}

/// A client context for the embedded pool.
fn pool_ctx(url: &str) -> Result<Ctx> {
    let args = baton_connect::RedisArgs {
        redis_url: url.to_owned(),
        ..Default::default()
    };
    let connector = baton_connect::Connector::new(&args)?;
    let keys = baton_core::Keys::new("baton");
    Ok(Ctx {
        connector,
        env: baton_core::scripts::Env::new(keys.clone()),
        keys,
    })
}

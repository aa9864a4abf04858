//! An in-process harness (river's `rivertest.Worker`): one worker run in this process against a
//! real `redis-server`, its holds running *scripted* engines instead of the CLI. Everything but
//! the CLI is the production code (ingest, claims, the hold and its attempts, the lease keeper,
//! commits, the tally, the reconnecting pops), so a test of a behaviour about leases, retries,
//! counters or Redis outages needs neither the CLI nor the model stand-in, and takes as long as
//! the behaviour itself.
//!
//! A test says what each run of a plan's tasks returns ([`Step`]: an answer, an error, a hang,
//! progress, a slow answer) with [`Harness::script`], and reads back what the engine was asked
//! ([`Harness::runs`]); what the worker wrote it reads from Redis as any client would.
//!
//! Behind the `testing` feature: production builds do not carry it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_core::PlanId;
use clap::Parser;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::claude::{ClaudeError, Invocation, Outcome, Progress, SessionArg};
use crate::config::{Config, Executor, SessionMode};
use crate::engine::{Engine, MakeEngine};
use crate::{Shutdown, StartError};

/// What one run of a task does.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Answers with this result, after writing the session's transcript as the CLI would.
    Answer(String),
    /// Fails as an API error with this status does (a 500 is retried after a backoff, a 401
    /// fails the plan).
    ApiError(u16),
    /// Fails as a CLI that printed nothing for the silence limit does (retried).
    Silent,
    /// Never answers: runs until the hold stops it (lease lost, cancel, shutdown).
    Hang,
    /// Takes this long, then does the step (the hold must keep its lease meanwhile); stopped
    /// like [`Step::Hang`] if the hold stops it first.
    Slow(Duration, Box<Step>),
    /// Reports a tool use on this file, then does the step.
    ToolUse(String, Box<Step>),
    /// Reports the CLI retrying the API (this status, after this many ms), then does the step.
    ApiRetry(u16, u64, Box<Step>),
}

/// What the scripted engine was asked for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub prompt: String,
    /// `--resume` (else a new session).
    pub resumed: bool,
    /// The hold stopped the run before it answered.
    pub stopped: bool,
}

/// The steps each plan's runs take, and the runs made.
#[derive(Debug, Default)]
struct Book {
    steps: HashMap<PlanId, VecDeque<Step>>,
    runs: HashMap<PlanId, Vec<Run>>,
}

type SharedBook = Arc<Mutex<Book>>;

fn book(b: &SharedBook) -> std::sync::MutexGuard<'_, Book> {
    // Never held across an await, so never poisoned by a panic there.
    b.lock().expect("harness book lock")
}

/// The settings of a harness's worker: the production defaults but for short times (a lease
/// of two seconds, retries after 50 ms).
#[derive(Debug, Clone)]
pub struct Options {
    pub redis_url: String,
    /// The pool's key prefix (each test its own, on a shared server).
    pub prefix: String,
    /// Where the worker keeps workspaces, CLI config and state.
    pub dir: PathBuf,
    pub concurrency: u16,
    pub lease: Duration,
    pub max_attempts: u32,
    pub retry_delay: Duration,
    pub max_tasks_per_hold: u32,
    /// `--webhook-allow`.
    pub webhook_allow: Vec<String>,
    /// `BATON_WEBHOOK_SECRET`.
    pub webhook_secret: Option<String>,
}

impl Options {
    /// Short times, one slot, against `redis_url` under `prefix`, in `dir`.
    pub fn new(redis_url: &str, prefix: &str, dir: impl Into<PathBuf>) -> Self {
        Self {
            redis_url: redis_url.to_owned(),
            prefix: prefix.to_owned(),
            dir: dir.into(),
            concurrency: 1,
            lease: Duration::from_secs(2),
            max_attempts: 4,
            retry_delay: Duration::from_millis(50),
            max_tasks_per_hold: 20,
            webhook_allow: Vec::new(),
            webhook_secret: None,
        }
    }

    fn config(&self) -> Result<Config, clap::Error> {
        let dir = |name: &str| self.dir.join(name).display().to_string();
        let args = [
            "baton-worker".to_owned(),
            "--redis-url".into(),
            self.redis_url.clone(),
            "--prefix".into(),
            self.prefix.clone(),
            "--workspace-root".into(),
            dir("workspaces"),
            "--claude-config-dir".into(),
            dir("config"),
            "--state-dir".into(),
            dir("state"),
        ];
        let mut cfg = Config::try_parse_from(args)?;
        // Set here, not from the environment the tests run in (BATON_* variables).
        cfg.executor = Executor::Instant;
        cfg.session_mode = SessionMode::Cold;
        cfg.concurrency = self.concurrency;
        cfg.lease = self.lease;
        cfg.dead_after = self.lease + Duration::from_secs(2);
        cfg.max_attempts = self.max_attempts;
        cfg.retry_base_delay = self.retry_delay;
        cfg.retry_max_delay = self.retry_delay * 4;
        cfg.max_tasks_per_hold = self.max_tasks_per_hold;
        cfg.metrics_addr = None;
        cfg.webhook_allow.clone_from(&self.webhook_allow);
        cfg.webhook_secret = self.webhook_secret.clone().map(crate::config::Secret);
        Ok(cfg)
    }
}

/// Why a harness could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("the harness's settings do not parse")]
    Settings(#[source] clap::Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the worker's task panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

/// One worker running in-process with scripted engines.
pub struct Harness {
    book: SharedBook,
    shutdown: Shutdown,
    worker: JoinHandle<Result<(), StartError>>,
}

impl Harness {
    /// Starts the worker (its loops run in the background on this runtime).
    ///
    /// # Errors
    /// [`HarnessError::Settings`]; start-up errors come from [`Harness::drain`].
    pub fn start(opts: &Options) -> Result<Self, HarnessError> {
        let cfg = opts.config().map_err(HarnessError::Settings)?;
        let book = SharedBook::default();
        let for_engines = book.clone();
        let make: MakeEngine = Arc::new(move |plan: &PlanId| -> Box<dyn Engine> {
            Box::new(Scripted {
                plan: plan.clone(),
                book: for_engines.clone(),
            })
        });
        let shutdown = Shutdown::default();
        let worker = tokio::spawn(crate::run_with(
            cfg,
            baton_core::WorkerId::for_this_process("harness"),
            shutdown.clone(),
            make,
        ));
        Ok(Self {
            book,
            shutdown,
            worker,
        })
    }

    /// What the runs of `plan`'s tasks do, in order (a run past the script answers `"ok"`).
    ///
    /// # Panics
    /// When `plan` is not a valid plan id.
    pub fn script(&self, plan: &str, steps: impl IntoIterator<Item = Step>) {
        let plan: PlanId = plan.parse().expect("a valid plan id");
        book(&self.book)
            .steps
            .entry(plan)
            .or_default()
            .extend(steps);
    }

    /// The runs the engine made of `plan`'s tasks so far.
    ///
    /// # Panics
    /// When `plan` is not a valid plan id.
    pub fn runs(&self, plan: &str) -> Vec<Run> {
        let plan: PlanId = plan.parse().expect("a valid plan id");
        book(&self.book)
            .runs
            .get(&plan)
            .cloned()
            .unwrap_or_default()
    }

    /// Stops running tasks now (a second signal).
    pub fn abort(&self) {
        self.shutdown.abort.cancel();
    }

    /// Drains the worker (as SIGTERM does) and waits for it to hand everything back.
    ///
    /// # Errors
    /// The worker's start-up error, or its panic.
    pub async fn drain(self) -> Result<(), HarnessError> {
        self.shutdown.drain.cancel();
        self.worker.await.map_err(HarnessError::Panicked)??;
        Ok(())
    }
}

/// The engine of one hold: takes the plan's next step per run.
struct Scripted {
    plan: PlanId,
    book: SharedBook,
}

impl Scripted {
    async fn run_step(
        step: Step,
        inv: &Invocation<'_>,
        progress: &mpsc::UnboundedSender<Progress>,
        stop: &CancellationToken,
    ) -> Result<Outcome, ClaudeError> {
        let mut step = step;
        loop {
            step = match step {
                Step::Answer(text) => {
                    let mut out = crate::executor::run_without_cli(&Executor::Instant, inv).await?;
                    out.result = text;
                    return Ok(out);
                }
                Step::ApiError(status) => {
                    return Err(ClaudeError::Api {
                        status: Some(status),
                        message: format!("scripted API error {status}"),
                    })
                }
                Step::Silent => return Err(ClaudeError::Silent(inv.silence_timeout)),
                Step::Hang => {
                    stop.cancelled().await;
                    return Err(ClaudeError::Cancelled);
                }
                Step::Slow(d, then) => {
                    tokio::select! {
                        () = stop.cancelled() => return Err(ClaudeError::Cancelled),
                        () = tokio::time::sleep(d) => *then,
                    }
                }
                Step::ToolUse(file, then) => {
                    let _ = progress.send(Progress::ToolUse {
                        tool: "Write".into(),
                        file_path: Some(file),
                    });
                    *then
                }
                Step::ApiRetry(status, delay_ms, then) => {
                    let _ = progress.send(Progress::ApiRetry {
                        status: Some(status),
                        attempt: 1,
                        delay_ms,
                    });
                    *then
                }
            };
        }
    }
}

impl Engine for Scripted {
    fn mode(&self) -> baton_core::event::AttemptMode {
        baton_core::event::AttemptMode::Instant
    }

    fn run<'a>(
        &'a mut self,
        inv: &'a Invocation<'a>,
        _continues: bool,
        progress: &'a mpsc::UnboundedSender<Progress>,
        stop: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Outcome, ClaudeError>> {
        let step = book(&self.book)
            .steps
            .get_mut(&self.plan)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| Step::Answer("ok".into()));
        Box::pin(async move {
            let result = Self::run_step(step, inv, progress, stop).await;
            let run = Run {
                prompt: inv.prompt.to_owned(),
                resumed: matches!(inv.session, SessionArg::Resume(_)),
                stopped: matches!(result, Err(ClaudeError::Cancelled)),
            };
            book(&self.book)
                .runs
                .entry(self.plan.clone())
                .or_default()
                .push(run);
            result
        })
    }
}

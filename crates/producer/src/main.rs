//! `baton`: the producer and inspection CLI. Every read and write goes through
//! `baton_core::Keys`, so it agrees with the workers on where everything is.
//!
//! Exit codes are decided in one place, [`Failure::exit_code`], from the constants of
//! [`baton_producer::exit`]: 0 success, 1 the plan failed (`--wait`, `--until-end`), 2 bad input
//! (an invalid document, an unknown plan), 3 Redis unreachable or other trouble. Only `main`
//! exits.

mod cancel;
mod control;
mod dashboard;
mod dead;
mod enqueue;
mod eval;
mod limits;
mod progress;
mod render;
mod retry;
mod schedule;
mod stats;
mod status;
mod watch;

use baton_connect::{Connector, SharedConn, Timeouts};
use baton_core::scripts::Env;
use baton_core::Keys;
use baton_producer::exit;
use clap::{Parser, Subcommand};

/// Enqueue plans for baton workers and follow what they do.
///
/// A plan is a JSON document with an ordered list of tasks that all run in one Claude Code
/// conversation. See the README for the format.
#[derive(Parser, Debug)]
#[command(version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    redis: baton_connect::RedisArgs,
    /// Key prefix shared with the workers.
    #[arg(long, global = true, env = "BATON_PREFIX", default_value = "baton")]
    prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Enqueue(enqueue::Enqueue),
    Watch(watch::Watch),
    Status(status::Status),
    Stats(stats::Stats),
    Dead(dead::Dead),
    Retry(retry::Retry),
    Cancel(cancel::Cancel),
    Pause(control::Pause),
    Resume(control::Resume),
    Approve(control::Approve),
    Reject(control::Reject),
    Limit(limits::Limit),
    Budget(limits::Budget),
    Dashboard(dashboard::Dashboard),
    Eval(eval::Eval),
    Schedule(schedule::Schedule),
}

/// A failure with its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The plan ended badly (exit 1).
    PlanFailed(String),
    /// The user's input is wrong (exit 2).
    BadInput(String),
    /// Anything else, e.g. Redis unreachable (exit 3).
    Other(anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure.
    fn exit_code(&self) -> u8 {
        match self {
            Self::PlanFailed(_) => exit::PLAN_FAILED,
            Self::BadInput(_) => exit::BAD_INPUT,
            Self::Other(_) => exit::TROUBLE,
        }
    }

    /// What the user is told on stderr.
    fn message(&self) -> String {
        match self {
            Self::PlanFailed(msg) => format!("plan failed: {msg}"),
            Self::BadInput(msg) => format!("error: {msg}"),
            Self::Other(e) => format!("error: {}", causes(e)),
        }
    }
}

/// An error and its causes, joined by `: `, leaving out a cause that only repeats the text
/// already shown (some errors print their source in their own message).
fn causes(e: &anyhow::Error) -> String {
    let mut shown = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if shown.contains(&text) {
            continue;
        }
        if !shown.is_empty() {
            shown.push_str(": ");
        }
        shown.push_str(&text);
    }
    shown
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl From<baton_client::ClientError> for Failure {
    fn from(e: baton_client::ClientError) -> Self {
        Self::Other(anyhow::Error::new(e))
    }
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Self::Other(anyhow::Error::new(e).context("redis command failed"))
    }
}

/// What every subcommand gets.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) connector: Connector,
    pub(crate) keys: Keys,
    /// For script calls. A client cannot know the pool's retention and event cap; the scripts
    /// it calls keep what the plan was created with.
    pub(crate) env: Env,
}

impl Ctx {
    /// A connection, checked with a `PING` (so an unreachable Redis is reported as such before
    /// anything else happens). It reconnects on the next command after a failure.
    pub(crate) async fn conn(&self) -> Result<SharedConn, Failure> {
        let mut conn = self.connector.shared(Timeouts::default());
        let unreachable = |e: redis::RedisError| {
            Failure::Other(anyhow::Error::new(e).context(format!(
                "cannot connect to redis at {}",
                self.connector.target()
            )))
        };
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(conn)
    }

    /// The read library over a checked connection (see [`Ctx::conn`]).
    pub(crate) async fn client(&self) -> Result<baton_client::Client, Failure> {
        Ok(baton_client::Client::new(
            self.conn().await?,
            self.keys.clone(),
        ))
    }

    /// A pub/sub connection.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, Failure> {
        self.connector.pubsub().await.map_err(|e| {
            Failure::Other(
                anyhow::Error::new(e)
                    .context(format!("cannot subscribe at {}", self.connector.target())),
            )
        })
    }
}

// One connection and a handful of commands at a time: a single-threaded runtime is enough,
// and starts faster.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    baton_core::logging::init_logging("warn");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" printed to stdout.
            let _ = e.print();
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::SUCCESS
            };
            std::process::exit(code.into());
        }
    };
    let code = match run(cli).await {
        Ok(()) => exit::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.message());
            failure.exit_code()
        }
    };
    // Exits at once, without waiting for tasks the runtime still runs (a dashboard connection).
    std::process::exit(code.into());
}

async fn run(cli: Cli) -> Result<(), Failure> {
    cli.prefix
        .parse::<baton_core::PlanId>()
        .map_err(|e| Failure::BadInput(format!("--prefix {e}")))?;
    let connector = Connector::new(&cli.redis).map_err(|e| Failure::BadInput(e.to_string()))?;
    let keys = Keys::new(&cli.prefix);
    let ctx = Ctx {
        connector,
        env: Env::new(keys.clone()),
        keys,
    };
    match cli.command {
        Command::Enqueue(c) => c.run(&ctx).await,
        Command::Watch(c) => c.run(&ctx).await,
        Command::Status(c) => c.run(&ctx).await,
        Command::Stats(c) => c.run(&ctx).await,
        Command::Dead(c) => c.run(&ctx).await,
        Command::Retry(c) => c.run(&ctx).await,
        Command::Limit(c) => c.run(&ctx).await,
        Command::Budget(c) => c.run(&ctx).await,
        Command::Cancel(c) => c.run(&ctx).await,
        Command::Pause(c) => c.run(&ctx).await,
        Command::Resume(c) => c.run(&ctx).await,
        Command::Approve(c) => c.run(&ctx).await,
        Command::Reject(c) => c.run(&ctx).await,
        Command::Dashboard(c) => c.run(ctx).await,
        Command::Eval(c) => c.run(&ctx).await,
        Command::Schedule(c) => c.run(&ctx).await,
    }
}

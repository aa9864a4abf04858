//! `baton`: the producer and inspection CLI. Every read and write goes through
//! `baton_core::Keys`, so it agrees with the workers on where everything is.
//!
//! Exit codes are decided here only: 0 success, 1 the plan failed (for `enqueue --wait`),
//! 2 bad input (an invalid document, an unknown plan), 3 Redis unreachable or other trouble.

mod cancel;
mod dead;
mod enqueue;
mod render;
mod retry;
mod stats;
mod status;
mod watch;

use baton_core::Keys;
use clap::{Parser, Subcommand};

/// Enqueue plans for baton workers and follow what they do.
///
/// A plan is a JSON document with an ordered list of tasks that all run in one Claude Code
/// conversation. See the README for the format.
#[derive(Parser, Debug)]
#[command(version, max_term_width = 100)]
struct Cli {
    /// Redis URL: redis://[user:password@]host:port[/db].
    #[arg(
        long,
        global = true,
        env = "BATON_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
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

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Self::Other(anyhow::Error::new(e).context("redis command failed"))
    }
}

/// The words of a baton script's reply (`{'ok', ...}` / `{'err', ...}`), as text.
pub(crate) fn reply_words(reply: &[redis::Value]) -> Vec<String> {
    reply
        .iter()
        .map(|v| match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            redis::Value::SimpleString(s) => s.clone(),
            redis::Value::Int(n) => n.to_string(),
            _ => String::new(),
        })
        .collect()
}

/// What every subcommand gets.
pub(crate) struct Ctx {
    pub(crate) client: redis::Client,
    pub(crate) keys: Keys,
}

impl Ctx {
    pub(crate) async fn conn(&self) -> Result<redis::aio::MultiplexedConnection, Failure> {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(10)))
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)));
        self.client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| Failure::Other(anyhow::Error::new(e).context("cannot connect to redis")))
    }
}

// One connection and a handful of commands at a time: a single-threaded runtime is enough,
// and starts faster.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    if let Err(e) = cli.prefix.parse::<baton_core::PlanId>() {
        eprintln!("error: --prefix {e}");
        std::process::exit(2);
    }
    let client = match redis::Client::open(cli.redis_url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid --redis-url: {e}");
            std::process::exit(2);
        }
    };
    let ctx = Ctx {
        client,
        keys: Keys::new(&cli.prefix),
    };
    let result = match cli.command {
        Command::Enqueue(c) => c.run(&ctx).await,
        Command::Watch(c) => c.run(&ctx).await,
        Command::Status(c) => c.run(&ctx).await,
        Command::Stats(c) => c.run(&ctx).await,
        Command::Dead(c) => c.run(&ctx).await,
        Command::Retry(c) => c.run(&ctx).await,
        Command::Cancel(c) => c.run(&ctx).await,
    };
    let code = match result {
        Ok(()) => 0,
        Err(Failure::PlanFailed(msg)) => {
            eprintln!("plan failed: {msg}");
            1
        }
        Err(Failure::BadInput(msg)) => {
            eprintln!("error: {msg}");
            2
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            3
        }
    };
    std::process::exit(code);
}

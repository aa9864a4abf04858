//! Test harness: starts real `redis-server` processes on free loopback ports, the model
//! stand-in, real `baton-worker` processes and the `baton` CLI, and gives tests a Redis client,
//! the stand-in's request log and one way to write documents. Everything it starts is stopped
//! when dropped.
//!
//! # Layout
//! - [`proc`]: binaries, the pinned CLI, ports, temporary folders, child processes.
//! - [`redis_server`]: a real `redis-server` per test.
//! - [`standin`]: the model stand-in and the prompts its requests carried.
//! - [`inproc`]: one worker run in-process with scripted engines (`baton_worker::testing`).
//! - [`pool`]: a pool of workers on separate "machines" against one Redis and stand-in.
//! - [`browser`]: headless Chromium over WebDriver, for the dashboard.
//! - [`docs`]: plan and action documents.
//! - [`git`]: local bare repositories standing in for remotes.
//! - [`faults`]: the fault suite's scenarios.
//! - [`tls`]: certificates for the TLS tests.
//! - [`webhook`]: a local receiver for plans' webhooks.
//! - [`otlp`]: a local OTLP/HTTP receiver of the workers' traces.
//!
//! The binaries come from the workspace build (`cargo build --workspace` runs before the tests);
//! the Claude CLI from `$BATON_CLAUDE_BIN` or `<repo>/.tools/node_modules/.bin/claude`, where the
//! test script installs the pinned version.

pub mod browser;
pub mod cli;
pub mod docs;
pub mod faults;
pub mod git;
pub mod inproc;
pub mod otlp;
pub mod pool;
pub mod proc;
pub mod redis_server;
pub mod standin;
pub mod tls;
pub mod webhook;

pub use docs::{doc, marked_plan, Doc};
pub use git::BareRepo;
pub use pool::{baton, baton_at, Pool, Worker, WorkerOpts};
pub use proc::{
    bin, claude_bin, cmdline, free_port, repo_root, spare_session, CountingCli, Proc, TempDir,
};
pub use redis_server::Redis;
pub use standin::{first_request_with, prompts_of, Standin};
// The vocabulary tests wait on and read back, typed (see `pool`).
pub use baton_core::{Counter, EventKind, PlanField, PlanId, PlanState};

/// A plan id a test names (the tests' ids are literals of the safe character set).
///
/// # Panics
/// `id` is not a valid plan id: a test's mistake.
pub fn plan_id(id: impl AsRef<str>) -> baton_core::PlanId {
    let id = id.as_ref();
    id.parse()
        .unwrap_or_else(|e| panic!("test plan id {id:?}: {e}"))
}

/// The body of `event` as the variant `Kind` of [`baton_core::event::EventBody`], or a panic
/// naming the kind it was: `let s = body!(ev, TaskSucceeded);`.
#[macro_export]
macro_rules! body {
    ($event:expr, $kind:ident) => {
        match &$event.body {
            ::baton_core::event::EventBody::$kind(b) => b,
            other => panic!(
                "expected a {} event, got {}",
                stringify!($kind),
                other.kind()
            ),
        }
    };
}

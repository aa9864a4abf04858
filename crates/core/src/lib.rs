//! baton-core: everything the producer, the worker and any other client must agree on.
//!
//! # Layout
//! - [`chain`]: an error shown with its causes, for log lines.
//! - [`ids`]: validated identifiers (`PlanId`, `TaskId`, `ClaudeSessionId`, `WorkerId`).
//! - [`plan`]: the parts of a plan (options, workspace, tasks) and their limits.
//! - [`document`]: the documents clients submit (plans and actions) and their validation.
//! - [`grants`]: what a plan may let the model use: typed tool grants and MCP servers.
//! - [`vocab`]: the closed vocabulary: plan states, fallback reasons, requeue positions,
//!   dead-letter kinds.
//! - [`counters`]: every counter's name, and increments gathered for one script call.
//! - [`keys`]: every Redis key and channel name baton uses, in one place.
//! - [`limits`]: concurrency keys and their pool-wide limits, and team budgets per day.
//! - [`plan_hash`]: the plan hash's fields and a typed view of it.
//! - [`event`]: the events published on the channel and kept per plan.
//! - [`records`]: what baton stores in Redis (tasks, results, session records, dead letters).
//! - [`repo`]: a plan's git repository: URLs and ref names a document may use, redaction.
//! - [`schedule`]: recurring plans: names, cron in a zone, due ticks, each tick's plan id and
//!   document.
//! - [`scripts`]: the Lua scripts that change several keys at once, each with a typed call and
//!   a typed reply.
//! - [`transcript`]: the committed transcript's format (read by anything that shows a
//!   conversation).
//! - `logging` (feature `logging`): the log set-up `baton` and `baton-worker` share.
//! - [`time`]: wall-clock helpers (RFC 3339 stamps, milliseconds since the epoch).
//!
//! This crate has no async runtime and no command-line parsing, so any client can depend on it.
//! docs/ARCHITECTURE.md describes how the pieces fit together.

pub mod chain;
pub mod counters;
pub mod document;
pub mod event;
pub mod grants;
pub mod ids;
pub mod keys;
pub mod limits;
#[cfg(feature = "logging")]
pub mod logging;
pub mod plan;
pub mod plan_hash;
pub mod records;
pub mod repo;
pub mod schedule;
pub mod scripts;
pub mod structured;
pub mod time;
pub mod transcript;
pub mod vocab;

pub use chain::ErrorChain;
pub use counters::{Counter, Counts, PlanTotals};
pub use document::{ActionRequest, Document, PlanAction, Submission, ValidationError};
pub use event::{Event, EventKind};
pub use grants::{McpServer, ToolGrant};
pub use ids::{ClaudeSessionId, IdError, PlanId, TaskId, WorkerId};
pub use keys::Keys;
pub use plan::{PermissionMode, PlanOptions, TaskContext, TaskSpec, Workspace};
pub use plan_hash::{PlanField, PlanHash};
pub use repo::{GitRef, RepoRequest, RepoSpec, RepoUrl};
pub use vocab::{DeadLetterKind, FallbackReason, PlanState, Priority, Requeue, UnknownName};

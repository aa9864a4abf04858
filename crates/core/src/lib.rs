//! baton-core: everything the producer, the worker and any other client must agree on.
//!
//! # Layout
//! - [`ids`]: validated identifiers (`PlanId`, `TaskId`, `ClaudeSessionId`, `WorkerId`).
//! - [`plan`]: the plan document users submit, its limits and its validation.
//! - [`keys`]: every Redis key and channel name baton uses, in one place.
//! - [`event`]: the events published on the channel and kept per plan.
//! - [`records`]: what baton stores in Redis (tasks, results, session records, dead letters).
//! - [`scripts`]: the Lua scripts that change several keys at once, fenced where it matters.
//! - [`time`]: wall-clock helpers (RFC 3339 stamps, milliseconds since the epoch).
//!
//! This crate has no async runtime and no command-line parsing, so any client can depend on it.

pub mod event;
pub mod ids;
pub mod keys;
pub mod plan;
pub mod records;
pub mod scripts;
pub mod time;

pub use event::{Event, EventKind};
pub use ids::{ClaudeSessionId, IdError, PlanId, TaskId, WorkerId};
pub use keys::Keys;
pub use plan::{PermissionMode, PlanOptions, Submission, TaskSpec, ValidationError, Workspace};

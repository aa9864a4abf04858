//! The library part of `baton-producer`: what the `baton` binary promises its callers, for
//! the tests and other programs to name instead of repeating numbers.
//!
//! # Layout
//! - [`exit`]: the exit codes of `baton`.

pub mod exit;

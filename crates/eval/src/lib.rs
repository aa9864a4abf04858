//! `baton eval`: measures what one conversation per plan buys.
//!
//! A suite of small multi-file projects (`eval/projects`) runs through a pool in *arms*: one
//! conversation per plan (baton as it is), every task a fresh session with no context, every
//! task a fresh session seeded with baton's recap, and one conversation with every task handed
//! to another worker. What each plan leaves is checked with the language's real toolchain and
//! every error classified (missing import, broken cross-reference, other, failing test); the
//! report sets the arms side by side against the seed's success criteria.
//!
//! # Layout
//! - [`suite`]: the projects (`eval/projects/*/project.json`).
//! - [`arm`]: the arms, and the plan document of a project in each.
//! - [`check`]: the toolchains (installed on first use) and the classifiers of their output.
//! - [`report`]: the figures, the criteria, and the report as JSON, Markdown and SVG.

pub mod arm;
pub mod check;
pub mod report;
pub mod suite;

//! `baton`'s exit codes, decided here and nowhere else (nextest's `exit_codes.rs`): scripts
//! that run `baton enqueue --wait` or `baton watch --until-end` branch on them, and the tests
//! compare against them.

/// Success (and `--wait`/`--until-end` ending because the plan asks for a review).
pub const SUCCESS: u8 = 0;
/// The plan ended without completing or its document was rejected (`--wait`,
/// `--until-end`).
pub const PLAN_FAILED: u8 = 1;
/// The input is wrong: an invalid document, an unknown plan, a refused action, a flag that
/// does not parse (the same code clap gives a usage error).
pub const BAD_INPUT: u8 = 2;
/// Anything else: Redis unreachable, a TLS handshake refused, a command that failed.
pub const TROUBLE: u8 = 3;

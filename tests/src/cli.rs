//! The `baton` CLI as a test calls it against a pool: a command that must succeed (its stdout)
//! or be refused as bad input (its stderr), failing with what the CLI said otherwise.

use anyhow::{ensure, Result};
use baton_producer::exit;

use crate::pool::{baton, Pool};

/// Runs `baton ARGS` against the pool; fails unless it succeeded. Returns stdout.
pub fn run(pool: &Pool, args: &[&str]) -> Result<String> {
    let out = baton(&pool.redis, args, None)?;
    ensure!(
        out.status.success(),
        "baton {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `baton ARGS`, which must be refused as bad input. Returns stderr.
pub fn refused(pool: &Pool, args: &[&str]) -> Result<String> {
    let out = baton(&pool.redis, args, None)?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.code() == Some(exit::BAD_INPUT.into()),
        "baton {args:?}: {:?} {err}",
        out.status
    );
    Ok(err)
}

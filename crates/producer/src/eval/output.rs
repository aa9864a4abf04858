//! What a run is called, where its toolchains live, and the report's files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use baton_eval::report::{self, Report};

/// A short id for the run, from the clock (base 36 seconds since the epoch).
pub(super) fn run_id() -> String {
    let mut n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    while n > 0 {
        s.push(digits[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

pub(super) fn default_tools_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("baton").join("eval-tools")
}

/// Writes report.json, report.md and errors.svg to `out`, and prints the tables.
pub(super) fn write_report(out: &Path, report: &Report) -> Result<()> {
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(report)?)?;
    let md = report::markdown(report);
    std::fs::write(out.join("report.md"), &md)?;
    let svg = report::chart_svg(report).map_err(|e| anyhow::anyhow!("drawing the chart: {e}"))?;
    std::fs::write(out.join("errors.svg"), svg)?;
    let tables = md.split("\n## Plans").next().unwrap_or(&md);
    println!("{tables}");
    println!(
        "Report: {} (and report.json, errors.svg beside it)",
        out.join("report.md").display()
    );
    if report.plans.iter().any(|p| p.check_error.is_some()) {
        bail!("some plans could not be checked; see the report's plan lines");
    }
    Ok(())
}

//! The CLI's version: read once at start-up (`claude --version`), logged, and compared with the
//! oldest version baton's suite passed on. An older CLI is refused (its flags or its stream
//! could differ from what baton reads); a CLI whose version cannot be read is let through with
//! a warning (its tasks then fail with the CLI's own error, dead-lettered as usual).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use tracing::{info, warn};

/// The oldest CLI the whole test suite passed on.
pub(crate) const OLDEST_TESTED: CliVersion = CliVersion(2, 1, 331);

/// How long `claude --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// A CLI version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CliVersion(pub(crate) u32, pub(crate) u32, pub(crate) u32);

impl fmt::Display for CliVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl FromStr for CliVersion {
    type Err = String;

    /// Reads `2.1.331 (Claude Code)` (the first word of `claude --version`).
    fn from_str(s: &str) -> Result<Self, String> {
        let word = s.split_whitespace().next().unwrap_or_default();
        let mut parts = word.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Ok(Self(a, b, c)),
            _ => Err(format!("{s:?} is not a version")),
        }
    }
}

/// The version of the CLI at `bin`, if it answers `--version` with one.
async fn read(bin: &Path) -> Result<CliVersion, String> {
    let run = tokio::process::Command::new(bin)
        .arg("--version")
        .env("DISABLE_AUTOUPDATER", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(VERSION_TIMEOUT, run)
        .await
        .map_err(|_| {
            format!(
                "`{} --version` took over {VERSION_TIMEOUT:?}",
                bin.display()
            )
        })?
        .map_err(|e| format!("cannot run `{} --version`: {e}", bin.display()))?;
    String::from_utf8_lossy(&out.stdout).trim().parse()
}

/// Reads, logs and checks the CLI's version. `Err`: the CLI is older than [`OLDEST_TESTED`].
pub(crate) async fn check(bin: &Path) -> Result<(), (CliVersion, CliVersion)> {
    match read(bin).await {
        Ok(v) if v < OLDEST_TESTED => Err((v, OLDEST_TESTED)),
        Ok(v) => {
            info!(version = %v, bin = %bin.display(), "claude CLI");
            Ok(())
        }
        Err(e) => {
            warn!(error = %e, "cannot tell the claude CLI's version; going on");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_and_compare() {
        let v: CliVersion = "2.1.332 (Claude Code)".parse().unwrap();
        assert_eq!(v, CliVersion(2, 1, 332));
        assert!(v > OLDEST_TESTED);
        assert!("2.0.99 (Claude Code)".parse::<CliVersion>().unwrap() < OLDEST_TESTED);
        assert!("2.10.0".parse::<CliVersion>().unwrap() > OLDEST_TESTED);
        assert!("claude".parse::<CliVersion>().is_err());
        assert_eq!(OLDEST_TESTED.to_string(), "2.1.331");
    }
}

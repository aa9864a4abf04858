//! Where the worker keeps its own state when `--state-dir` is not given: the platform's state
//! dir (the XDG base directory spec), never a folder relative to wherever the worker was
//! started (two workers started from one folder would share it).

use std::ffi::OsString;
use std::path::PathBuf;

/// Neither `--state-dir` nor a usable `$XDG_STATE_HOME` or `$HOME`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "no state dir: give --state-dir (or BATON_STATE_DIR), or set XDG_STATE_HOME or HOME (an \
     absolute path) for the default $XDG_STATE_HOME/baton or $HOME/.local/state/baton"
)]
pub struct NoStateDir;

/// `$XDG_STATE_HOME/baton`, else `$HOME/.local/state/baton`, from the values of those two
/// variables. A value that is empty or relative is ignored, as the spec says.
///
/// # Errors
/// [`NoStateDir`] when neither gives an absolute path.
pub(crate) fn default_state_dir(
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, NoStateDir> {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(xdg) = absolute(xdg_state_home) {
        return Ok(xdg.join("baton"));
    }
    absolute(home)
        .map(|h| h.join(".local/state/baton"))
        .ok_or(NoStateDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_follows_the_environment() {
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some("/x/state"), Some("/home/u"), Some("/x/state/baton")),
            (None, Some("/home/u"), Some("/home/u/.local/state/baton")),
            (
                Some(""),
                Some("/home/u"),
                Some("/home/u/.local/state/baton"),
            ),
            (
                Some("rel/state"),
                Some("/home/u"),
                Some("/home/u/.local/state/baton"),
            ),
            (Some("/x/state"), None, Some("/x/state/baton")),
            (None, None, None),
            (Some(""), Some(""), None),
            (None, Some("home/u"), None),
        ];
        for &(xdg, home, want) in cases {
            let got = default_state_dir(xdg.map(Into::into), home.map(Into::into));
            assert_eq!(
                got.ok(),
                want.map(PathBuf::from),
                "XDG_STATE_HOME={xdg:?} HOME={home:?}"
            );
        }
    }
}

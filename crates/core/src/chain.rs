//! An error shown with its causes, for log lines: a `thiserror` type keeps its cause in
//! `#[source]`, not in its message, so `error = %e` alone would hide why it failed.

use std::error::Error;
use std::fmt;

/// Displays an error and each of its sources, joined by `: `, leaving out a source whose text
/// the message shown so far already holds (some errors print their source themselves).
///
/// # Examples
///
/// ```
/// use baton_core::ErrorChain;
/// let e = std::io::Error::other("disk full");
/// assert_eq!(ErrorChain(&e).to_string(), "disk full");
/// ```
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            cause = c.source();
        }
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("unexpected reply from a baton script")]
        Reply(#[source] Inner),
        #[error("redis command failed: {0}")]
        Repeats(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("compact.lua returned \"x\"")]
    struct Inner;

    #[test]
    fn every_cause_is_shown_once() {
        assert_eq!(
            ErrorChain(&Outer::Reply(Inner)).to_string(),
            "unexpected reply from a baton script: compact.lua returned \"x\""
        );
        assert_eq!(
            ErrorChain(&Outer::Repeats(Inner)).to_string(),
            "redis command failed: compact.lua returned \"x\""
        );
    }
}

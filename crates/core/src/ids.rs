//! Identifiers. Each is a newtype that parses and prints, so a bare `String` never stands in
//! for an id and every id that reaches a Redis key or a path has passed the same check.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest plan, task or worker id accepted.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("contains {0:?}; allowed are letters, digits, '-', '_' and '.'")]
    BadChar(char),
    #[error("must start with a letter or digit")]
    BadStart,
    #[error("is not a UUID")]
    NotUuid,
}

/// Checks the safe character set shared by every id: ASCII letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit. No braces (Redis hash tags), colons (key separators),
/// spaces, slashes or control characters can get through.
fn check_safe_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(IdError::BadChar(c));
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(IdError::BadStart);
    }
    Ok(())
}

macro_rules! safe_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A fresh random id (a UUID v4, which is in the safe set).
            pub fn generate() -> Self {
                Self(Uuid::new_v4().to_string())
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                check_safe_id(s)?;
                Ok(Self(s.to_owned()))
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_safe_id(&s)?;
                Ok(Self(s))
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

safe_id!(
    /// A plan's id: the name of its conversation, its Redis hash tag and (by default) its
    /// workspace folder.
    PlanId
);
safe_id!(
    /// A task's id, unique within its plan.
    TaskId
);
safe_id!(
    /// One worker process start: `<host>-<pid>-<random>`, so a restarted worker never
    /// inherits the in-flight list of its previous life.
    WorkerId
);

impl WorkerId {
    /// An id for this process: host name, pid and a random suffix, cut to the safe set.
    pub fn for_this_process(host: &str) -> Self {
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(24)
            .collect();
        let host = if host.is_empty() {
            "worker".into()
        } else {
            host
        };
        let suffix = &Uuid::new_v4().simple().to_string()[..8];
        Self(format!("{host}-{}-{suffix}", std::process::id()))
    }
}

/// A Claude Code session id. The CLI only accepts UUIDs for `--session-id` and `--resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaudeSessionId(pub Uuid);

impl ClaudeSessionId {
    /// A fresh session id, chosen by baton before the CLI runs so it is known up front.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

impl FromStr for ClaudeSessionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Uuid::parse_str(s).map(Self).map_err(|_| IdError::NotUuid)
    }
}

impl fmt::Display for ClaudeSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_accept_the_safe_set_and_refuse_the_rest() {
        for ok in ["a", "plan-1", "A_b.c", "0f8e", &"x".repeat(64)] {
            assert!(ok.parse::<PlanId>().is_ok(), "{ok}");
        }
        let cases: [(&str, IdError); 7] = [
            ("", IdError::Empty),
            (&"x".repeat(65), IdError::TooLong),
            ("a{b}", IdError::BadChar('{')),
            ("a:b", IdError::BadChar(':')),
            ("a b", IdError::BadChar(' ')),
            ("a\u{0}", IdError::BadChar('\u{0}')),
            ("-a", IdError::BadStart),
        ];
        for (bad, want) in cases {
            assert_eq!(bad.parse::<TaskId>().unwrap_err(), want, "{bad:?}");
        }
    }

    #[test]
    fn worker_ids_are_safe_and_unique() {
        let a = WorkerId::for_this_process("my host{1}");
        let b = WorkerId::for_this_process("my host{1}");
        assert_ne!(a, b);
        assert!(a.as_str().parse::<WorkerId>().is_ok(), "{a}");
        assert!(a.as_str().starts_with("myhost1-"));
    }
}

//! The closed vocabulary: every name baton stores in Redis or publishes that is not free text
//! (plan states, fallback reasons, requeue positions, dead-letter kinds), each named exactly
//! once here. Lua scripts spell the same names; `scripts::tests` checks that they use no other.
//!
//! Every enum made by [`closed_enum!`] prints its wire name, parses it back (with an
//! [`UnknownName`] error naming what was expected), and serializes as that string.

/// A string that names nothing of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}")]
pub struct UnknownName {
    /// What was expected, e.g. `plan state`.
    pub what: &'static str,
    /// What was found.
    pub got: String,
}

/// Declares a closed enum with its wire names: `as_str`, `ALL`, `Display`, `FromStr`, serde
/// (the crate using it needs `serde`). Exported for the other crates' own closed sets (the
/// dashboard's buttons, the worker's metric labels).
#[macro_export]
macro_rules! closed_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$doc:meta])* $variant:ident = $wire:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$doc])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vocab::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)*
                    _ => Err($crate::vocab::UnknownName { what: $what, got: s.to_owned() }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub use closed_enum;

closed_enum! {
    /// Where a plan stands (the plan hash's `state`).
    pub enum PlanState ("plan state") {
        /// Has tasks waiting for a worker.
        Queued = "queued",
        /// A worker holds it.
        Running = "running",
        /// Every task so far succeeded; a follow-up may add more.
        Completed = "completed",
        /// A task failed for good, or the budget is spent; `baton retry` resumes from it.
        Failed = "failed",
        /// Ended by `baton cancel`.
        Cancelled = "cancelled",
        /// Paused by a user (`baton pause`): runs nothing until resumed.
        Paused = "paused",
        /// A task with `"review": true` committed: the plan waits for `baton approve` or
        /// `baton reject`.
        AwaitingReview = "awaiting_review",
    }
}

impl PlanState {
    /// True while the plan has work a worker may run (`queued`, `running`).
    pub fn is_runnable(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

closed_enum! {
    /// A plan's priority (plan option `priority`): workers claim high before normal before
    /// low, with a share of claims kept for the lower ones (see `claim.lua`).
    #[derive(Default)]
    pub enum Priority ("priority") {
        High = "high",
        #[default]
        Normal = "normal",
        Low = "low",
    }
}

closed_enum! {
    /// Why a plan's session could not be resumed and a new one starts with a recap.
    pub enum FallbackReason ("fallback reason") {
        /// The session record's TTL passed.
        Expired = "expired",
        /// The record is there, the committed transcript is not.
        TranscriptMissing = "transcript_missing",
        /// The committed transcript does not unpack to what the record says.
        TranscriptCorrupt = "transcript_corrupt",
        /// The CLI answered `No conversation found`.
        NotFound = "not_found",
        /// The CLI continued a session other than the one asked for.
        SessionMismatch = "session_mismatch",
    }
}

closed_enum! {
    /// Where a plan goes when a worker takes it off its in-flight list.
    pub enum Requeue ("requeue position") {
        /// The end of the ready list: it waits its turn (fairness).
        Back = "back",
        /// The next to be claimed (a shutdown, a lost lease, a retry a user waits for).
        Front = "front",
        /// Not before a given time: the plan waits in the delayed set until then.
        Later = "later",
        /// Not requeued: nothing to run, or someone else holds it.
        Drop = "drop",
    }
}

closed_enum! {
    /// What a dead letter holds.
    pub enum DeadLetterKind ("dead-letter kind") {
        /// A document that failed validation (kept whole, so it can be requeued).
        Submission = "submission",
        /// A task that failed for good.
        Task = "task",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_unknown_names_say_what_was_expected() {
        for s in PlanState::ALL {
            assert_eq!(s.as_str().parse::<PlanState>().unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(serde_json::from_str::<PlanState>(&json).unwrap(), *s);
        }
        for r in FallbackReason::ALL {
            assert_eq!(r.to_string().parse::<FallbackReason>().unwrap(), *r);
        }
        for r in Requeue::ALL {
            assert_eq!(r.as_str().parse::<Requeue>().unwrap(), *r);
        }
        let e = "sleeping".parse::<PlanState>().unwrap_err();
        assert_eq!(e.to_string(), "unknown plan state \"sleeping\"");
        assert!(serde_json::from_str::<DeadLetterKind>("\"mail\"").is_err());
    }
}

//! The Lua scripts that change several keys at once. Each script lives in `lua/<name>.lua`
//! with a KEYS/ARGV/Returns header, touches keys of one hash slot only (a plan's, or the
//! pool's), and checks the lease token before writing where a stale worker could interfere.
//! Scripts marked `prelude = true` get `lua/prelude.lua` (`emit`, `keep_for`, `add_counts`,
//! `append_holder_fields`) prepended.

use std::sync::LazyLock;

use redis::Script;

const PRELUDE: &str = include_str!("../lua/prelude.lua");

macro_rules! scripts {
    ($($(#[$doc:meta])* $name:ident = $file:literal, prelude = $prelude:literal;)*) => {
        $(
            $(#[$doc])*
            pub static $name: LazyLock<Script> = LazyLock::new(|| {
                let body = include_str!(concat!("../lua/", $file));
                if $prelude { Script::new(&format!("{PRELUDE}\n{body}")) } else { Script::new(body) }
            });
        )*

        /// Every script with its file name (without `.lua`): for tools that read `EVALSHA`
        /// traffic, such as the benchmark's command count.
        pub fn named() -> Vec<(&'static str, &'static Script)> {
            vec![$((strip_lua($file), &*$name),)*]
        }
    };
}

const fn strip_lua(file: &'static str) -> &'static str {
    match file.as_bytes() {
        [rest @ .., b'.', b'l', b'u', b'a'] => match std::str::from_utf8(rest) {
            Ok(s) => s,
            Err(_) => file,
        },
        _ => file,
    }
}

scripts! {
    /// Applies a validated document to its plan (plan slot).
    INGEST = "ingest.lua", prelude = true;
    /// Ends an ingest: drops the document, schedules the plan (pool slot).
    FINISH_INGEST = "finish_ingest.lua", prelude = true;
    /// Takes a plan's lease and reads its next task (plan slot).
    ACQUIRE = "acquire.lua", prelude = true;
    /// Announces a task attempt: its events and the plan's counters (plan slot).
    START = "start.lua", prelude = true;
    /// Adds to pool-wide counters (pool slot).
    COUNT = "count.lua", prelude = true;
    /// Renews a lease (plan slot).
    RENEW = "renew.lua", prelude = false;
    /// Commits a task result and returns the next task or gives the lease back, fenced (plan slot).
    COMMIT = "commit.lua", prelude = true;
    /// Stops a plan (failed or cancelled), fenced (plan slot).
    FAIL = "fail.lua", prelude = true;
    /// Gives a lease back (plan slot).
    RELEASE = "release.lua", prelude = false;
    /// Takes a plan off an in-flight list, optionally requeueing it (pool slot).
    UNCLAIM = "unclaim.lua", prelude = true;
    /// Stores and publishes one plan event (plan slot).
    EMIT = "emit.lua", prelude = true;
    /// Frees a dead worker's lease on a plan (plan slot).
    REAP_LOCK = "reap_lock.lua", prelude = false;
    /// Hands a dead worker's plans and documents back (pool slot).
    REAP_WORKER = "reap_worker.lua", prelude = false;
    /// Puts a failed plan back in service (plan slot).
    RETRY = "retry.lua", prelude = true;
    /// Cancels a plan (plan slot).
    CANCEL = "cancel.lua", prelude = true;
}

/// Prefix of a document that a worker has taken for ingest: `baton-tag:<uuid>\n<document>`.
/// The tag makes ingest idempotent when a crashed worker's document is ingested again; it can
/// never start a JSON document, so a tagged entry and a raw one cannot be confused.
pub const INGEST_TAG_PREFIX: &str = "baton-tag:";

/// Splits an ingest entry into its tag (if it has one) and the document.
pub fn split_tagged(entry: &[u8]) -> (Option<&str>, &[u8]) {
    let Some(rest) = entry.strip_prefix(INGEST_TAG_PREFIX.as_bytes()) else {
        return (None, entry);
    };
    match rest.iter().position(|b| *b == b'\n') {
        Some(nl) => match std::str::from_utf8(&rest[..nl]) {
            Ok(tag) if uuid::Uuid::parse_str(tag).is_ok() => (Some(tag), &rest[nl + 1..]),
            _ => (None, entry),
        },
        None => (None, entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_and_untagged_documents_pass_through() {
        let e = b"baton-tag:5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11\n{\"tasks\":[]}";
        let (tag, doc) = split_tagged(e);
        assert_eq!(tag, Some("5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11"));
        assert_eq!(doc, b"{\"tasks\":[]}");
        assert_eq!(split_tagged(b"{}"), (None, &b"{}"[..]));
        assert_eq!(split_tagged(b"baton-tag:nope\n{}").0, None);
    }

    #[test]
    fn every_script_loads_under_its_file_name() {
        let all = named();
        assert_eq!(all.len(), 15);
        assert!(all.iter().any(|(n, _)| *n == "commit"));
        for (_, s) in all {
            assert_eq!(s.get_hash().len(), 40);
        }
    }
}

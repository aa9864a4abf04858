//! The session decisions, for every way a task's session can start.

use super::*;

/// After a review the model is told what the reviewer said, and where the task begins.
#[test]
fn reviews_reach_the_prompt() {
    let task = |rework| StoredTask {
        id: "schema".parse().unwrap(),
        index: 0,
        kind: None,
        prompt: "Split the tables.".into(),
        recoveries: 0,
        review: true,
        rework,
        json_schema: None,
    };
    assert_eq!(reviewed_prompt(&task(0), None), "Split the tables.");
    let rework = reviewed_prompt(&task(1), Some("ignored: a rework has its own note"));
    assert!(
        rework.contains("rejected your last result for task schema"),
        "{rework}"
    );
    assert!(
        rework.ends_with("Their note:\n\nSplit the tables."),
        "{rework}"
    );
    let next = reviewed_prompt(&task(0), Some("Use UUIDs."));
    let (note, prompt) = (
        next.find("Use UUIDs.").unwrap(),
        next.find("Split").unwrap(),
    );
    assert!(note < prompt, "{next}");
}

fn record(context_tokens: u64, digest: &str) -> SessionRecord {
    SessionRecord {
        session_id: ClaudeSessionId::generate(),
        created_at: String::new(),
        last_used_at: String::new(),
        last_worker: "w1".parse().unwrap(),
        tasks: 1,
        context_tokens,
        transcript_sha256: digest.into(),
        cwd: "/w/p".into(),
        ttl_secs: 60,
    }
}

/// Every way a task's session can start, from the committed state and the local copy.
#[test]
fn the_session_choice_covers_every_fallback_reason() {
    let r = record(1_000, "abc");
    let big = record(200_000, "abc");
    let resume = |copy| match choose(Some(&r), true, None, 150_000) {
        How::Resume(rec) => after_restore(rec, copy),
        other => panic!("expected a resume, got {other:?}"),
    };
    let cases = [
        (choose(None, false, None, 150_000), How::First),
        (
            choose(None, true, None, 150_000),
            How::Fallback(FallbackReason::Expired),
        ),
        (choose(Some(&big), true, None, 150_000), How::Rotated),
        (resume(LocalCopy::Current), How::Resume(r.clone())),
        (resume(LocalCopy::Restored), How::Resume(r.clone())),
        (
            resume(LocalCopy::Missing),
            How::Fallback(FallbackReason::TranscriptMissing),
        ),
        (
            resume(LocalCopy::Corrupt),
            How::Fallback(FallbackReason::TranscriptCorrupt),
        ),
        (
            choose(Some(&r), true, Some(FallbackReason::NotFound), 150_000),
            How::Fallback(FallbackReason::NotFound),
        ),
        (
            choose(
                Some(&r),
                true,
                Some(FallbackReason::SessionMismatch),
                150_000,
            ),
            How::Fallback(FallbackReason::SessionMismatch),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn a_session_that_moved_is_told_where_it_is_now() {
    let r = record(1, "abc");
    assert_eq!(moved_prompt(&r, Path::new("/w/p"), "go"), "go");
    let moved = moved_prompt(&r, Path::new("/x/p"), "go");
    assert!(
        moved.contains("/x/p (it was /w/p)") && moved.ends_with("\n\ngo"),
        "{moved}"
    );
}

#[test]
fn only_the_holds_own_last_turn_is_continued() {
    let r = record(1, "abc");
    let start = SessionStart {
        arg: SessionArg::Resume(r.session_id),
        prompt: String::new(),
        how: How::Resume(r.clone()),
        committed: None,
        restored_chunks: 0,
    };
    assert!(start.continues(Some(&r)));
    assert!(!start.continues(None), "nothing committed by this hold");
    assert!(!start.continues(Some(&record(1, "abc"))), "another session");
    let mut other_turn = r.clone();
    other_turn.transcript_sha256 = "def".into();
    assert!(!start.continues(Some(&other_turn)), "another turn");
    let mut none = r.clone();
    none.transcript_sha256.clear();
    let start_none = SessionStart {
        how: How::Resume(none.clone()),
        ..start.clone()
    };
    assert!(
        !start_none.continues(Some(&none)),
        "no transcript committed"
    );
}

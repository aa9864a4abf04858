//! The stream reader's classification of lines and ends, and its limits in time (under
//! tokio's paused clock).

use super::*;
use crate::decision::Decision;
use baton_core::FallbackReason;

fn reader() -> (
    StreamReader,
    mpsc::UnboundedSender<Progress>,
    mpsc::UnboundedReceiver<Progress>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let id: ClaudeSessionId = "6bbba7b0-f321-478c-b8a3-4f20b5839a74".parse().unwrap();
    (StreamReader::new(Path::new("/w/p"), id), tx, rx)
}

#[test]
fn success_needs_subtype_success_and_no_error() {
    let (mut r, tx, mut rx) = reader();
    r.line(
        r#"{"type":"system","subtype":"init","session_id":"6bbba7b0-f321-478c-b8a3-4f20b5839a74"}"#,
        &tx,
    );
    r.line(r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write","input":{"file_path":"/w/p/a.py"}}],"usage":{"input_tokens":10,"output_tokens":5}}}"#, &tx);
    r.line(r#"{"type":"result","subtype":"success","is_error":false,"result":"done","session_id":"6bbba7b0-f321-478c-b8a3-4f20b5839a74","total_cost_usd":0.1,"usage":{"input_tokens":7,"output_tokens":3}}"#, &tx);
    assert_eq!(
        rx.try_recv().unwrap(),
        Progress::ToolUse {
            tool: "Write".into(),
            file_path: Some("a.py".into())
        }
    );
    let o = r.finish("exit status: 0".into(), String::new()).unwrap();
    assert_eq!(
        (o.result.as_str(), o.files.len(), o.context_tokens),
        ("done", 1, 15)
    );
}

/// What each way a stream can end is classified as.
#[test]
fn streams_are_classified_by_how_they_end() {
    let finish = |lines: &[&str], status: &str, stderr: &str| {
        let (mut r, tx, _rx) = reader();
        for l in lines {
            if let Some(stop) = r.line(l, &tx) {
                return stop.decision();
            }
        }
        r.finish(status.into(), stderr.into())
            .unwrap_err()
            .decision()
    };
    let cases: &[(&[&str], &str, &str, Decision)] = &[
        (
            &[
                r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"result":"API Error: overloaded"}"#,
            ],
            "",
            "",
            Decision::Retry,
        ),
        (
            &[
                r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":400,"result":"API Error: bad"}"#,
            ],
            "",
            "",
            Decision::Fail,
        ),
        (
            &[
                r#"{"type":"system","subtype":"api_retry","attempt":1,"error_status":401,"error":"authentication_failed"}"#,
            ],
            "",
            "",
            Decision::Fail,
        ),
        (
            &[],
            "exit status: 1",
            "No conversation found with session ID: x",
            Decision::NewSession(FallbackReason::NotFound),
        ),
        (
            &[
                r#"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"No conversation found with session ID: x"}"#,
            ],
            "",
            "",
            Decision::NewSession(FallbackReason::NotFound),
        ),
        (
            &[
                r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"00000000-0000-0000-0000-000000000000"}"#,
            ],
            "",
            "",
            Decision::NewSession(FallbackReason::SessionMismatch),
        ),
        (
            &[r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"result":""}"#],
            "",
            "budget",
            Decision::BudgetSpent,
        ),
        (
            &[r#"{"type":"result","subtype":"error_max_turns","is_error":true,"result":"turns"}"#],
            "",
            "",
            // The plan's max_turns would stop the task at the same place again.
            Decision::Fail,
        ),
        (&["not json at all"], "signal: 9", "", Decision::Retry),
    ];
    for (lines, status, stderr, want) in cases {
        assert_eq!(finish(lines, status, stderr), *want, "{lines:?} {stderr}");
    }
}

const INIT: &str =
    r#"{"type":"system","subtype":"init","session_id":"6bbba7b0-f321-478c-b8a3-4f20b5839a74"}"#;

/// An invocation with these limits (nothing else of it is read by the stream).
fn limited<'a>(
    options: &'a baton_core::PlanOptions,
    timeout: Duration,
    silence: Duration,
) -> Invocation<'a> {
    let id: ClaudeSessionId = "6bbba7b0-f321-478c-b8a3-4f20b5839a74".parse().unwrap();
    Invocation {
        bin: Path::new("claude"),
        cwd: Path::new("/w/p"),
        config_dir: Path::new("/c"),
        session: crate::claude::SessionArg::New(id),
        options,
        json_schema: None,
        budget_left_usd: None,
        prompt: "p",
        timeout,
        silence_timeout: silence,
        reach: crate::claude::Reach {
            sandbox: None,
            loopback_url: "http://127.0.0.1:1",
            token: "t",
            trust_repo_settings: false,
        },
        traceparent: None,
    }
}

/// Reads a turn from `lines` (written by a task of the test) under `inv`'s limits; returns how
/// it ended and when, on the paused clock.
async fn read_limited(
    inv: &Invocation<'_>,
    write: impl FnOnce(tokio::io::DuplexStream) -> tokio::task::JoinHandle<()>,
) -> (Result<bool, ClaudeError>, Duration) {
    use tokio::io::AsyncBufReadExt;
    let (out, r) = tokio::io::duplex(1 << 16);
    let writer = write(out);
    let mut lines = tokio::io::BufReader::new(r).lines();
    let (mut reader, tx, _rx) = reader();
    let mut started = false;
    let cancel = CancellationToken::new();
    let t0 = Instant::now();
    let ended = read_turn(
        &mut lines,
        &mut reader,
        &mut started,
        inv,
        true,
        &tx,
        &cancel,
    )
    .await;
    writer.abort();
    (ended, t0.elapsed())
}

/// A stream that goes quiet after its first line is cut off after the silence limit; one that
/// never printed gets the start-up allowance first.
#[tokio::test(start_paused = true)]
async fn a_silent_stream_is_cut_off_at_the_silence_limit_after_its_start_up() {
    let options = baton_core::PlanOptions::default();
    let inv = limited(&options, Duration::from_secs(600), Duration::from_secs(5));
    let (ended, took) = read_limited(&inv, |mut out| {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = out.write_all(format!("{INIT}\n").as_bytes()).await;
            std::future::pending::<()>().await;
        })
    })
    .await;
    assert!(
        matches!(ended, Err(ClaudeError::Silent(d)) if d == Duration::from_secs(5)),
        "{ended:?}"
    );
    assert_eq!(took, Duration::from_secs(5));

    let (ended, took) = read_limited(&inv, |out| {
        tokio::spawn(async move {
            let _kept = out;
            std::future::pending::<()>().await;
        })
    })
    .await;
    assert!(
        matches!(ended, Err(ClaudeError::Silent(d)) if d == STARTUP_ALLOWANCE),
        "{ended:?}"
    );
    assert_eq!(took, STARTUP_ALLOWANCE);
}

/// A stream that keeps printing (a line a second, never a result) is cut off at the
/// wall-clock limit, not let run because it is never silent.
#[tokio::test(start_paused = true)]
async fn a_chatty_stream_is_cut_off_at_the_wall_clock_limit() {
    let options = baton_core::PlanOptions::default();
    let inv = limited(&options, Duration::from_secs(12), Duration::from_secs(5));
    let (ended, took) = read_limited(&inv, |mut out| {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = out.write_all(format!("{INIT}\n").as_bytes()).await;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = out.write_all(b"chatter that is not json\n").await;
            }
            std::future::pending::<()>().await;
        })
    })
    .await;
    assert!(
        matches!(ended, Err(ClaudeError::Timeout(d)) if d == Duration::from_secs(12)),
        "{ended:?}"
    );
    assert_eq!(took, Duration::from_secs(12));
}

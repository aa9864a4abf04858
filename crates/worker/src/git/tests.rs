use super::*;

#[test]
fn authors_parse_and_failures_carry_their_decision() {
    let a: Author = "baton <baton@example.com>".parse().unwrap();
    assert_eq!(
        (a.name.as_str(), a.email.as_str()),
        ("baton", "baton@example.com")
    );
    assert!("no email".parse::<Author>().is_err());
    let s = |x: &str| x.to_owned();
    let cases = [
        (
            GitError::Unreachable {
                url: s("u"),
                detail: s("d"),
            },
            Decision::Retry,
        ),
        (
            GitError::PushRefused {
                branch: s("b"),
                detail: s("d"),
            },
            Decision::Retry,
        ),
        (
            GitError::Timeout {
                what: s("fetch"),
                timeout: Duration::ZERO,
            },
            Decision::Retry,
        ),
        (
            GitError::Failed {
                what: s("add"),
                detail: s("d"),
            },
            Decision::Retry,
        ),
        (
            GitError::UnknownBase {
                base: s("nope"),
                url: s("u"),
            },
            Decision::Fail,
        ),
        (
            GitError::CheckpointGone {
                commit: s("c"),
                url: s("u"),
            },
            Decision::Fail,
        ),
        (
            GitError::BranchMoved {
                branch: s("b"),
                url: s("u"),
                at: s("a"),
            },
            Decision::Fail,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.decision(), want, "{e}");
    }
    assert!(unreachable(
        "fatal: '/nope' does not appear to be a git repository"
    ));
}

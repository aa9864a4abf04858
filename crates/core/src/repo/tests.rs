use super::*;

#[test]
fn local_paths_are_told_from_network_urls() {
    let local = |u: &str| {
        u.parse::<RepoUrl>()
            .unwrap()
            .local_path()
            .map(str::to_owned)
    };
    assert_eq!(local("/srv/git/a.git").as_deref(), Some("/srv/git/a.git"));
    assert_eq!(
        local("file:///srv/git/a.git").as_deref(),
        Some("/srv/git/a.git")
    );
    assert_eq!(local("FILE:///x").as_deref(), Some("/x"));
    for network in [
        "https://github.com/a/b.git",
        "ssh://git@host/a.git",
        "git@github.com:a/b.git",
        "git://host/a.git",
    ] {
        assert_eq!(local(network), None, "{network}");
    }
}

#[test]
fn urls_a_worker_may_reach_are_accepted_and_unsafe_ones_refused() {
    for ok in [
        "/srv/git/app.git",
        "file:///srv/git/app.git",
        "ssh://git@example.com/org/app.git",
        "ssh://example.com:2222/app.git",
        "git@github.com:org/app.git",
        "github.com:org/app.git",
        "https://example.com/org/app.git",
        "git://example.com/app.git",
    ] {
        assert!(ok.parse::<RepoUrl>().is_ok(), "{ok}");
    }
    for (bad, why) in [
        ("ext::sh -c touch% /tmp/pwned", "can run commands"),
        ("fd::17", "can run commands"),
        ("-oProxyCommand=touch /tmp/x", "option"),
        ("https://user:secret@example.com/app.git", "credentials"),
        ("https://ghp_token@example.com/app.git", "credentials"),
        ("https://example.com/app.git?token=abc", "query"),
        ("ssh://git:secret@example.com/app.git", "password"),
        ("repos/app.git", "relative"),
        ("./app", "relative"),
        ("file://relative/path", "absolute"),
        ("ftp://example.com/x", "unsupported scheme"),
        ("", "empty"),
        ("/path with space", "whitespace"),
        ("ssh://-oProxyCommand=x/app.git", "option"),
        ("ssh://-oProxyCommand=x@example.com/app.git", "option"),
        ("ssh://git@-oProxyCommand=x/app.git", "option"),
        ("git@-oProxyCommand:app.git", "option"),
        ("-oProxyCommand@h:app.git", "option"),
    ] {
        let e = bad.parse::<RepoUrl>().unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn credentials_never_survive_redaction() {
    assert_eq!(
        redact("fatal: unable to access 'https://user:pw@host/x.git?t=1': denied"),
        "fatal: unable to access 'https://***@host/x.git?***': denied"
    );
    assert_eq!(redact("no url here"), "no url here");
    let u: RepoUrl = "ssh://git@example.com/app.git".parse().unwrap();
    assert_eq!(u.redacted(), "ssh://***@example.com/app.git");
}

#[test]
fn ref_names_follow_git() {
    for ok in ["main", "baton/plan-1", "release/v1.2", "a1b2c3d", "v1.0.0"] {
        assert!(ok.parse::<GitRef>().is_ok(), "{ok}");
    }
    for bad in [
        "", "-x", "@", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "/a", "a/",
        "a.", "a//b", ".hidden", "x/.y", "a.lock", "a@{1}",
    ] {
        assert!(bad.parse::<GitRef>().is_err(), "{bad:?}");
    }
    for c in [
        '\u{200B}', '\u{200F}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{FEFF}', '\u{AD}',
    ] {
        let e = format!("main{c}x").parse::<GitRef>().unwrap_err();
        assert!(e.contains("invisible format character"), "{c:?}: {e}");
    }
    assert!(
        "caf\u{e9}".parse::<GitRef>().is_ok(),
        "other Unicode is git's business"
    );
    let p: PlanId = "x.lock".parse().unwrap();
    assert!(RepoSpec::default_branch(&p)
        .unwrap_err()
        .contains("repo.branch"));
}

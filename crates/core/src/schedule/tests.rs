use super::*;

fn name(s: &str) -> ScheduleName {
    s.parse().unwrap()
}

/// 2026-12-02T10:30:00Z in ms.
const T0: u64 = 1_796_207_400_000;

#[test]
fn names_follow_the_rule() {
    for ok in ["nightly", "a", "deps-update_2", &"x".repeat(40)] {
        assert!(ok.parse::<ScheduleName>().is_ok(), "{ok}");
    }
    for bad in ["", "-x", "a.b", "a:b", "{x}", "a b", &"x".repeat(41), "é"] {
        let e = bad.parse::<ScheduleName>().unwrap_err();
        assert!(e.contains("not a schedule name"), "{e}");
    }
}

#[test]
fn plan_ids_come_from_the_name_and_the_tick_in_utc() {
    assert_eq!(
        tick_plan_id(&name("nightly"), T0).as_str(),
        "nightly-20261202T103000Z"
    );
    assert_eq!(
        run_now_plan_id(&name("nightly"), T0 + 42).as_str(),
        "nightly-now-20261202T103000042Z"
    );
    // The longest name still makes a valid plan id.
    let long = name(&"x".repeat(40));
    assert!(run_now_plan_id(&long, T0).as_str().len() <= 64);
}

#[test]
fn cron_and_zone_errors_name_the_flag() {
    let e = CronSpec::parse("*/2 * * *", "UTC").unwrap_err();
    assert!(e.starts_with("--cron"), "{e}");
    let e = CronSpec::parse("61 * * * * *", "UTC").unwrap_err();
    assert!(e.starts_with("--cron"), "{e}");
    let e = CronSpec::parse("0 0 2 * * *", "Mars/Olympus").unwrap_err();
    assert!(e.starts_with("--tz") && e.contains("Mars/Olympus"), "{e}");
    let e = CronSpec::parse("0 0 0 31 2 *", "UTC").unwrap_err();
    assert!(e.contains("never matches"), "{e}");
}

#[test]
fn seconds_and_zones_are_honoured() {
    let every2 = CronSpec::parse("*/2 * * * * *", "UTC").unwrap();
    assert_eq!(every2.next_after(T0), Some(T0 + 2000));
    assert_eq!(every2.next_after(T0 + 1), Some(T0 + 2000));
    // 02:00 in Paris is 01:00 UTC in December.
    let paris = CronSpec::parse("0 0 2 * * *", "Europe/Paris").unwrap();
    let next = paris.next_after(T0).unwrap();
    assert_eq!(
        tick_plan_id(&name("n"), next).as_str(),
        "n-20261203T010000Z"
    );
    // Five fields: at second 0.
    let minutely = CronSpec::parse("* * * * *", "UTC").unwrap();
    assert_eq!(minutely.next_after(T0), Some(T0 + 60_000));
}

#[test]
fn after_an_outage_only_the_latest_due_tick_fires() {
    let every2 = CronSpec::parse("*/2 * * * * *", "UTC").unwrap();
    assert_eq!(every2.latest_due(T0, T0 + 1999), None);
    assert_eq!(
        every2.latest_due(T0, T0 + 2500),
        Some(Due {
            tick_ms: T0 + 2000,
            missed: 0
        })
    );
    // Down for 21 s: ticks at +2 .. +20 were due; +20 fires, 9 are missed.
    assert_eq!(
        every2.latest_due(T0, T0 + 21_000),
        Some(Due {
            tick_ms: T0 + 20_000,
            missed: 9
        })
    );
    // A tick exactly at now is due.
    assert_eq!(every2.latest_due(T0, T0 + 4000).unwrap().tick_ms, T0 + 4000);
    // A week of every-second ticks: counted up to the limit.
    let every1 = CronSpec::parse("* * * * * *", "UTC").unwrap();
    let d = every1.latest_due(T0, T0 + 7 * 86_400_000).unwrap();
    assert_eq!(d.missed, MISSED_COUNT_LIMIT);
}

fn check(doc: &str) -> Result<serde_json::Value, crate::ValidationError> {
    check_plan_document(doc.as_bytes(), &name("nightly"))
}

#[test]
fn a_schedule_document_is_checked_like_an_enqueued_one_with_the_field_named() {
    let ok = r#"{"tasks":[{"prompt":"Update the dependencies."}],"options":{"after":["schema","schedule:build"]}}"#;
    assert!(check(ok).is_ok());
    for (doc, field) in [
        (r#"{"tasks":[{"prompt":""}]}"#, "tasks[0].prompt"),
        (r#"{"tasks":[]}"#, "tasks"),
        (r#"{"tasks":[{"prompt":"x"}],"bogus":1}"#, "bogus"),
        ("not json", "document"),
        (r#"{"plan_id":"p","tasks":[{"prompt":"x"}]}"#, "plan_id"),
        (r#"{"workspace":"w","tasks":[{"prompt":"x"}]}"#, "workspace"),
        (
            r#"{"tasks":[{"prompt":"x"}],"options":{"not_before":"2026-12-01T08:00:00Z"}}"#,
            "options.not_before",
        ),
        (
            r#"{"repo":{"url":"/srv/a.git","branch":"b"},"tasks":[{"prompt":"x"}]}"#,
            "repo.branch",
        ),
        (
            r#"{"tasks":[{"prompt":"x"}],"options":{"after":["schedule:nightly"]}}"#,
            "options.after[0]",
        ),
        (
            r#"{"tasks":[{"prompt":"x"}],"options":{"after":["a","schedule:b.c"]}}"#,
            "options.after[1]",
        ),
        (
            r#"{"tasks":[{"prompt":"x"}],"options":{"model":7}}"#,
            "options.model",
        ),
        (r#"{"plan_id":"p","action":"retry"}"#, "plan_id"),
    ] {
        let e = check(doc).unwrap_err();
        assert!(e.field.starts_with(field), "{doc}: {e:?}");
    }
}

#[test]
fn a_tick_document_carries_its_plan_id_and_resolved_references() {
    let doc = check(r#"{"tasks":[{"prompt":"x"}],"options":{"after":["schema","schedule:build","schedule:gone"]}}"#).unwrap();
    let plan = tick_plan_id(&name("nightly"), T0);
    let build = tick_plan_id(&name("build"), T0);
    let resolve = |n: &ScheduleName| (n.as_str() == "build").then(|| build.clone());
    let out: serde_json::Value =
        serde_json::from_slice(&tick_document(&doc, &plan, &resolve)).unwrap();
    assert_eq!(out["plan_id"], plan.as_str());
    assert_eq!(
        out["options"]["after"],
        serde_json::json!(["schema", "build-20261202T103000Z"])
    );
    // Nothing left to wait for: no `after` at all.
    let doc = check(r#"{"tasks":[{"prompt":"x"}],"options":{"after":["schedule:gone"]}}"#).unwrap();
    let out: serde_json::Value =
        serde_json::from_slice(&tick_document(&doc, &plan, &|_| None)).unwrap();
    assert!(out["options"].get("after").is_none(), "{out}");
    assert!(crate::Document::parse(&serde_json::to_vec(&out).unwrap()).is_ok());
}

/// What croner does across DST changes, as the README says: Paris, 02:30 daily. On
/// 2026-10-25 02:30 happens twice (00:30Z CEST, 01:30Z CET); on 2026-03-29 not at all.
#[test]
fn dst_changes_follow_croner() {
    let spec = CronSpec::parse("0 30 2 * * *", "Europe/Paris").unwrap();
    let n = name("d");
    let ticks = |from_ms: u64, n_ticks: usize| {
        let mut out = Vec::new();
        let mut t = from_ms;
        for _ in 0..n_ticks {
            t = spec.next_after(t).unwrap();
            out.push(tick_plan_id(&n, t).as_str().to_owned());
        }
        out
    };
    // 2026-10-24T00:00:00Z and 2026-03-28T00:00:00Z.
    // Twice: once, the first time (CEST).
    assert_eq!(
        ticks(1_792_800_000_000, 3),
        [
            "d-20261024T003000Z",
            "d-20261025T003000Z",
            "d-20261026T013000Z"
        ]
    );
    // Not at all: at the first time after the gap, 03:00 CEST.
    assert_eq!(
        ticks(1_774_656_000_000, 3),
        [
            "d-20260328T013000Z",
            "d-20260329T010000Z",
            "d-20260330T003000Z"
        ]
    );
}

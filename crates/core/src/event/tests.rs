//! The wire format is pinned: every kind's example (examples.jsonl, one line each, in the shape
//! the README's Events table documents) parses into its typed event and serializes back to the
//! same JSON, field for field.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

const EXAMPLES: &str = include_str!("examples.jsonl");

fn examples() -> impl Iterator<Item = (Value, Event)> {
    EXAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let raw: Value = serde_json::from_str(line).unwrap();
            let typed: Event = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("example does not parse ({e}): {line}"));
            (raw, typed)
        })
}

#[test]
fn every_example_round_trips_field_for_field() {
    let mut seen = 0;
    for (raw, typed) in examples() {
        assert_eq!(typed.to_value(), raw, "round trip changed the event");
        assert_eq!(
            typed.kind().as_str(),
            raw["kind"].as_str().unwrap(),
            "the body's kind is the wire kind"
        );
        seen += 1;
    }
    assert!(
        seen >= EventKind::ALL.len(),
        "examples.jsonl holds {seen} lines"
    );
}

#[test]
fn every_kind_has_an_example() {
    let kinds: BTreeSet<EventKind> = examples().map(|(_, e)| e.kind()).collect();
    for k in EventKind::ALL {
        assert!(kinds.contains(k), "no example of {k} in examples.jsonl");
    }
}

#[test]
fn a_field_of_another_name_or_type_is_not_taken_silently() {
    // A renamed required field fails to parse.
    let renamed = r#"{"kind":"task_retrying","at":"x","attempt":2,"why":"r","delay_ms":0}"#;
    assert!(serde_json::from_str::<Event>(renamed).is_err());
    // A closed value outside its vocabulary fails to parse.
    let bad_mode = r#"{"kind":"task_started","at":"x","attempt":1,
        "session_id":"4f0c1f5e-9a53-4a5b-8a49-3b8f6d3c2e10","mode":"lukewarm"}"#;
    assert!(serde_json::from_str::<Event>(bad_mode).is_err());
    // An unknown kind fails to parse.
    assert!(serde_json::from_str::<Event>(r#"{"kind":"plan_exploded","at":"x"}"#).is_err());
}

#[test]
fn built_events_carry_their_kind_and_header() {
    let plan: PlanId = "p".parse().unwrap();
    let e = Event::new(
        Some(&plan),
        TaskRetrying {
            attempt: 2,
            reason: "r".into(),
            delay_ms: 5,
        },
    )
    .worker(&"w".parse().unwrap())
    .task(&"t".parse().unwrap(), 2);
    let v = e.to_value();
    assert_eq!(v["kind"], "task_retrying");
    assert_eq!(v["plan_id"], "p");
    assert_eq!(v["task_index"], 2);
    assert_eq!(v["attempt"], 2);
    assert!(v.get("seq").is_none());
    assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    assert_eq!(e.body.reason(), Some("r"));
    for k in EventKind::ALL {
        assert_eq!(k.as_str().parse::<EventKind>().unwrap(), *k);
    }
}

//! A schedule's plan document: checked once at `baton schedule add` (exactly as `baton enqueue`
//! checks a document, plus what a recurring plan cannot have), and turned into each tick's
//! document when it fires (its plan id set, `schedule:NAME` entries of `options.after`
//! resolved to that schedule's last plan).

use serde_json::Value;

use super::{tick_plan_id, ScheduleName};
use crate::document::{Document, ValidationError};
use crate::ids::PlanId;

/// How an `options.after` entry names another schedule: `schedule:<name>` stands for the plan
/// that schedule fired last when this one fires.
pub const SCHEDULE_REF: &str = "schedule:";

/// Checks a schedule's plan document; returns it as JSON to store.
///
/// # Errors
/// The field and the problem: the document's own validation (as `baton enqueue` reports it),
/// or a field a recurring plan may not set (`plan_id`, `action`, `workspace`, `repo.branch`,
/// `options.not_before`), or an `options.after` entry naming this schedule or no valid name.
pub fn check_plan_document(raw: &[u8], own: &ScheduleName) -> Result<Value, ValidationError> {
    let value: Value = match serde_json::from_slice(raw) {
        Ok(v @ Value::Object(_)) => v,
        // Not an object, or not JSON: the document's own check says what is wrong.
        _ => {
            return Err(Document::parse(raw)
                .err()
                .unwrap_or_else(|| ValidationError::new("document", "is not a JSON object")))
        }
    };
    refuse_fixed_fields(&value)?;
    for (i, entry) in after_entries(&value).iter().enumerate() {
        if let Some(name) = entry.strip_prefix(SCHEDULE_REF) {
            let field = format!("options.after[{i}]");
            let name: ScheduleName = name
                .parse()
                .map_err(|e: String| ValidationError::new(field.clone(), e))?;
            if name == *own {
                return Err(ValidationError::new(field, "a schedule cannot run after its own previous plan (a failed one would fail every later tick); name another schedule or a plan"));
            }
        }
    }
    // The document as a tick would submit it, every reference resolved to a plan id of the
    // right form: validated exactly as an enqueued document is.
    let sample = tick_document(&value, &tick_plan_id(own, 0), &|n| Some(tick_plan_id(n, 0)));
    match Document::parse(&sample)? {
        Document::Plan(_) => Ok(value),
        Document::Action(_) => Err(ValidationError::new(
            "action",
            "a schedule submits plans, not actions",
        )),
    }
}

/// Fields a recurring plan's document may not set, with why.
fn refuse_fixed_fields(doc: &Value) -> Result<(), ValidationError> {
    let refused: [(&str, Option<&Value>, &str); 5] = [
        ("plan_id", doc.get("plan_id"), "leave it out: each tick's plan gets its own id, <name>-<UTC time>Z"),
        ("action", doc.get("action"), "a schedule submits plans, not actions"),
        ("workspace", doc.get("workspace"), "leave it out: a workspace belongs to one plan while the plan is kept, so a fixed one would refuse every tick after the first; each tick's plan gets its own (its plan id)"),
        ("repo.branch", doc.get("repo").and_then(|r| r.get("branch")), "leave it out: each tick's plan writes a branch of its own (baton/<plan id>); a branch another plan wrote is never overwritten"),
        ("options.not_before", doc.get("options").and_then(|o| o.get("not_before")), "the schedule's ticks say when its plans run"),
    ];
    match refused.into_iter().find(|(_, v, _)| v.is_some()) {
        Some((field, _, why)) => Err(ValidationError::new(field, why)),
        None => Ok(()),
    }
}

/// The text entries of `options.after` (others are left to the document's own check).
fn after_entries(doc: &Value) -> Vec<String> {
    doc.get("options")
        .and_then(|o| o.get("after"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The schedules a document's `options.after` names (`schedule:NAME` entries).
pub fn schedule_refs(doc: &Value) -> Vec<ScheduleName> {
    after_entries(doc)
        .iter()
        .filter_map(|e| e.strip_prefix(SCHEDULE_REF)?.parse().ok())
        .collect()
}

/// The document a tick submits: `doc` with `plan_id` set, and each `schedule:NAME` entry of
/// `options.after` replaced by `resolve(NAME)` (that schedule's last plan), or dropped when it
/// has fired none (nothing to wait for); an `after` left empty is removed.
pub fn tick_document(
    doc: &Value,
    plan: &PlanId,
    resolve: &dyn Fn(&ScheduleName) -> Option<PlanId>,
) -> Vec<u8> {
    let mut doc = doc.clone();
    if let Value::Object(map) = &mut doc {
        map.insert("plan_id".into(), Value::String(plan.to_string()));
    }
    if let Some(Value::Object(options)) = doc.get_mut("options") {
        if let Some(Value::Array(after)) = options.get_mut("after") {
            let resolved: Vec<Value> = after
                .iter()
                .filter_map(
                    |e| match e.as_str().and_then(|s| s.strip_prefix(SCHEDULE_REF)) {
                        Some(name) => name
                            .parse()
                            .ok()
                            .and_then(|n| resolve(&n))
                            .map(|p| Value::String(p.to_string())),
                        None => Some(e.clone()),
                    },
                )
                .collect();
            if resolved.is_empty() {
                options.remove("after");
            } else {
                *after = resolved;
            }
        }
    }
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

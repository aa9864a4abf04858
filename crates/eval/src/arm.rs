//! The arms of an eval: how each plan of the suite runs, and the plan document that says so.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::suite::Project;

/// How a plan runs in one arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// baton as it is: one conversation per plan, on any worker.
    Session,
    /// Every task a new session with nothing but its prompt (the seed's "before").
    Isolated,
    /// Every task a new session seeded with baton's recap (the fallback's quality).
    Recap,
    /// One conversation, every task handed to another worker and workspace root.
    Handoff,
}

impl Arm {
    /// Every arm, in report order.
    pub const ALL: [Arm; 4] = [Arm::Session, Arm::Isolated, Arm::Recap, Arm::Handoff];

    /// The wire name (`--arms`, the report).
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Session => "session",
            Arm::Isolated => "isolated",
            Arm::Recap => "recap",
            Arm::Handoff => "handoff",
        }
    }

    /// The plan's `options.context` in this arm.
    pub fn context(self) -> &'static str {
        match self {
            Arm::Session | Arm::Handoff => "conversation",
            Arm::Isolated => "none",
            Arm::Recap => "recap",
        }
    }

    /// Whether the arm keeps one conversation (so resumes are expected and counted).
    pub fn resumes(self) -> bool {
        matches!(self, Arm::Session | Arm::Handoff)
    }
}

impl std::fmt::Display for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Arm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown arm {s:?}; the arms are session, isolated, recap, handoff")
            })
    }
}

/// The id of a project's plan in one arm and repeat of a run (`run` keeps runs apart in a
/// pool that keeps its plans).
pub fn plan_id(run: &str, arm: Arm, repeat: u32, project: &str) -> String {
    format!("eval-{run}-{arm}-r{repeat}-{project}")
}

/// The plan document of `project` in `arm`: its tasks, its code on `branch` of the remote at
/// `remote_url`, and the arm's `options.context`.
pub fn plan_document(
    project: &Project,
    arm: Arm,
    plan_id: &str,
    remote_url: &str,
    model: Option<&str>,
) -> Value {
    let tasks: Vec<Value> = project
        .tasks
        .iter()
        .map(|t| json!({"id": t.id, "prompt": t.prompt}))
        .collect();
    let mut options = json!({"context": arm.context()});
    if let Some(m) = model {
        options["model"] = json!(m);
    }
    json!({
        "plan_id": plan_id,
        "tasks": tasks,
        "repo": {"url": remote_url, "branch": format!("eval/{plan_id}")},
        "options": options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_parse_and_say_their_context() {
        for a in Arm::ALL {
            assert_eq!(a.as_str().parse::<Arm>().unwrap(), a);
        }
        assert!("both"
            .parse::<Arm>()
            .unwrap_err()
            .contains("session, isolated"));
        assert_eq!(Arm::Isolated.context(), "none");
        assert_eq!(Arm::Recap.context(), "recap");
        assert_eq!(Arm::Handoff.context(), "conversation");
    }

    #[test]
    fn a_plan_document_parses_as_baton_reads_it() {
        let project: Project = serde_json::from_value(json!({
            "name": "p", "language": "python",
            "tasks": [{"id": "t1", "prompt": "Write it."}, {"id": "t2", "prompt": "Test it."}],
            "check": {"entry_points": ["main.py"]}
        }))
        .unwrap();
        let id = plan_id("x1", Arm::Recap, 0, "p");
        let doc = plan_document(&project, Arm::Recap, &id, "/tmp/remotes/p.git", None);
        let raw = serde_json::to_vec(&doc).unwrap();
        match baton_core::Document::parse(&raw).unwrap() {
            baton_core::Document::Plan(sub) => {
                assert_eq!(sub.plan_id.unwrap().as_str(), id);
                assert_eq!(sub.tasks.len(), 2);
            }
            other => panic!("not a plan: {other:?}"),
        }
    }
}

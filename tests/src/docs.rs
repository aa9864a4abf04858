//! Documents as tests submit them: one builder for every plan document, and the marked plans
//! whose prompts let a test see which tasks a request carried.

use serde_json::{json, Value};

/// A plan document under construction.
#[derive(Debug, Clone)]
pub struct Doc {
    plan: String,
    tasks: Vec<(String, String)>,
    /// Ids of the tasks that ask for a review.
    reviewed: Vec<String>,
    options: Option<Value>,
    workspace: Option<String>,
    repo: Option<Value>,
}

/// A plan document for `plan`, with no tasks yet.
pub fn doc(plan: &str) -> Doc {
    Doc {
        plan: plan.to_owned(),
        tasks: Vec::new(),
        reviewed: Vec::new(),
        options: None,
        workspace: None,
        repo: None,
    }
}

impl Doc {
    /// Adds a task with this id.
    pub fn task(mut self, id: &str, prompt: &str) -> Self {
        self.tasks.push((id.to_owned(), prompt.to_owned()));
        self
    }

    /// Adds a task with this id that asks for a review (`"review": true`).
    pub fn reviewed_task(mut self, id: &str, prompt: &str) -> Self {
        self.reviewed.push(id.to_owned());
        self.task(id, prompt)
    }

    /// Adds these (id, prompt) tasks.
    pub fn tasks(self, tasks: &[(&str, &str)]) -> Self {
        tasks
            .iter()
            .fold(self, |d, (id, prompt)| d.task(id, prompt))
    }

    /// Adds tasks with ids `t<k>`, numbered on from the tasks already added (1-based).
    pub fn prompts(mut self, prompts: &[&str]) -> Self {
        for p in prompts {
            let id = format!("t{}", self.tasks.len() + 1);
            self.tasks.push((id, (*p).to_owned()));
        }
        self
    }

    /// Sets the plan's options.
    pub fn options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
    }

    /// Sets the plan's workspace.
    pub fn workspace(mut self, workspace: &str) -> Self {
        self.workspace = Some(workspace.to_owned());
        self
    }

    /// Sets the plan's repository (`{"url", "base"?, "branch"?}`).
    pub fn repo(mut self, repo: Value) -> Self {
        self.repo = Some(repo);
        self
    }

    /// The document as submitted.
    pub fn json(&self) -> String {
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|(id, p)| {
                let mut t = json!({"id": id, "prompt": p});
                if self.reviewed.contains(id) {
                    t["review"] = true.into();
                }
                t
            })
            .collect();
        let mut d = json!({"plan_id": self.plan, "tasks": tasks});
        if let Some(o) = &self.options {
            d["options"] = o.clone();
        }
        if let Some(w) = &self.workspace {
            d["workspace"] = w.clone().into();
        }
        if let Some(r) = &self.repo {
            d["repo"] = r.clone();
        }
        d.to_string()
    }
}

/// A plan document of `n` tasks whose prompts carry markers `<plan>-T<k>` (1-based), ids `t<k>`.
pub fn marked_plan(plan: &str, n: usize) -> String {
    let prompts: Vec<String> = (1..=n)
        .map(|k| format!("Task marker {plan}-T{k}: step {k} of the plan."))
        .collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    doc(plan).prompts(&refs).json()
}

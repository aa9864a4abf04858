//! A progress bar for a person following one plan on a terminal (`enqueue --wait`, `watch
//! --plan`): tasks done out of the plan's tasks, the task running now, the time since the watch
//! began and the cost so far. Event lines print above it. Not used with `--json` or when stdout
//! is not a terminal: those get plain lines.

use std::io::IsTerminal;
use std::time::Duration;

use baton_core::event::EventBody;
use baton_core::Event;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar and what it counts.
pub(crate) struct Progress {
    bar: ProgressBar,
    cost: f64,
}

impl Progress {
    /// A bar when a person is watching one plan on a terminal; `None` otherwise.
    pub(crate) fn for_terminal(json: bool, one_plan: bool) -> Option<Self> {
        if json || !one_plan || !std::io::stdout().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30.green/white} {pos}/{len} tasks · {msg} · {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        let p = Self { bar, cost: 0.0 };
        p.describe("waiting for a worker");
        Some(p)
    }

    /// Starts from what the plan had done before the watch began.
    pub(crate) fn starting_at(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    fn describe(&self, what: &str) {
        self.bar.set_message(format!("{what} · ${:.4}", self.cost));
    }

    /// Takes one event of the plan into account, and prints its line above the bar.
    pub(crate) fn event(&mut self, ev: &Event, line: &str) {
        let task = ev.task_id.as_ref().map_or("", |t| t.as_str());
        match &ev.body {
            EventBody::PlanAccepted(a) => {
                if let (Some(first), Some(tasks)) = (a.first_task_index, a.tasks) {
                    let len = self.bar.length().unwrap_or(0).max(first + tasks);
                    self.bar.set_length(len);
                }
            }
            EventBody::TaskStarted(_) => self.describe(&format!("task {task} running")),
            EventBody::TaskSucceeded(s) => {
                self.cost += s.cost_usd;
                self.bar.inc(1);
                self.describe(&format!("task {task} done"));
            }
            EventBody::TaskRetrying(_) => self.describe(&format!("task {task} retrying")),
            b if b.kind().ends_plan() => self.describe(b.kind().as_str()),
            _ => {}
        }
        self.bar.println(line);
    }

    /// Leaves the bar as it stands.
    pub(crate) fn finish(&self) {
        self.bar.abandon();
    }
}

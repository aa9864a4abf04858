//! What a hold's CLI runs used, counted from the endpoint's own answers as they stream past,
//! and the plan's budget as the gateway keeps it.
//!
//! The gateway sees every model request of a hold, the CLI's and any a tool in the box makes
//! with the hold's token, so it is where a budget can be kept mid-task. Budgets are in dollars
//! and the CLI prices its own requests; the gateway prices in *points*, Anthropic's price
//! structure for every model (an input token 20 points, a cache write 25, a cache read 2, an
//! output token 100), and learns what a point costs on this plan from the CLI's own cost of the
//! hold's committed tasks. From then on a request that would start past the budget left is
//! refused, and the attempt ends as a spent budget.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Points per token, by kind (Anthropic's prices are these multiples of the input price).
const INPUT_POINTS: u64 = 20;
const CACHE_WRITE_POINTS: u64 = 25;
const CACHE_READ_POINTS: u64 = 2;
const OUTPUT_POINTS: u64 = 100;

/// Requests and tokens of one grant (one hold), and the budget it is held to.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    requests: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    points: AtomicU64,
    budget: Mutex<Budget>,
    stopped: AtomicBool,
    /// Why the last request was refused for the budget (what was spent, what was left).
    refusal: Mutex<Option<String>>,
}

/// What the gateway knows of the plan's budget.
#[derive(Debug, Default, Clone, Copy)]
struct Budget {
    /// Dollars and points of the hold's committed tasks: what a point costs.
    learned_usd: f64,
    learned_points: u64,
    /// The running attempt: the budget left when it started, and the points by then.
    left_usd: Option<f64>,
    points_at_start: u64,
}

/// What a grant used between two moments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Used {
    pub(crate) requests: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) points: u64,
}

impl Usage {
    pub(super) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything used so far.
    pub(crate) fn so_far(&self) -> Used {
        Used {
            requests: self.requests.load(Ordering::Relaxed),
            input_tokens: self.input_tokens.load(Ordering::Relaxed),
            output_tokens: self.output_tokens.load(Ordering::Relaxed),
            points: self.points.load(Ordering::Relaxed),
        }
    }

    /// An attempt starts with `left_usd` of the plan's budget left (`None`: no budget).
    pub(crate) fn attempt_starts(&self, left_usd: Option<f64>) {
        self.stopped.store(false, Ordering::Relaxed);
        if let Ok(mut r) = self.refusal.lock() {
            *r = None;
        }
        let points = self.points.load(Ordering::Relaxed);
        if let Ok(mut b) = self.budget.lock() {
            b.left_usd = left_usd;
            b.points_at_start = points;
        }
    }

    /// A task was committed: it cost `cost_usd` by the CLI's count, and `points` by ours.
    pub(crate) fn learn(&self, cost_usd: f64, points: u64) {
        if let Ok(mut b) = self.budget.lock() {
            if cost_usd > 0.0 && points > 0 {
                b.learned_usd += cost_usd;
                b.learned_points += points;
            }
        }
    }

    /// Whether a new request would start past the budget left; if so the grant is marked
    /// stopped, with what was spent, for the attempt to report.
    pub(super) fn over_budget(&self) -> Option<String> {
        let b = *self.budget.lock().ok()?;
        let left = b.left_usd?;
        if b.learned_points == 0 {
            return None;
        }
        let per_point = b.learned_usd / b.learned_points as f64;
        let spent_points = self
            .points
            .load(Ordering::Relaxed)
            .saturating_sub(b.points_at_start);
        let spent = spent_points as f64 * per_point;
        if spent < left {
            return None;
        }
        self.stopped.store(true, Ordering::Relaxed);
        let why = format!(
            "about ${spent:.4} spent in this task, ${left:.4} was left of the plan's budget"
        );
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(why.clone());
        }
        Some(why)
    }

    /// Why the gateway refused the running attempt's request, if it did.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.refusal.lock().ok()?.clone()
    }

    /// True when the gateway refused a request of the running attempt for its budget.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    fn add(&self, input: u64, cache_write: u64, cache_read: u64, output: u64) {
        self.input_tokens
            .fetch_add(input + cache_write + cache_read, Ordering::Relaxed);
        self.output_tokens.fetch_add(output, Ordering::Relaxed);
        self.points.fetch_add(
            input * INPUT_POINTS
                + cache_write * CACHE_WRITE_POINTS
                + cache_read * CACHE_READ_POINTS
                + output * OUTPUT_POINTS,
            Ordering::Relaxed,
        );
    }
}

impl Used {
    /// What was used from `earlier` to `self`.
    pub(crate) fn since(self, earlier: Used) -> Used {
        Used {
            requests: self.requests.saturating_sub(earlier.requests),
            input_tokens: self.input_tokens.saturating_sub(earlier.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(earlier.output_tokens),
            points: self.points.saturating_sub(earlier.points),
        }
    }
}

/// Reads one answer for its usage: in server-sent events, `message_start` carries the input
/// (and the first output) tokens, each `message_delta` the running output count; a JSON answer
/// (`"stream": false`) carries its `usage` whole, read when the answer is over.
pub(super) struct StreamCounter {
    usage: Arc<Usage>,
    line: Vec<u8>,
    output_seen: u64,
    /// A JSON answer so far (not server-sent events), up to `MAX_LINE`.
    json: Option<Vec<u8>>,
}

/// Longest event line kept for parsing (usage lines are short; content deltas are skipped).
const MAX_LINE: usize = 64 << 10;

impl StreamCounter {
    pub(super) fn new(usage: Arc<Usage>) -> Self {
        Self {
            usage,
            line: Vec::new(),
            output_seen: 0,
            json: None,
        }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
        if self.json.is_none() && self.line.is_empty() && self.output_seen == 0 {
            if let Some(first) = chunk.iter().find(|b| !b.is_ascii_whitespace()) {
                if *first == b'{' {
                    self.json = Some(Vec::new());
                }
            }
        }
        if let Some(json) = &mut self.json {
            if json.len() + chunk.len() <= MAX_LINE * 16 {
                json.extend_from_slice(chunk);
            }
            return;
        }
        for &b in chunk {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line);
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        // Only events that carry usage are parsed.
        if !contains(data, b"usage") {
            return;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
            return;
        };
        let field = |u: &serde_json::Value, k: &str| u.get(k).and_then(serde_json::Value::as_u64);
        match v.get("type").and_then(serde_json::Value::as_str) {
            Some("message_start") => {
                let Some(u) = v.pointer("/message/usage") else {
                    return;
                };
                self.usage.add(
                    field(u, "input_tokens").unwrap_or(0),
                    field(u, "cache_creation_input_tokens").unwrap_or(0),
                    field(u, "cache_read_input_tokens").unwrap_or(0),
                    0,
                );
                self.output(field(u, "output_tokens").unwrap_or(0));
            }
            Some("message_delta") => {
                if let Some(out) = v.get("usage").and_then(|u| field(u, "output_tokens")) {
                    self.output(out);
                }
            }
            _ => {}
        }
    }

    /// The answer's running output count is `total`: add what is new.
    fn output(&mut self, total: u64) {
        let new = total.saturating_sub(self.output_seen);
        self.output_seen = self.output_seen.max(total);
        self.usage.add(0, 0, 0, new);
    }
}

impl Drop for StreamCounter {
    /// A JSON answer is counted once it is over (the body is dropped when passed on whole, or
    /// when the client went away).
    fn drop(&mut self) {
        let Some(json) = self.json.take() else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&json) else {
            return;
        };
        let Some(u) = v.get("usage") else {
            return;
        };
        let field = |k: &str| u.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        self.usage.add(
            field("input_tokens"),
            field("cache_creation_input_tokens"),
            field("cache_read_input_tokens"),
            field("output_tokens"),
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_streamed_answers_tokens_across_chunk_boundaries() {
        let usage = Arc::new(Usage::default());
        let mut c = StreamCounter::new(usage.clone());
        let stream = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":100,\"cache_read_input_tokens\":20,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n",
            "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n",
        );
        for chunk in stream.as_bytes().chunks(7) {
            c.feed(chunk);
        }
        drop(c);
        let u = usage.so_far();
        assert_eq!((u.input_tokens, u.output_tokens), (120, 9));
        assert_eq!(u.points, 100 * 20 + 20 * 2 + 9 * 100);
        // A second answer on the same grant adds to it; a JSON one is read whole.
        let mut c = StreamCounter::new(usage.clone());
        c.feed(b"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":0}}}\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n");
        drop(c);
        let mut c = StreamCounter::new(usage.clone());
        c.feed(b"{\"type\":\"message\",\"usage\":");
        c.feed(b"{\"input_tokens\":10,\"output_tokens\":2}}");
        drop(c);
        let u = usage.so_far();
        assert_eq!((u.input_tokens, u.output_tokens), (135, 14));
    }

    #[test]
    fn a_budget_is_kept_once_a_points_price_is_learned() {
        let usage = Usage::default();
        usage.attempt_starts(Some(1.0));
        usage.add(1000, 0, 0, 0); // 20,000 points, no price known yet
        assert!(
            usage.over_budget().is_none(),
            "the first task is the CLI's to stop"
        );
        usage.learn(0.5, 20_000); // a point costs $0.000025
        usage.attempt_starts(Some(1.0));
        usage.add(1000, 0, 0, 0); // $0.50
        assert!(usage.over_budget().is_none());
        assert!(!usage.stopped());
        usage.add(1000, 0, 0, 0); // $1.00: no further request
        let why = usage.over_budget().expect("over");
        assert!(why.contains("$1.0000"), "{why}");
        assert!(usage.stopped());
        // The next attempt starts clean; no budget means no stop.
        usage.attempt_starts(None);
        usage.add(100_000, 0, 0, 0);
        assert!(usage.over_budget().is_none() && !usage.stopped());
    }
}

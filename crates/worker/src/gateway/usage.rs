//! What a hold's CLI runs used, counted from the endpoint's own answers as they stream past.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Requests and tokens of one grant (one hold).
#[derive(Debug, Default)]
pub(crate) struct Usage {
    requests: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
}

impl Usage {
    pub(super) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Model requests forwarded so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Input tokens (cache reads and writes included) and output tokens so far.
    pub(crate) fn tokens(&self) -> (u64, u64) {
        (
            self.input_tokens.load(Ordering::Relaxed),
            self.output_tokens.load(Ordering::Relaxed),
        )
    }
}

/// Reads one answer's server-sent events for their usage: `message_start` carries the input
/// (and the first output) tokens, each `message_delta` the running output count.
pub(super) struct StreamCounter {
    usage: Arc<Usage>,
    line: Vec<u8>,
    output_seen: u64,
}

/// Longest event line kept for parsing (usage lines are short; content deltas are skipped).
const MAX_LINE: usize = 64 << 10;

impl StreamCounter {
    pub(super) fn new(usage: Arc<Usage>) -> Self {
        Self {
            usage,
            line: Vec::new(),
            output_seen: 0,
        }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
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
                let input = field(u, "input_tokens").unwrap_or(0)
                    + field(u, "cache_creation_input_tokens").unwrap_or(0)
                    + field(u, "cache_read_input_tokens").unwrap_or(0);
                self.usage.input_tokens.fetch_add(input, Ordering::Relaxed);
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
        self.usage.output_tokens.fetch_add(new, Ordering::Relaxed);
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
        assert_eq!(usage.tokens(), (120, 9));
        // A second answer on the same grant adds to it.
        let mut c = StreamCounter::new(usage.clone());
        c.feed(b"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":0}}}\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n");
        assert_eq!(usage.tokens(), (125, 12));
    }
}

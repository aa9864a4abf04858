//! The one logging set-up of baton's programs (`baton`, `baton-worker`): logs go to stderr
//! (stdout is for output), filtered by `BATON_LOG`, as JSON lines when
//! `BATON_LOG_FORMAT=json` (for log shippers), else for people. Behind the `logging` feature,
//! so a client of this crate does not get a subscriber it did not ask for.

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object a line.
    Json,
}

impl LogFormat {
    /// The format `BATON_LOG_FORMAT`'s value asks for: `json` (any case) is JSON lines,
    /// anything else or nothing is text.
    pub fn from_env_value(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// Installs the global subscriber: stderr, the filter from `BATON_LOG` (else
/// `default_filter`, e.g. `info`), the format from `BATON_LOG_FORMAT`.
///
/// # Panics
/// If a global subscriber is already installed (call it once, first thing in `main`).
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let format = std::env::var("BATON_LOG_FORMAT").ok();
    match LogFormat::from_env_value(format.as_deref()) {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
}

/// [`init_logging`], with `layer` beside the logs (the worker's OpenTelemetry layer, with a
/// filter of its own): the logs keep their own filter, so `BATON_LOG` does not change what the
/// layer sees.
///
/// # Panics
/// If a global subscriber is already installed.
pub fn init_logging_with<L>(default_filter: &str, layer: L)
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let format = std::env::var("BATON_LOG_FORMAT").ok();
    let logs = match LogFormat::from_env_value(format.as_deref()) {
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
        LogFormat::Text => logs.with_filter(filter).boxed(),
    };
    tracing_subscriber::registry().with(layer).with(logs).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_json_only_when_asked() {
        for (value, want) in [
            (Some("json"), LogFormat::Json),
            (Some("JSON"), LogFormat::Json),
            (Some("text"), LogFormat::Text),
            (Some(""), LogFormat::Text),
            (None, LogFormat::Text),
        ] {
            assert_eq!(LogFormat::from_env_value(value), want, "{value:?}");
        }
    }
}

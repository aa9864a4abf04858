//! What an attempt tells its hold while it runs (nextest's `ExecutorEvent`): typed, sent on a
//! channel, and turned into events, counters and metrics by the hold alone.

use std::time::Duration;

use baton_core::event::AttemptMode;
use baton_core::ClaudeSessionId;

use crate::claude::Progress;
use crate::session::How;

/// One thing an attempt did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExecutorEvent {
    /// The try's session is ready and its run starts (`task_started` and the session event).
    Started {
        attempt: u32,
        session: SessionStarted,
        mode: AttemptMode,
    },
    /// The run reported something as it streamed (a tool use, a CLI retry of the API).
    Progress(Progress),
    /// The run is over (whatever it came to), after `took`.
    RunEnded { took: Duration },
}

/// How a try's session started.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionStarted {
    pub(crate) id: ClaudeSessionId,
    pub(crate) how: How,
}

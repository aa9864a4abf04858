//! The pool's schedules (recurring plans) as readers see them: each definition with its last
//! tick fired and last run-now, and the Redis server's clock to say which tick comes next.

use std::collections::HashMap;

use baton_core::schedule::{entries, Entry};

use crate::{Client, ClientError};

/// Every schedule, by name, read in one round trip.
#[derive(Debug, Clone)]
pub struct Schedules {
    pub entries: Vec<Entry>,
    /// Names whose definition does not decode (written by hand, or by another version).
    pub broken: Vec<String>,
    /// The Redis server's clock when read (ms): the scheduler counts ticks by it.
    pub now_ms: u64,
}

type Reply = (
    HashMap<String, String>,
    HashMap<String, String>,
    HashMap<String, String>,
    (u64, u64),
);

impl Client {
    /// Every schedule with what it fired, and the server's clock.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn schedules(&self) -> Result<Schedules, ClientError> {
        let k = self.keys();
        let (defs, fired, runs, time): Reply = redis::pipe()
            .hgetall(k.schedules())
            .hgetall(k.schedule_fired())
            .hgetall(k.schedule_runs())
            .cmd("TIME")
            .query_async(&mut self.conn())
            .await?;
        let (entries, broken) = entries(defs, &fired, &runs);
        Ok(Schedules {
            entries,
            broken,
            now_ms: baton_core::time::server_millis(time),
        })
    }
}

//! A hold's token for the model gateway: what the CLI presents as its API key, revoked when
//! the grant drops, and the usage its requests count toward.

use std::sync::Arc;

use super::{Shared, Usage};

/// A hold's token; revoked when dropped (the hold ended).
pub struct Grant {
    token: String,
    usage: Arc<Usage>,
    shared: Arc<Shared>,
}

impl Grant {
    pub(super) fn new(token: String, usage: Arc<Usage>, shared: Arc<Shared>) -> Self {
        Self {
            token,
            usage,
            shared,
        }
    }
}

impl Grant {
    /// The token the CLI presents as its API key.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What the hold's CLI runs have used so far.
    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }

    /// From now on this grant's requests count as `hold`'s, and its budget holds them (a spare
    /// CLI, started with a grant of its own, claimed by a hold). The token stays good until
    /// this grant drops, with the process that holds it.
    pub(crate) fn count_as(&self, hold: &Grant) {
        if let Ok(mut g) = self.shared.grants.lock() {
            if let Some(usage) = g.get_mut(&self.token) {
                *usage = hold.usage.clone();
            }
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if let Ok(mut g) = self.shared.grants.lock() {
            g.remove(&self.token);
        }
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Grant(..)")
    }
}

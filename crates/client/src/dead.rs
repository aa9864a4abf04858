//! The dead-letter list (`baton dead`, the dashboard's page, the harness): rejected documents
//! and tasks that failed for good, newest first, each with its JSON as stored (a rejected
//! document is requeued from exactly that).

use baton_core::records::DeadLetter;
use baton_core::PlanId;
use redis::AsyncCommands;

use crate::{Client, ClientError};

/// One entry of the dead-letter list.
#[derive(Debug, Clone)]
pub struct StoredLetter {
    /// The entry as stored.
    pub raw: String,
    /// The letter, when it decodes (baton wrote it, so it should).
    pub letter: Option<DeadLetter>,
}

impl Client {
    /// The newest dead letters, at most `limit` (all with `None`), newest first.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn dead_letters(
        &self,
        limit: Option<usize>,
    ) -> Result<Vec<StoredLetter>, ClientError> {
        let stop = limit.map_or(-1, |n| isize::try_from(n).unwrap_or(isize::MAX) - 1);
        let raw: Vec<String> = self.conn().lrange(self.keys.dead(), 0, stop).await?;
        Ok(raw
            .into_iter()
            .map(|raw| StoredLetter {
                letter: serde_json::from_str(&raw).ok(),
                raw,
            })
            .collect())
    }

    /// Every dead letter, newest first; an error if one does not decode.
    ///
    /// # Errors
    /// Redis failed, or a letter does not decode.
    pub async fn dead_letters_strict(&self) -> Result<Vec<DeadLetter>, ClientError> {
        let raw: Vec<String> = self.conn().lrange(self.keys.dead(), 0, -1).await?;
        raw.iter()
            .map(|r| {
                serde_json::from_str(r).map_err(|source| ClientError::Decode {
                    what: "a dead letter",
                    source,
                })
            })
            .collect()
    }

    /// The newest dead letter naming `plan`, if any.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn dead_letter_for(&self, plan: &PlanId) -> Result<Option<DeadLetter>, ClientError> {
        Ok(self
            .dead_letters(None)
            .await?
            .into_iter()
            .filter_map(|s| s.letter)
            .find(|l| l.plan_id.as_ref() == Some(plan)))
    }
}

//! The pool's concurrency keys as a reader sees them: each key's limit, running and parked
//! plans, daily budget and spend today (`baton limit list`, the dashboard, the metrics).

use std::collections::BTreeSet;

use baton_core::limits::DEFAULT_REPO_KEY;
use redis::AsyncCommands;
use serde::Serialize;

use crate::{Client, ClientError};

/// One concurrency key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyStatus {
    pub key: String,
    /// The limit in force (its own, or the repo default for a `repo:` key); `None`: no limit.
    pub limit: Option<u64>,
    /// True when `limit` is the repo default, not the key's own.
    pub default_limit: bool,
    /// Plans of the key claimed by a worker now.
    pub running: u64,
    /// Plans parked until a place under the limit frees up.
    pub waiting: u64,
    pub budget_per_day_usd: Option<f64>,
    /// Spent today (UTC, Redis's clock).
    pub spent_today_usd: f64,
}

/// Every key the pool knows of (seen by a claim, or with a limit or a budget), and the repo
/// default limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    pub keys: Vec<KeyStatus>,
    pub default_repo_limit: Option<u64>,
}

impl Limits {
    /// Plans parked on a limit, over every key.
    pub fn waiting(&self) -> u64 {
        self.keys.iter().map(|k| k.waiting).sum()
    }
}

impl Client {
    /// The pool's concurrency keys, sorted by name.
    ///
    /// # Errors
    /// Redis cannot be reached.
    pub async fn limits(&self) -> Result<Limits, ClientError> {
        let k = &self.keys;
        let mut conn = self.conn.clone();
        let limits: Vec<(String, String)> = conn.hgetall(k.limits()).await?;
        let budgets: Vec<(String, String)> = conn.hgetall(k.budgets()).await?;
        let seen: Vec<String> = conn.smembers(k.concurrency_keys()).await?;
        let (secs, _): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
        let today: Vec<(String, String)> = conn
            .hgetall(format!("{}{}", k.spend_base(), secs / 86_400))
            .await?;
        let find = |pairs: &[(String, String)], key: &str| {
            pairs.iter().find(|(n, _)| n == key).map(|(_, v)| v.clone())
        };
        let default_repo_limit = find(&limits, DEFAULT_REPO_KEY).and_then(|v| v.parse().ok());
        let mut names: BTreeSet<String> = seen.into_iter().collect();
        names.extend(limits.iter().map(|(n, _)| n.clone()));
        names.extend(budgets.iter().map(|(n, _)| n.clone()));
        names.remove(DEFAULT_REPO_KEY);
        let mut keys = Vec::with_capacity(names.len());
        for key in names {
            let own: Option<u64> = find(&limits, &key).and_then(|v| v.parse().ok());
            let default_limit =
                own.is_none() && key.starts_with("repo:") && default_repo_limit.is_some();
            let (running, waiting): (u64, u64) = redis::pipe()
                .hlen(k.key_running(&key))
                .llen(k.key_waiting(&key))
                .query_async(&mut conn)
                .await?;
            keys.push(KeyStatus {
                limit: own.or(if default_limit {
                    default_repo_limit
                } else {
                    None
                }),
                default_limit,
                running,
                waiting,
                budget_per_day_usd: find(&budgets, &key).and_then(|v| v.parse().ok()),
                spent_today_usd: find(&today, &key)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0),
                key,
            });
        }
        Ok(Limits {
            keys,
            default_repo_limit,
        })
    }
}

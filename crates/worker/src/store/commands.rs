//! The plain commands of the worker's loops and holds (those no script needs to make atomic):
//! blocking pops, plan states and options, reading transcripts and results, dead letters,
//! counters. The pool-wide ones are in `pool_commands`.

use std::time::Duration;

use baton_connect::Conn;
use baton_core::records::{DeadLetter, TaskResult};
use baton_core::scripts::hold::{Claim, ClaimReply};
use baton_core::scripts::ScriptCall;
use baton_core::{Counter, Event, PlanId, PlanTotals, WorkerId};
use redis::AsyncCommands;

use super::{Store, StoreError};

/// A plan's committed transcript: the base pack and the chunks committed after it.
#[derive(Debug)]
pub(crate) struct StoredTranscript {
    pub(crate) base: Vec<u8>,
    pub(crate) chunks: Vec<Vec<u8>>,
}

/// What a blocking pop brought.
#[derive(Debug, Default)]
pub(crate) struct Popped {
    /// The entry moved, or `None` after the block ran out.
    pub(crate) entry: Option<Vec<u8>>,
    /// How long the pool stays paused (`Duration::MAX`: until a user resumes it), as a claim
    /// found it.
    pub(crate) paused: Option<Duration>,
    /// The entry came from the handback list (the reaper put it there, tagged or not), not
    /// from a client.
    pub(crate) handed_back: bool,
}

impl Store {
    /// Claims: waits (up to `block`) for the wake token, which stands while plans are ready,
    /// and runs `claim.lua` right after it in the same pipeline (one round trip): the plan
    /// taken by priority, or the pool's pause. The script is loaded on the first claim, and
    /// again after a Redis restart.
    pub(crate) async fn blocking_claim(
        &self,
        conn: &mut Conn,
        worker: &WorkerId,
        block: Duration,
    ) -> Result<Popped, StoreError> {
        let claim = Claim { worker }.invocation(&self.env);
        let piped: Result<(redis::Value, ClaimReply), _> = redis::pipe()
            .cmd("BLPOP")
            .arg(self.env.keys.wake())
            .arg(block.as_secs_f64())
            .invoke_script(&claim)
            .query_async(conn)
            .await;
        let reply = match piped {
            Ok((_, reply)) => reply,
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                claim.invoke_async(conn).await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(match reply {
            ClaimReply::Claimed(id) => Popped {
                handed_back: false,
                entry: Some(id),
                paused: None,
            },
            // Paused until a user resumes it: look again after the longest nap.
            ClaimReply::Paused(left) => Popped {
                handed_back: false,
                entry: None,
                paused: Some(left.unwrap_or(Duration::MAX)),
            },
            ClaimReply::Empty => Popped::default(),
        })
    }

    /// A plan's state (`None`: no such plan); an unknown state reads as `None` too.
    pub(crate) async fn plan_state(
        &self,
        plan: &PlanId,
    ) -> Result<Option<baton_core::PlanState>, StoreError> {
        let s: Option<String> = self
            .conn()
            .hget(
                self.env.keys.plan(plan),
                baton_core::PlanField::State.as_str(),
            )
            .await?;
        Ok(s.and_then(|s| s.parse().ok()))
    }

    /// A plan's options (`None`: none, or no such plan).
    pub(crate) async fn plan_options(
        &self,
        plan: &PlanId,
    ) -> Result<Option<baton_core::PlanOptions>, StoreError> {
        let s: Option<String> = self
            .conn()
            .hget(
                self.env.keys.plan(plan),
                baton_core::PlanField::Options.as_str(),
            )
            .await?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Forgets the plans a plan waits for, once all of them completed.
    pub(crate) async fn clear_dependencies(&self, plan: &PlanId) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .hdel(
                self.env.keys.plan(plan),
                baton_core::PlanField::After.as_str(),
            )
            .await?;
        Ok(())
    }

    /// Takes a document: one handed back by the reaper first (`LMOVE handback
    /// ingesting:<worker>`), else a submitted one (`BLMOVE submit ingesting:<worker>`).
    pub(crate) async fn blocking_take_submission(
        &self,
        conn: &mut Conn,
        worker: &WorkerId,
        block: Duration,
    ) -> Result<Popped, StoreError> {
        let k = &self.env.keys;
        let handed: Option<Vec<u8>> = redis::cmd("LMOVE")
            .arg(k.handback())
            .arg(k.ingesting(worker))
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(conn)
            .await?;
        if handed.is_some() {
            return Ok(Popped {
                entry: handed,
                paused: None,
                handed_back: true,
            });
        }
        let entry: Option<Vec<u8>> = redis::cmd("BLMOVE")
            .arg(k.submit())
            .arg(k.ingesting(worker))
            .arg("RIGHT")
            .arg("LEFT")
            .arg(block.as_secs_f64())
            .query_async(conn)
            .await?;
        Ok(Popped {
            entry,
            paused: None,
            handed_back: false,
        })
    }

    /// Replaces the newest entry of a worker's ingesting list (the one just taken) by its
    /// tagged form.
    pub(crate) async fn tag_ingesting(
        &self,
        worker: &WorkerId,
        tagged: &[u8],
    ) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .lset(self.env.keys.ingesting(worker), 0, tagged)
            .await?;
        Ok(())
    }

    /// Stores a rejected document on the dead-letter list and drops it from the ingesting list,
    /// in one transaction (pool slot), then publishes the rejection.
    pub(crate) async fn reject(
        &self,
        worker: &WorkerId,
        entry: &[u8],
        letter: &DeadLetter,
        event: &Event,
    ) -> Result<(), StoreError> {
        let k = &self.env.keys;
        let letter = serde_json::to_string(letter).expect("dead letters serialize");
        let mut conn = self.conn();
        let _: () = redis::pipe()
            .atomic()
            .lpush(k.dead(), letter)
            .ignore()
            .lrem(k.ingesting(worker), 1, entry)
            .ignore()
            .hincr(k.stats(), Counter::SubmissionsRejected.as_str(), 1)
            .ignore()
            .query_async(&mut conn)
            .await?;
        let _: i64 = conn.publish(k.channel(), event.to_json()).await?;
        Ok(())
    }

    /// Appends a dead letter.
    pub(crate) async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let json = serde_json::to_string(letter).expect("dead letters serialize");
        let _: () = self.conn().lpush(self.env.keys.dead(), json).await?;
        Ok(())
    }

    /// Adds to the plan's own `stat:` counters now (for what happens outside the scripts that
    /// keep counts, e.g. a retry or a pause); the pool's reach them by transfer.
    pub(crate) async fn count(
        &self,
        plan: &PlanId,
        counters: &[(Counter, i64)],
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for (c, n) in counters {
            pipe.hincr(self.env.keys.plan(plan), c.plan_field(), *n)
                .ignore();
        }
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The plan's totals of the counters that reach the pool by transfer.
    pub(crate) async fn plan_totals(&self, plan: &PlanId) -> Result<PlanTotals, StoreError> {
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.env.keys.plan(plan))
            .arg(PlanTotals::fields())
            .query_async(&mut self.conn())
            .await?;
        Ok(PlanTotals::from_values(&values))
    }

    /// The committed transcript of a plan (base pack and chunks), if any.
    pub(crate) async fn transcript(
        &self,
        plan: &PlanId,
    ) -> Result<Option<StoredTranscript>, StoreError> {
        let k = &self.env.keys;
        // One snapshot (a transaction in the plan's slot): a commit between the two reads
        // would pair an old base with a new chunk.
        let (base, chunks): (Option<Vec<u8>>, Vec<Vec<u8>>) = redis::pipe()
            .atomic()
            .get(k.transcript(plan))
            .lrange(k.transcript_chunks(plan), 0, -1)
            .query_async(&mut self.conn())
            .await?;
        Ok(base.map(|base| StoredTranscript { base, chunks }))
    }

    /// A plan's results so far, oldest first (a result that does not decode is skipped).
    pub(crate) async fn results(&self, plan: &PlanId) -> Result<Vec<TaskResult>, StoreError> {
        let raw: Vec<String> = self
            .conn()
            .lrange(self.env.keys.results(plan), 0, -1)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }
}

//! `baton dead`: the dead-letter list (rejected documents, tasks that failed for good).

use baton_client::StoredLetter;
use baton_connect::SharedConn;
use baton_core::records::DeadLetter;
use baton_core::Keys;
use redis::AsyncCommands;

use crate::{Ctx, Failure};

/// List dead letters (newest first), or resubmit a rejected document with --requeue.
#[derive(clap::Args, Debug)]
pub(crate) struct Dead {
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
    /// Resubmit the document of this dead letter (after fixing what was wrong, submit a new
    /// document instead) and remove the letter.
    #[arg(long, value_name = "ID")]
    requeue: Option<uuid::Uuid>,
}

impl Dead {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let mut conn = ctx.conn().await?;
        if let Some(id) = self.requeue {
            requeue(&mut conn, &ctx.keys, id).await?;
            println!("resubmitted {id}");
            return Ok(());
        }
        let letters = ctx.client().await?.dead_letters(None).await?;
        for StoredLetter { raw, letter } in letters {
            if self.json {
                println!("{raw}");
                continue;
            }
            match letter {
                Some(l) => println!(
                    "{} {} {} plan={} {}",
                    l.at,
                    l.id,
                    l.kind,
                    l.plan_id.as_ref().map_or("-", |p| p.as_str()),
                    l.reason
                ),
                None => println!("{raw}"),
            }
        }
        Ok(())
    }
}

/// Resubmits a rejected document and removes its dead letter, in one transaction (also the
/// dashboard's button).
pub(crate) async fn requeue(
    conn: &mut SharedConn,
    keys: &Keys,
    id: uuid::Uuid,
) -> Result<(), Failure> {
    let raw: Vec<String> = conn.lrange(keys.dead(), 0, -1).await?;
    let Some((raw, letter)) = raw
        .iter()
        .filter_map(|r| serde_json::from_str::<DeadLetter>(r).ok().map(|l| (r, l)))
        .find(|(_, l)| l.id == id)
    else {
        return Err(Failure::BadInput(format!("no dead letter {id}")));
    };
    let Some(doc) = letter.document else {
        return Err(Failure::BadInput(format!(
            "dead letter {id} is a failed task; there is no document to resubmit"
        )));
    };
    let _: () = redis::pipe()
        .atomic()
        .lrem(keys.dead(), 1, raw)
        .ignore()
        .lpush(keys.submit(), doc)
        .ignore()
        .query_async(conn)
        .await?;
    Ok(())
}

//! SQLite on rusqlite, each operation run whole on a connection's own thread ([`Connections`]).
//!
//! Every write transaction runs on the one write connection: submissions and controls
//! ([`workflows`]), workers, leases and retention ([`upkeep`]) on its own thread; the engine's
//! small steps ([`write`]: an outcome recorded, its dependent claimed) on the caller's thread
//! when the connection is free, which saves the two thread hand-offs a step would pay (see
//! [`Sqlite::write_soon`]). Reads run on read connections ([`read`]), which WAL lets read while
//! the writer writes. A thread of its own checkpoints the WAL ([`checkpoint`]).

mod access;
mod checkpoint;
mod installs;
mod read;
mod threads;
mod upkeep;
mod workflows;
mod write;

use std::path::Path;

use checkpoint::Checkpointer;
use rusqlite::TransactionBehavior;
use threads::Connections;
use write::SqliteTx;

use super::tx::Transaction;
use super::Result;

/// The SQLite database of a store.
#[derive(Clone)]
pub(crate) struct Sqlite {
    /// Read connections (WAL: they read while the writer writes).
    read: Connections,
    /// The one write connection.
    write: Connections,
    checkpoints: Checkpointer,
}

impl Sqlite {
    /// Open `readers` read connections and the write connection to the database file at
    /// `path`, each set up by `pragmas`.
    pub(crate) fn open(path: &Path, readers: usize, pragmas: &str) -> Result<Sqlite> {
        Ok(Sqlite {
            read: Connections::open(
                path,
                readers,
                &format!("{pragmas} PRAGMA query_only = ON;"),
                "hyphae-sqlite-read",
            )?,
            write: Connections::open(
                path,
                1,
                &format!("{pragmas} PRAGMA wal_autocheckpoint = 0;"),
                "hyphae-sqlite-write",
            )?,
            checkpoints: Checkpointer::start(path, pragmas, "hyphae-sqlite-checkpoint")?,
        })
    }

    /// Run `op` in one transaction on the writer's thread, committed if it returns `Ok`. Every
    /// statement of a [`SqliteTx`] completes at once, so `op`'s future is ready when polled.
    pub(crate) async fn write<Op: Transaction>(&self, op: Op) -> Result<Op::Output> {
        let out = self.write.call(move |conn| transact(conn, op)).await;
        self.checkpoints.committed();
        out
    }

    /// [`Sqlite::write`], on the caller's thread if the writer is free now (blocking it until
    /// the transaction is committed), else on the writer's thread: for the engine's small
    /// steps, whose transactions cost about what the two hand-offs to the writer's thread and
    /// back cost.
    pub(crate) async fn write_soon<Op: Transaction>(&self, op: Op) -> Result<Op::Output> {
        let out = self.write.call_soon(move |conn| transact(conn, op)).await;
        self.checkpoints.committed();
        out
    }
}

/// Run `op` in one transaction on `conn`, committed if it returns `Ok`. Every statement of a
/// [`SqliteTx`] completes at once, so `op`'s future is ready when polled.
fn transact<Op: Transaction>(conn: &mut rusqlite::Connection, op: Op) -> Result<Op::Output> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = futures::executor::block_on(op.run(&mut SqliteTx { conn: &tx }))?;
    tx.commit()?;
    Ok(out)
}

impl Sqlite {
    /// Close the connections, once the operations already sent are done.
    pub(crate) fn close(&self) {
        self.read.close();
        self.write.close();
        self.checkpoints.stop();
    }

    /// The value of `PRAGMA name` on the writer's connection and on a read connection.
    #[cfg(test)]
    pub(crate) async fn pragma(&self, name: &'static str) -> Result<(i64, i64)> {
        let get = move |conn: &mut rusqlite::Connection| Ok(conn.pragma_query_value(None, name, |r| r.get(0))?);
        Ok((self.write.call(get).await?, self.read.call(get).await?))
    }
}

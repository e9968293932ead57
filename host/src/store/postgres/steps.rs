//! Write transactions on PostgreSQL: on a pooled connection, or, for the engine's steps, on the
//! connection kept for them. Steps follow one another closely; a kept connection is neither
//! checked out nor handed back between them (sqlx pings every connection handed back, a round
//! trip on both sides that a two-core machine feels on each step).

use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres};
use tokio::sync::Mutex;

use super::{PgTx, Pool, BEGIN_WRITE};
use crate::store::tx::Transaction;
use crate::store::Result;

/// How long a connection may rest before it is checked on its next use.
pub(crate) const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// The connection kept for steps, with when its last step ended; none until the first step, or
/// after a step failed on it.
#[derive(Default)]
pub(crate) struct Kept(Mutex<Option<(PoolConnection<Postgres>, Instant)>>);

impl Kept {
    /// Give the kept connection back to the pool (after the step under way, if any); once the
    /// pool is closed, none is kept again.
    pub(crate) async fn release(&self) {
        self.0.lock().await.take();
    }
}

/// Run `op` in a write transaction on a pooled connection.
pub(crate) async fn transact<Op: Transaction>(pool: &Pool, op: Op) -> Result<Op::Output> {
    let mut conn = pool.acquire().await?;
    run(&mut conn, op).await
}

/// Run the step `op` on the kept connection, or on a pooled one while another step has it.
/// A step that fails gives the connection back to the pool, which checks it.
pub(crate) async fn step<Op: Transaction>(pool: &Pool, kept: &Kept, op: Op) -> Result<Op::Output> {
    let Ok(mut kept) = kept.0.try_lock() else { return transact(pool, op).await };
    let mut conn = match kept.take() {
        Some((mut conn, last)) if last.elapsed() > IDLE_BEFORE_PING => match conn.ping().await {
            Ok(()) => conn,
            Err(_) => pool.acquire().await?,
        },
        Some((conn, _)) => conn,
        None => pool.acquire().await?,
    };
    let out = run(&mut conn, op).await?;
    if !pool.is_closed() {
        *kept = Some((conn, Instant::now()));
    }
    Ok(out)
}

async fn run<Op: Transaction>(conn: &mut PgConnection, op: Op) -> Result<Op::Output> {
    let mut tx = conn.begin_with(BEGIN_WRITE).await?;
    let out = op.run(&mut PgTx::new(&mut tx)).await?;
    tx.commit().await?;
    Ok(out)
}

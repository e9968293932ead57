//! Reads on PostgreSQL: one statement on a pooled connection, or a read-only transaction.

use sqlx::postgres::PgArguments;
use sqlx::{Arguments, AssertSqlSafe, PgPool};

use super::PgTx;
use crate::store::columns::{Arg, Columns};
use crate::store::tx::Transaction;
use crate::store::Result;

/// The connections of a PostgreSQL store.
pub(crate) type Pool = PgPool;

/// Run `sql` with `args` on a pooled connection and turn each row into a record with `map`.
pub(crate) async fn rows<R>(
    pool: &Pool,
    sql: &str,
    args: Vec<Arg>,
    map: impl Fn(&dyn Columns) -> Result<R>,
) -> Result<Vec<R>> {
    let mut bound = PgArguments::default();
    for a in args {
        match a {
            Arg::Int(n) => bound.add(n),
            Arg::Text(s) => bound.add(s),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    let rows = sqlx::query_with(AssertSqlSafe(sql.to_string()), bound).fetch_all(pool).await?;
    rows.iter().map(|r| map(r)).collect()
}

/// Run `op` in a transaction that is rolled back when it ends: what it reads is one snapshot.
pub(crate) async fn read_only<Op: Transaction>(pool: &Pool, op: Op) -> Result<Op::Output> {
    let mut tx = pool.begin_with("BEGIN READ ONLY").await?;
    op.run(&mut PgTx::new(&mut tx)).await
}

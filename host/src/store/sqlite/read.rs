//! Reads on SQLite, on the read connections (WAL: they read while the writer writes).

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};

use super::write::SqliteTx;
use super::Sqlite;
use crate::store::columns::{Arg, Columns};
use crate::store::tx::Transaction;
use crate::store::{Result, StoreError, TaskResultRow};

impl Sqlite {
    /// Run `sql` with `args` and turn each row into a record with `map`.
    pub(crate) async fn rows<R: Send + 'static>(
        &self,
        sql: &str,
        args: Vec<Arg>,
        map: impl Fn(&dyn Columns) -> Result<R> + Send + 'static,
    ) -> Result<Vec<R>> {
        let sql = numbered(sql);
        self.read
            .call(move |conn| {
                let mut select = conn.prepare_cached(&sql)?;
                for (i, arg) in args.iter().enumerate() {
                    select.raw_bind_parameter(i + 1, arg)?;
                }
                let mut rows = select.raw_query();
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(map(row)?);
                }
                Ok(out)
            })
            .await
    }

    /// Run `op` in a transaction of its own on a read connection, so what it reads is one
    /// snapshot; the read connections are `query_only`, so `op` cannot write.
    pub(crate) async fn read<Op: Transaction>(&self, op: Op) -> Result<Op::Output> {
        self.read
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
                futures::executor::block_on(op.run(&mut SqliteTx { conn: &tx }))
            })
            .await
    }
}

/// `sql` with its `$n` parameters written `?n`, SQLite's numbered form (to SQLite `$1` is a name,
/// numbered by where it first appears).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn task_results(conn: &Connection, workflow_id: &str, task_ids: &[String]) -> Result<Vec<TaskResultRow>> {
    let mut select = conn.prepare_cached(
        "SELECT task_id, agent_id, agent_type, status, output, error, started_at, finished_at FROM tasks \
         WHERE workflow_id = ?1 AND task_id = ?2",
    )?;
    let mut out = Vec::with_capacity(task_ids.len());
    for task_id in task_ids {
        if let Some(row) = select.query_row((workflow_id, task_id), result_row).optional()? {
            out.push(row?);
        }
    }
    Ok(out)
}

/// A task's result from its row; a status the host does not know is corrupt data.
fn result_row(r: &Row) -> rusqlite::Result<Result<TaskResultRow>> {
    let status = match r.get::<_, String>("status")?.parse() {
        Ok(status) => status,
        Err(e) => return Ok(Err(StoreError::from(e))),
    };
    let (started, finished): (Option<i64>, Option<i64>) = (r.get("started_at")?, r.get("finished_at")?);
    Ok(Ok(TaskResultRow {
        task_id: r.get("task_id")?,
        agent_id: r.get("agent_id")?,
        agent_type: r.get("agent_type")?,
        status,
        output: r.get("output")?,
        error: r.get("error")?,
        execution_ms: started.zip(finished).map(|(s, f)| (f - s) as f64 / 1000.0),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_are_numbered_for_sqlite() {
        assert_eq!(super::numbered("a = $1 AND b = $12 OR $1"), "a = ?1 AND b = ?12 OR ?1");
        assert_eq!(super::numbered("x = '$' || $2"), "x = '$' || ?2");
    }

    #[test]
    fn reading_events_again_does_not_prepare_the_scan_again() {
        use rusqlite::StatementStatus;
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE event_blocks (workflow_id TEXT, first_seq INT, events TEXT, data BLOB, PRIMARY KEY (workflow_id, first_seq));
             INSERT INTO event_blocks VALUES ('w', 1, NULL, x'00'), ('w', 4, NULL, x'00'), ('w', 9, NULL, x'00');",
        )
        .unwrap();
        let cases = [
            (crate::store::events::SCAN_FROM, 5, 4, vec![4, 9]),
            (crate::store::events::SCAN_FROM, 1, 1, vec![1]),
            (crate::store::events::SCAN_AFTER, 1, 256, vec![4, 9]),
            (crate::store::events::SCAN_AFTER, 4, 2, vec![9]),
        ];
        for (sql, from, limit, expected) in cases {
            let mut select = conn.prepare_cached(&super::numbered(sql)).unwrap();
            let rows = select.query_map(("w", from, limit), |r| r.get::<_, i64>(0)).unwrap();
            assert_eq!(rows.map(Result::unwrap).collect::<Vec<_>>(), expected, "{sql} from {from}");
            assert_eq!(select.get_status(StatementStatus::RePrepare), 0, "prepared again with limit {limit}: {sql}");
        }
    }
}

//! Reads on SQLite.

use rusqlite::{Connection, OptionalExtension, Row};

use super::Sqlite;
use crate::store::{Result, StoreError, TaskResultRow};

impl Sqlite {
    /// The results of the tasks `task_ids` of a workflow (those that exist), in that order.
    pub(crate) async fn task_results(&self, workflow_id: &str, task_ids: &[String]) -> Result<Vec<TaskResultRow>> {
        let (workflow_id, task_ids) = (workflow_id.to_string(), task_ids.to_vec());
        self.read.call(move |conn| task_results(conn, &workflow_id, &task_ids)).await
    }
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

//! Counts for the status gauges of `/metrics`.

use sqlx::Row;

use super::{Result, Store};
use crate::telemetry::StatusGauges;
use crate::workflow::{TaskStatus, WorkflowStatus};

impl Store {
    /// Workflows and tasks by status (every status listed, zero included, so gauges fall back to
    /// zero), and the queue depth: tasks ready to run but not yet claimed.
    pub async fn status_gauges(&self) -> Result<StatusGauges> {
        let count = |sql: &'static str| async move {
            let rows = sqlx::query(sql).fetch_all(self.reader()).await?;
            rows.iter().map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?))).collect::<Result<Vec<_>>>()
        };
        let workflows = count("SELECT status, COUNT(*) FROM workflows GROUP BY status").await?;
        let tasks = count("SELECT status, COUNT(*) FROM tasks GROUP BY status").await?;
        let queue_depth: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE ready_at IS NOT NULL")
            .fetch_one(self.reader())
            .await?;
        let fill = |names: Vec<&'static str>, found: Vec<(String, i64)>| {
            let mut all: Vec<(String, i64)> = names.into_iter().map(|n| (n.to_string(), 0)).collect();
            for (status, n) in found {
                match all.iter_mut().find(|(s, _)| *s == status) {
                    Some(slot) => slot.1 = n,
                    None => all.push((status, n)),
                }
            }
            all
        };
        Ok(StatusGauges {
            workflows: fill(WorkflowStatus::ALL.iter().map(|s| s.as_str()).collect(), workflows),
            tasks: fill(TaskStatus::ALL.iter().map(|s| s.as_str()).collect(), tasks),
            queue_depth,
            events_written: self.events_written(),
        })
    }
}

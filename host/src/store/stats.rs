//! Counts for the status gauges of `/metrics`.

use super::{Result, Store};
use crate::telemetry::StatusGauges;
use crate::workflow::{TaskStatus, WorkflowStatus};

impl Store {
    /// Workflows and tasks by status (every status listed, zero included, so gauges fall back to
    /// zero), the queue depth (tasks ready to run but not yet claimed), and the ready tasks whose
    /// agent type no live worker serves (workers FAILED after `threshold` missed beats excluded).
    pub async fn status_gauges(&self, threshold: u32) -> Result<StatusGauges> {
        let count = |sql| self.rows(sql, Vec::new(), |r| Ok((r.text("status")?, r.int("n")?)));
        let workflows = count("SELECT status, COUNT(*) AS n FROM workflows GROUP BY status").await?;
        let tasks = count("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status").await?;
        let ready = "SELECT COUNT(*) AS n FROM tasks WHERE ready_at IS NOT NULL";
        let queue_depth = self.row(ready, Vec::new(), |r| r.int("n")).await?.unwrap_or(0);
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
            unserved: self.unserved(threshold).await?.into_iter().map(|u| (u.agent_type, u.ready_tasks)).collect(),
            events_written: self.events_written(),
        })
    }
}

//! What the `hyphae_cluster_*` gauges of `/metrics` read from the database, and the host's own
//! database gauges measured on the way. `/metrics` caches the result (`telemetry::CLUSTER_REFRESH`),
//! so these queries run at most once per refresh interval per host, whatever the scrape rate.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::workers::WorkerHealth;
use super::{Db, Result, Store};
use crate::clock::now_us;
use crate::telemetry::{ClusterGauges, DbPool};
use crate::workflow::{TaskStatus, WorkflowStatus};

/// Workers whose last heartbeat is older than this are not counted.
const WORKERS_SEEN: Duration = Duration::from_secs(24 * 3600);

/// The `health` label values of the worker gauge, in order.
const HEALTH: [&str; 5] = ["healthy", "degraded", "critical", "failed", "stopped"];

impl Store {
    /// Read the cluster gauges: workflows and tasks by status (every status listed, zero
    /// included), ready tasks of running workflows by agent type (every agent type a live worker
    /// serves listed, zero included) and those of them no live worker serves (listed alike), workers seen in the last 24 hours by health (FAILED after `threshold` missed beats;
    /// `stopped` when shut down cleanly), and running tasks whose attempt has run longer than its
    /// timeout (the task's own, else `timeout_of(agent_type)`). Also times a trivial query (the
    /// wait for a connection plus a round trip) and reads the PostgreSQL pool's size.
    pub async fn cluster_gauges(&self, threshold: u32, timeout_of: impl Fn(&str) -> Duration) -> Result<ClusterGauges> {
        let started = Instant::now();
        self.ping().await?;
        let db_probe = started.elapsed();

        let count = |sql| self.rows(sql, Vec::new(), |r| Ok((r.text("status")?, r.int("n")?)));
        let workflows = count("SELECT status, COUNT(*) AS n FROM workflows GROUP BY status").await?;
        let tasks = count("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status").await?;

        let now = now_us();
        let sql = "SELECT last_beat, interval_ms, stopped, CAST(serves AS TEXT) AS serves FROM workers \
             WHERE last_beat > $1";
        let seen_since = now - WORKERS_SEEN.as_micros() as i64;
        let workers = self
            .rows(sql, vec![seen_since.into()], move |r| {
                let since = Duration::from_micros((now - r.int("last_beat")?).max(0) as u64);
                let interval = Duration::from_millis(r.int("interval_ms")?.max(0) as u64);
                let health = if r.flag("stopped")? {
                    "stopped"
                } else {
                    match WorkerHealth::classify(since, interval, threshold) {
                        WorkerHealth::Healthy => "healthy",
                        WorkerHealth::Degraded => "degraded",
                        WorkerHealth::Critical => "critical",
                        WorkerHealth::Failed => "failed",
                    }
                };
                let serves: BTreeMap<String, String> = super::columns::json(r, "serves")?;
                Ok((health, serves.into_keys().collect::<Vec<_>>()))
            })
            .await?;
        let mut by_health: Vec<(&'static str, i64)> = HEALTH.iter().map(|h| (*h, 0)).collect();
        let mut live = BTreeSet::new();
        for (health, serves) in workers {
            if let Some(slot) = by_health.iter_mut().find(|(h, _)| *h == health) {
                slot.1 += 1;
            }
            if health != "failed" && health != "stopped" {
                live.extend(serves);
            }
        }

        let ready = "SELECT t.agent_type, COUNT(*) AS n FROM tasks t CROSS JOIN workflows w \
             WHERE w.workflow_id = t.workflow_id AND t.ready_at IS NOT NULL AND w.status = 'running' \
             GROUP BY t.agent_type ORDER BY t.agent_type";
        let ready = self.rows(ready, Vec::new(), |r| Ok((r.text("agent_type")?, r.int("n")?))).await?;
        // Every agent type a live worker serves has a queue, empty or not; none of it is unserved.
        let mut queues: BTreeMap<String, i64> = live.iter().map(|agent_type| (agent_type.clone(), 0)).collect();
        queues.extend(ready);
        let unserved =
            queues.iter().map(|(agent_type, n)| (agent_type.clone(), if live.contains(agent_type) { 0 } else { *n }));
        let unserved = unserved.collect();
        let queue_depth = queues.into_iter().collect();

        let tasks_past_timeout = self.stuck_tasks(timeout_of).await?.len() as i64;

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
        let db_pool = match &self.db {
            Db::Sqlite(_) => None,
            Db::Postgres(pool, _) => Some(DbPool {
                open: pool.size(),
                idle: pool.num_idle() as u32,
                max: pool.options().get_max_connections(),
            }),
        };
        Ok(ClusterGauges {
            workflows: fill(WorkflowStatus::ALL.iter().map(|s| s.as_str()).collect(), workflows),
            tasks: fill(TaskStatus::ALL.iter().map(|s| s.as_str()).collect(), tasks),
            queue_depth,
            unserved,
            workers: by_health,
            tasks_past_timeout,
            db_probe,
            db_pool,
        })
    }
}

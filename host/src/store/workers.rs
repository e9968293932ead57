//! Host workers: registration, heartbeats, health, and taking over the work of lost workers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::columns::json;
use super::tx::{Transaction, WorkerRow, WriteTx};
use super::{Applied, Result, Store};
use crate::clock::now_us;
use crate::events::rfc3339;
use crate::lifecycle;

/// Health of a worker, from the time since its last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum WorkerHealth {
    /// Less than one interval since the last beat.
    Healthy,
    /// Less than two intervals.
    Degraded,
    /// Less than the miss threshold.
    Critical,
    /// At or beyond the miss threshold (or stopped): its leases are taken over.
    Failed,
}

impl WorkerHealth {
    /// The name it is served under: `HEALTHY`, `DEGRADED`, `CRITICAL` or `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerHealth::Healthy => "HEALTHY",
            WorkerHealth::Degraded => "DEGRADED",
            WorkerHealth::Critical => "CRITICAL",
            WorkerHealth::Failed => "FAILED",
        }
    }

    /// Health after `since` without a beat, for a worker beating every `interval`, failed after
    /// `threshold` missed beats.
    pub fn classify(since: Duration, interval: Duration, threshold: u32) -> WorkerHealth {
        let beats = since.as_secs_f64() / interval.as_secs_f64().max(1e-6);
        if beats < 1.0 {
            WorkerHealth::Healthy
        } else if beats < 2.0 {
            WorkerHealth::Degraded
        } else if beats < threshold as f64 {
            WorkerHealth::Critical
        } else {
            WorkerHealth::Failed
        }
    }
}

/// A host worker as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkerRecord {
    pub worker_id: String,
    pub hostname: String,
    pub pid: i64,
    pub started_at: String,
    pub last_heartbeat: String,
    pub interval_ms: i64,
    pub since_last_heartbeat_ms: f64,
    pub health: WorkerHealth,
    pub stopped: bool,
    /// Tasks this worker holds leases on.
    pub running_tasks: i64,
    /// The agent types it serves, with the digest of each one's executor.
    pub serves: Serves,
}

/// Agent types a worker serves, with the digest (`sha256:...`) of each one's executor.
pub type Serves = BTreeMap<String, String>;

/// Ready tasks of an agent type that no live worker serves: they wait for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Unserved {
    pub agent_type: String,
    /// Ready tasks of this type in running workflows.
    pub ready_tasks: i64,
}

/// A worker's writes, each its own transaction.
enum WorkerWrite {
    Register { worker_id: String, hostname: String, interval_ms: i64, serves: String },
    Heartbeat { worker_id: String, serves: String },
    Stop(String),
    RenewLeases { worker_id: String, until: i64 },
}

impl Transaction for WorkerWrite {
    /// Leases renewed (0 for the others).
    type Output = u64;

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<u64> {
        match self {
            WorkerWrite::Register { worker_id, hostname, interval_ms, serves } => {
                let pid = std::process::id() as i64;
                let (now, serves) = (now_us(), serves.as_str());
                let row = WorkerRow { worker_id: &worker_id, hostname: &hostname, pid, now, interval_ms, serves };
                tx.register_worker(&row).await?;
            }
            WorkerWrite::Heartbeat { worker_id, serves } => tx.heartbeat(&worker_id, now_us(), &serves).await?,
            WorkerWrite::Stop(worker_id) => tx.stop_worker(&worker_id).await?,
            WorkerWrite::RenewLeases { worker_id, until } => return tx.renew_leases(&worker_id, until).await,
        }
        Ok(0)
    }
}

impl Store {
    /// Record a worker (or refresh it) as alive now, serving `serves`.
    pub async fn register_worker(
        &self,
        worker_id: &str,
        hostname: &str,
        interval: Duration,
        serves: &Serves,
    ) -> Result<()> {
        let interval_ms = interval.as_millis() as i64;
        let (worker_id, hostname, serves) = (worker_id.into(), hostname.into(), serde_json::to_string(serves)?);
        self.transact(WorkerWrite::Register { worker_id, hostname, interval_ms, serves }).await.map(drop)
    }

    /// A heartbeat of `worker_id`, serving `serves` now.
    pub async fn heartbeat(&self, worker_id: &str, serves: &Serves) -> Result<()> {
        let op = WorkerWrite::Heartbeat { worker_id: worker_id.into(), serves: serde_json::to_string(serves)? };
        self.transact(op).await.map(drop)
    }

    /// Mark a worker as stopped (a clean shutdown).
    pub async fn stop_worker(&self, worker_id: &str) -> Result<()> {
        self.transact(WorkerWrite::Stop(worker_id.into())).await.map(drop)
    }

    /// Extend the leases `worker_id` holds. Returns how many leases were renewed.
    pub async fn renew_leases(&self, worker_id: &str, lease: Duration) -> Result<u64> {
        let until = now_us() + lease.as_micros() as i64;
        self.transact(WorkerWrite::RenewLeases { worker_id: worker_id.into(), until }).await
    }

    /// All workers with their health; workers stopped for more than a day are left out.
    pub async fn workers(&self, threshold: u32) -> Result<Vec<WorkerRecord>> {
        let now = now_us();
        let sql = "SELECT w.worker_id, w.hostname, w.pid, w.started_at, w.last_beat, w.interval_ms, w.stopped, \
             CAST(w.serves AS TEXT) AS serves, (SELECT COUNT(*) FROM tasks t WHERE t.lease_owner = w.worker_id AND t.status = 'running') AS running \
             FROM workers w WHERE NOT w.stopped OR w.last_beat > $1 ORDER BY w.started_at";
        self.rows(sql, vec![(now - 86_400_000_000).into()], move |r| {
            let last = r.int("last_beat")?;
            let interval_ms = r.int("interval_ms")?;
            let stopped = r.flag("stopped")?;
            let since = Duration::from_micros((now - last).max(0) as u64);
            let health = if stopped {
                WorkerHealth::Failed
            } else {
                WorkerHealth::classify(since, Duration::from_millis(interval_ms as u64), threshold)
            };
            Ok(WorkerRecord {
                worker_id: r.text("worker_id")?,
                hostname: r.text("hostname")?,
                pid: r.int("pid")?,
                started_at: rfc3339(r.int("started_at")?),
                last_heartbeat: rfc3339(last),
                interval_ms,
                since_last_heartbeat_ms: since.as_secs_f64() * 1000.0,
                health,
                stopped,
                running_tasks: r.int("running")?,
                serves: json(r, "serves")?,
            })
        })
        .await
    }

    /// The agent types some live worker (not FAILED) serves.
    pub async fn live_agent_types(&self, threshold: u32) -> Result<BTreeSet<String>> {
        let workers = self.workers(threshold).await?;
        let live = workers.into_iter().filter(|w| w.health != WorkerHealth::Failed);
        Ok(live.flat_map(|w| w.serves.into_keys()).collect())
    }

    /// Ready tasks of running workflows whose agent type no live worker serves, by agent type.
    pub async fn unserved(&self, threshold: u32) -> Result<Vec<Unserved>> {
        let live = self.live_agent_types(threshold).await?;
        let sql = "SELECT t.agent_type, COUNT(*) AS n FROM tasks t CROSS JOIN workflows w \
             WHERE w.workflow_id = t.workflow_id AND t.ready_at IS NOT NULL AND w.status = 'running' \
             GROUP BY t.agent_type ORDER BY t.agent_type";
        let ready = self.rows(sql, Vec::new(), |r| Ok((r.text("agent_type")?, r.int("n")?))).await?;
        let unserved = ready.into_iter().filter(|(agent_type, _)| !live.contains(agent_type));
        Ok(unserved.map(|(agent_type, ready_tasks)| Unserved { agent_type, ready_tasks }).collect())
    }

    /// Take over attempts whose holder is gone: leases that expired, leases of workers that are
    /// FAILED (missed `threshold` heartbeats, or stopped), and, with `all_but`, every lease not held
    /// by that worker (a single host restarting on its own database). The attempts of `me`, the
    /// worker looking, are taken only when their lease expired: a host whose own heartbeat was late
    /// (a busy database, a starved thread) does not take its live attempts from itself. Each lost
    /// attempt is recorded as a retryable `worker_lost` failure, so it is retried like any failure.
    pub async fn reap_lost_attempts(&self, me: &str, threshold: u32, all_but: Option<&str>) -> Result<Vec<Applied>> {
        let now = now_us();
        let sql = "SELECT t.workflow_id, t.task_id, t.attempt, t.lease_owner FROM tasks t \
             LEFT JOIN workers w ON w.worker_id = t.lease_owner \
             WHERE t.status = 'running' AND (t.lease_expires < $1 \
             OR (t.lease_owner <> $4 AND (w.stopped OR w.last_beat < $1 - w.interval_ms * 1000 * $2)) \
             OR ($3 <> '' AND t.lease_owner <> $3))";
        let args = vec![now.into(), (threshold as i64).into(), all_but.unwrap_or("").into(), me.into()];
        let outcomes = self
            .rows(sql, args, |r| {
                let (owner, attempt) = (r.opt_text("lease_owner")?, r.int("attempt")? as u32);
                Ok(lifecycle::lost_attempt(r.text("workflow_id")?, r.text("task_id")?, attempt, owner.as_deref()))
            })
            .await?;
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        self.record_outcomes(&outcomes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_thresholds() {
        let i = Duration::from_secs(5);
        let h = |s: f64| WorkerHealth::classify(Duration::from_secs_f64(s), i, 3);
        assert_eq!(h(0.0), WorkerHealth::Healthy);
        assert_eq!(h(4.9), WorkerHealth::Healthy);
        assert_eq!(h(5.0), WorkerHealth::Degraded);
        assert_eq!(h(10.0), WorkerHealth::Critical);
        assert_eq!(h(14.9), WorkerHealth::Critical);
        assert_eq!(h(15.0), WorkerHealth::Failed);
    }
}

//! What operators ask when something goes wrong (the runbook): recent failures, tasks running past
//! their timeout, each agent type's record, outcomes over time. Plain reads of the attempts table;
//! the arithmetic (rates, percentiles, buckets) is done here in Rust, the same for both databases.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::columns::{Arg, Columns};
use super::{Applied, Page, Result, Store, StoreError};
use crate::clock::now_us;
use crate::events::rfc3339;
use crate::lifecycle;
use crate::workflow::TaskStatus;

/// One failed attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Failure {
    pub workflow_id: String,
    pub task_id: String,
    pub agent_type: String,
    pub attempt: u32,
    pub worker_id: String,
    /// `timeout`, `worker_lost`, `reset`, an error type of the plugin ...
    pub error_type: Option<String>,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: f64,
    #[serde(skip)]
    finished_us: i64,
}

/// Which failures to list.
#[derive(Debug, Clone, Default)]
pub struct FailureFilter {
    pub agent_type: Option<String>,
    pub error_type: Option<String>,
    /// Only failures that ended at or after this time (µs).
    pub since_us: i64,
    pub limit: i64,
    /// Where the previous page ended.
    pub after: Option<FailureCursor>,
}

/// Where a page of failures ends: the last one's (finished_at, workflow id, task id, attempt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureCursor(i64, String, String, i64);

impl FailureCursor {
    /// The cursor a page's `next_cursor` names, if it is one.
    pub fn parse(text: &str) -> Option<FailureCursor> {
        serde_json::from_str(text).ok()
    }
}

/// A task whose attempt runs past its timeout: its host should have ended it, so the host is
/// stuck, or gone with its lease not yet expired.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StuckTask {
    pub workflow_id: String,
    pub task_id: String,
    pub agent_type: String,
    pub attempt: u32,
    /// The worker holding the task.
    pub worker_id: String,
    pub started_at: String,
    /// The attempt's timeout (the task's own, else the host's default).
    pub timeout_s: f64,
    pub running_s: f64,
}

/// One agent type's attempts over a window.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct AgentTypeStats {
    pub agent_type: String,
    /// Attempts that ended in the window.
    pub attempts: u64,
    pub completed: u64,
    /// Failed attempts, timeouts included.
    pub failed: u64,
    pub timeouts: u64,
    pub cancelled: u64,
    pub success_rate: f64,
    pub failure_rate: f64,
    pub timeout_rate: f64,
    /// Duration of the attempts that ended, median and 95th percentile (ms).
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// The largest peak memory of one attempt, in bytes.
    pub peak_memory_bytes: Option<i64>,
}

/// Attempts that ended in one interval, by outcome.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct OutcomeBucket {
    /// Start of the interval (RFC 3339).
    pub start: String,
    pub completed: u64,
    /// Failed attempts other than timeouts.
    pub failed: u64,
    pub timeout: u64,
    pub cancelled: u64,
}

/// What resetting a task did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskReset {
    pub workflow_id: String,
    pub task_id: String,
    /// The attempt taken from the task: its result, if it ever comes, is refused.
    pub reset_attempt: u32,
    /// The task's status now (`retrying`: ready to run again at once).
    pub status: TaskStatus,
}

/// The error type of an attempt that ran out of time.
const TIMEOUT: &str = "timeout";

impl Store {
    /// Failed attempts, newest first.
    pub async fn failures(&self, f: &FailureFilter) -> Result<Page<Failure>> {
        let limit = f.limit.clamp(1, 1000);
        let after = f.after.clone().unwrap_or(FailureCursor(i64::MAX, String::new(), String::new(), 0));
        let sql = "SELECT a.workflow_id, a.task_id, t.agent_type, a.attempt, a.worker_id, a.error_type, a.error, \
             a.started_at, a.finished_at FROM attempts a \
             JOIN tasks t ON t.workflow_id = a.workflow_id AND t.task_id = a.task_id \
             WHERE a.finished_at IS NOT NULL AND a.status = 'failed' AND a.finished_at >= $1 \
             AND ($2 = '' OR t.agent_type = $2) AND ($3 = '' OR a.error_type = $3) \
             AND (a.finished_at < $4 OR (a.finished_at = $4 AND $5 <> '' AND \
                 (a.workflow_id < $5 OR (a.workflow_id = $5 AND (a.task_id < $6 OR (a.task_id = $6 AND a.attempt < $7)))))) \
             ORDER BY a.finished_at DESC, a.workflow_id DESC, a.task_id DESC, a.attempt DESC LIMIT $8 + 0";
        let args: Vec<Arg> = vec![
            f.since_us.into(),
            f.agent_type.clone().unwrap_or_default().into(),
            f.error_type.clone().unwrap_or_default().into(),
            after.0.into(),
            after.1.into(),
            after.2.into(),
            after.3.into(),
            (limit + 1).into(),
        ];
        let mut items = self.rows(sql, args, failure_from_row).await?;
        let next_cursor = (items.len() as i64 > limit).then(|| {
            items.truncate(limit as usize);
            items.last().map(|l| l.cursor())
        });
        Ok(Page { items, next_cursor: next_cursor.flatten() })
    }

    /// Tasks whose running attempt started longer ago than its timeout (the task's own, else
    /// `timeout_of(agent_type)`), longest running first. Running tasks hold a lease: the partial
    /// index `tasks_leased` finds them.
    pub async fn stuck_tasks(&self, timeout_of: impl Fn(&str) -> Duration) -> Result<Vec<StuckTask>> {
        let now = now_us();
        let sql =
            "SELECT t.workflow_id, t.task_id, t.agent_type, t.attempt, t.lease_owner, t.timeout_ms, a.started_at \
             FROM tasks t JOIN attempts a ON a.workflow_id = t.workflow_id AND a.task_id = t.task_id \
             AND a.attempt = t.attempt WHERE t.lease_owner IS NOT NULL AND t.status = 'running' ORDER BY a.started_at";
        let running = self.rows(sql, Vec::new(), running_from_row).await?;
        let stuck = running.into_iter().filter_map(|(mut s, started, timeout_ms)| {
            let timeout_us = match timeout_ms {
                Some(ms) => ms * 1000,
                None => timeout_of(&s.agent_type).as_micros() as i64,
            };
            (now - started > timeout_us).then(|| {
                (s.timeout_s, s.running_s) = (timeout_us as f64 / 1e6, (now - started) as f64 / 1e6);
                s
            })
        });
        Ok(stuck.collect())
    }

    /// Ready tasks waiting for a slot (or for a worker that serves them).
    pub async fn queue_depth(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) AS n FROM tasks WHERE ready_at IS NOT NULL";
        Ok(self.row(sql, Vec::new(), |r| r.int("n")).await?.unwrap_or(0))
    }

    /// Each agent type's attempts that ended at or after `since_us`, by agent type.
    pub async fn agent_type_stats(&self, since_us: i64) -> Result<Vec<AgentTypeStats>> {
        let sql = "SELECT t.agent_type, a.status, a.error_type, a.finished_at - a.started_at AS took, a.peak_memory \
             FROM attempts a JOIN tasks t ON t.workflow_id = a.workflow_id AND t.task_id = a.task_id \
             WHERE a.finished_at IS NOT NULL AND a.finished_at >= $1";
        let rows = self
            .rows(sql, vec![since_us.into()], |r| {
                Ok(Ended {
                    agent_type: r.text("agent_type")?,
                    outcome: Outcome::of(&r.text("status")?, r.opt_text("error_type")?.as_deref()),
                    took_us: r.int("took")?,
                    peak_memory: r.opt_int("peak_memory")?,
                })
            })
            .await?;
        Ok(summarize(rows))
    }

    /// Attempts that ended in each `interval_us` of the last `duration_us`, oldest first (every
    /// interval listed, empty ones included).
    pub async fn outcome_series(&self, interval_us: i64, duration_us: i64) -> Result<Vec<OutcomeBucket>> {
        let now = now_us();
        let first = (now - duration_us).div_euclid(interval_us) * interval_us;
        let sql = "SELECT a.finished_at / $2 AS bucket, a.status, a.error_type, COUNT(*) AS n FROM attempts a \
             WHERE a.finished_at IS NOT NULL AND a.finished_at >= $1 \
             GROUP BY 1, 2, 3";
        let counts = self
            .rows(sql, vec![first.into(), interval_us.into()], |r| {
                let outcome = Outcome::of(&r.text("status")?, r.opt_text("error_type")?.as_deref());
                Ok((r.int("bucket")?, outcome, r.int("n")? as u64))
            })
            .await?;
        Ok(buckets(first / interval_us, now / interval_us, interval_us, counts))
    }
}

impl Store {
    /// Take a running task from its attempt (fenced: that attempt's result is refused) and make it
    /// ready to run again at once, not counted against its retry policy. `reason` is recorded as
    /// the attempt's error. `None` when there is no such task; a conflict when it is not running.
    pub async fn reset_task(&self, workflow_id: &str, task_id: &str, reason: &str) -> Result<Option<TaskReset>> {
        let sql = "SELECT status, attempt FROM tasks WHERE workflow_id = $1 AND task_id = $2";
        let args = vec![workflow_id.into(), task_id.into()];
        let Some((status, attempt)) = self.row(sql, args, |r| Ok((r.text("status")?, r.int("attempt")?))).await? else {
            return Ok(None);
        };
        if status != TaskStatus::Running.as_str() {
            return Err(StoreError::Conflict(format!(
                "task `{task_id}` is {status}, not running: only a running task can be reset"
            )));
        }
        let attempt = attempt as u32;
        let outcome = lifecycle::reset_attempt(workflow_id.into(), task_id.into(), attempt, reason.into());
        match self.record_outcomes(&[outcome]).await?.pop() {
            Some(Applied::Recorded { task_status, .. }) => Ok(Some(TaskReset {
                workflow_id: workflow_id.into(),
                task_id: task_id.into(),
                reset_attempt: attempt,
                status: task_status,
            })),
            _ => Err(StoreError::Conflict(format!(
                "attempt {attempt} of task `{task_id}` ended while it was being reset: look at the task again"
            ))),
        }
    }
}

/// A running task, its start (µs) and its own timeout (ms).
fn running_from_row(r: &dyn Columns) -> Result<(StuckTask, i64, Option<i64>)> {
    let started = r.int("started_at")?;
    let task = StuckTask {
        workflow_id: r.text("workflow_id")?,
        task_id: r.text("task_id")?,
        agent_type: r.text("agent_type")?,
        attempt: r.int("attempt")? as u32,
        worker_id: r.opt_text("lease_owner")?.unwrap_or_default(),
        started_at: rfc3339(started),
        timeout_s: 0.0,
        running_s: 0.0,
    };
    Ok((task, started, r.opt_int("timeout_ms")?))
}

impl Failure {
    fn cursor(&self) -> String {
        let c = FailureCursor(self.finished_us, self.workflow_id.clone(), self.task_id.clone(), self.attempt as i64);
        serde_json::to_string(&c).unwrap_or_default()
    }
}

fn failure_from_row(r: &dyn Columns) -> Result<Failure> {
    let (started, finished) = (r.int("started_at")?, r.int("finished_at")?);
    let error: Option<serde_json::Value> = r.opt_text("error")?.and_then(|e| serde_json::from_str(&e).ok());
    Ok(Failure {
        workflow_id: r.text("workflow_id")?,
        task_id: r.text("task_id")?,
        agent_type: r.text("agent_type")?,
        attempt: r.int("attempt")? as u32,
        worker_id: r.text("worker_id")?,
        error_type: r.opt_text("error_type")?,
        message: error.as_ref().and_then(|e| e["message"].as_str()).map(str::to_string),
        started_at: rfc3339(started),
        finished_at: rfc3339(finished),
        duration_ms: (finished - started) as f64 / 1000.0,
        finished_us: finished,
    })
}

/// How an attempt ended, as the runbook counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
    Timeout,
    Cancelled,
}

impl Outcome {
    fn of(status: &str, error_type: Option<&str>) -> Outcome {
        match (status, error_type) {
            ("completed", _) => Outcome::Completed,
            ("cancelled", _) => Outcome::Cancelled,
            (_, Some(TIMEOUT)) => Outcome::Timeout,
            _ => Outcome::Failed,
        }
    }
}

/// One attempt that ended.
struct Ended {
    agent_type: String,
    outcome: Outcome,
    took_us: i64,
    peak_memory: Option<i64>,
}

/// Counts, rates and percentiles per agent type.
fn summarize(rows: Vec<Ended>) -> Vec<AgentTypeStats> {
    let mut by_type: BTreeMap<String, (AgentTypeStats, Vec<i64>)> = BTreeMap::new();
    for e in rows {
        let (s, took) = by_type.entry(e.agent_type.clone()).or_default();
        s.attempts += 1;
        match e.outcome {
            Outcome::Completed => s.completed += 1,
            Outcome::Failed => s.failed += 1,
            Outcome::Timeout => (s.failed, s.timeouts) = (s.failed + 1, s.timeouts + 1),
            Outcome::Cancelled => s.cancelled += 1,
        }
        s.peak_memory_bytes = s.peak_memory_bytes.max(e.peak_memory);
        took.push(e.took_us);
    }
    by_type
        .into_iter()
        .map(|(agent_type, (mut s, mut took))| {
            took.sort_unstable();
            let n = s.attempts as f64;
            s.success_rate = s.completed as f64 / n;
            s.failure_rate = s.failed as f64 / n;
            s.timeout_rate = s.timeouts as f64 / n;
            s.p50_ms = percentile(&took, 0.50) as f64 / 1000.0;
            s.p95_ms = percentile(&took, 0.95) as f64 / 1000.0;
            AgentTypeStats { agent_type, ..s }
        })
        .collect()
}

/// The nearest-rank percentile `p` of sorted values (0 when there are none).
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Every interval from `first` to `last` (interval numbers), with the counts found in them.
fn buckets(first: i64, last: i64, interval_us: i64, counts: Vec<(i64, Outcome, u64)>) -> Vec<OutcomeBucket> {
    let mut series: Vec<OutcomeBucket> =
        (first..=last).map(|b| OutcomeBucket { start: rfc3339(b * interval_us), ..Default::default() }).collect();
    for (bucket, outcome, n) in counts {
        let Some(b) = usize::try_from(bucket - first).ok().and_then(|i| series.get_mut(i)) else { continue };
        match outcome {
            Outcome::Completed => b.completed += n,
            Outcome::Failed => b.failed += n,
            Outcome::Timeout => b.timeout += n,
            Outcome::Cancelled => b.cancelled += n,
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(agent_type: &str, outcome: Outcome, took_ms: i64) -> Ended {
        Ended { agent_type: agent_type.into(), outcome, took_us: took_ms * 1000, peak_memory: Some(took_ms) }
    }

    #[test]
    fn rates_and_percentiles_per_agent_type() {
        let mut rows: Vec<Ended> = (1..=18).map(|ms| ended("fib", Outcome::Completed, ms)).collect();
        rows.push(ended("fib", Outcome::Timeout, 100));
        rows.push(ended("fib", Outcome::Failed, 50));
        rows.push(ended("echo", Outcome::Cancelled, 1));
        let stats = summarize(rows);
        let (echo, fib) = (&stats[0], &stats[1]);
        assert_eq!((echo.agent_type.as_str(), echo.attempts, echo.cancelled), ("echo", 1, 1));
        assert_eq!((fib.attempts, fib.completed, fib.failed, fib.timeouts), (20, 18, 2, 1));
        assert_eq!((fib.success_rate, fib.failure_rate, fib.timeout_rate), (0.9, 0.1, 0.05));
        assert_eq!((fib.p50_ms, fib.p95_ms), (10.0, 50.0));
        assert_eq!(fib.peak_memory_bytes, Some(100));
    }

    #[test]
    fn outcomes_of_statuses() {
        assert_eq!(Outcome::of("completed", None), Outcome::Completed);
        assert_eq!(Outcome::of("failed", Some("timeout")), Outcome::Timeout);
        assert_eq!(Outcome::of("failed", Some("worker_lost")), Outcome::Failed);
        assert_eq!(Outcome::of("cancelled", Some("timeout")), Outcome::Cancelled);
    }

    #[test]
    fn every_interval_is_listed() {
        let counts = vec![
            (11, Outcome::Completed, 3),
            (11, Outcome::Timeout, 1),
            (13, Outcome::Failed, 2),
            (99, Outcome::Failed, 1),
        ];
        let series = buckets(10, 13, 60_000_000, counts);
        let n: Vec<(u64, u64, u64)> = series.iter().map(|b| (b.completed, b.failed, b.timeout)).collect();
        assert_eq!(n, vec![(0, 0, 0), (3, 0, 1), (0, 0, 0), (0, 2, 0)]);
        assert_eq!(series[1].start, rfc3339(11 * 60_000_000));
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.95), 7);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.95), 4);
    }
}

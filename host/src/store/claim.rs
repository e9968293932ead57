//! Claiming ready tasks under a lease: the only way a task starts running.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::inserts::{add, Inserts};
use super::rows::History;
use super::{Dialect, Result, Store};
use crate::clock::now_us;
use crate::events::TaskNames;
use crate::lifecycle::{self, Changes};
use crate::workflow::{Budget, Usage, WorkflowStatus};

/// A task this worker now holds a lease on, with everything needed to run its attempt.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub workflow_id: String,
    /// Shared with the events of the attempt.
    pub task_id: Arc<str>,
    pub agent_id: Arc<str>,
    pub agent_type: Arc<str>,
    /// The attempt this claim is for: also the fence its outcome must present.
    pub attempt: u32,
    pub input: String,
    pub dependencies: Vec<String>,
    pub timeout: Option<Duration>,
    pub metadata: String,
    pub variables: String,
    pub context: String,
    /// Time the task waited between becoming ready and this claim.
    pub queue_time: Duration,
    /// The workflow's budget, if it has one, and what it had spent when this claim was made.
    pub budget: Option<(Budget, Usage)>,
}

impl ClaimedTask {
    /// The task's names, shared by the events of its attempt.
    pub fn names(&self) -> TaskNames {
        TaskNames {
            task_id: self.task_id.clone(),
            agent_id: self.agent_id.clone(),
            agent_type: self.agent_type.clone(),
        }
    }
}

/// What a claim took, and whether more tasks were ready than it could take.
#[derive(Debug, Default)]
pub struct Claimed {
    pub tasks: Vec<ClaimedTask>,
    /// Ready tasks were left for want of room in the claim (`max`): claim again when slots free.
    pub more_ready: bool,
}

/// A request to claim ready tasks.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The worker that will hold the leases.
    pub worker_id: &'a str,
    /// Most tasks to claim.
    pub max: usize,
    /// How long the leases last without renewal.
    pub lease: Duration,
    /// Only from these workflows (all when `None`).
    pub workflows: Option<&'a [String]>,
}

/// What the tasks of one workflow claimed together share: the workflow's variables, context and
/// budget with what it had spent.
struct Slots {
    variables: String,
    context: String,
    budget: Option<(Budget, Usage)>,
}

/// Take a slot of the workflow for each task; another host may have taken some meanwhile, so
/// give back any excess. Returns what the tasks share and those that got a slot, if any did.
async fn take_slots(
    tx: &mut AnyConnection,
    workflow_id: &str,
    mut task_ids: Vec<String>,
) -> Result<Option<(Slots, Vec<String>)>> {
    let k = task_ids.len() as i64;
    let row = sqlx::query(
        "UPDATE workflows SET running = running + $2 WHERE workflow_id = $1 \
         RETURNING running, max_parallel, variables, context, budget, egress_requests, llm_tokens",
    )
    .bind(workflow_id)
    .bind(k)
    .fetch_one(&mut *tx)
    .await?;
    let (running, max_parallel): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let excess = lifecycle::excess_claims(running, max_parallel, k);
    if excess > 0 {
        sqlx::query("UPDATE workflows SET running = running - $2 WHERE workflow_id = $1")
            .bind(workflow_id)
            .bind(excess)
            .execute(&mut *tx)
            .await?;
        task_ids.truncate((k - excess) as usize);
    }
    if task_ids.is_empty() {
        return Ok(None);
    }
    let budget = match row.try_get::<Option<String>, _>(4)? {
        Some(b) => {
            let used = Usage {
                egress_requests: row.try_get::<i64, _>(5)? as u64,
                llm_tokens: row.try_get::<i64, _>(6)? as u64,
            };
            Some((serde_json::from_str::<Budget>(&b)?, used))
        }
        None => None,
    };
    Ok(Some((Slots { variables: row.try_get(2)?, context: row.try_get(3)?, budget }, task_ids)))
}

/// The claimed tasks, from the rows [`Store::start_tasks`] returned.
fn started(workflow_id: &str, rows: Vec<AnyRow>, slots: &Slots, now: i64) -> Result<Vec<ClaimedTask>> {
    let mut tasks = Vec::with_capacity(rows.len());
    for r in rows {
        let ready_since: Option<i64> = r.try_get(8)?;
        tasks.push(ClaimedTask {
            workflow_id: workflow_id.to_string(),
            task_id: r.try_get::<&str, _>(0)?.into(),
            agent_id: r.try_get::<&str, _>(1)?.into(),
            agent_type: r.try_get::<&str, _>(2)?.into(),
            attempt: r.try_get::<i64, _>(3)? as u32,
            input: r.try_get(4)?,
            dependencies: serde_json::from_str(&r.try_get::<String, _>(5)?)?,
            timeout: r.try_get::<Option<i64>, _>(6)?.map(|ms| Duration::from_millis(ms as u64)),
            metadata: r.try_get(7)?,
            variables: slots.variables.clone(),
            context: slots.context.clone(),
            queue_time: Duration::from_micros((now - ready_since.unwrap_or(now)).max(0) as u64),
            budget: slots.budget,
        });
    }
    Ok(tasks)
}

impl Store {
    /// Claim up to `max` ready tasks of running workflows for `worker_id`, respecting each
    /// workflow's `max_parallel_tasks`. Safe to call from several hosts at once.
    pub async fn claim(&self, worker_id: &str, max: usize, lease: Duration) -> Result<Claimed> {
        if max == 0 {
            return Ok(Claimed::default());
        }
        let mut tx = self.write.begin().await?;
        let (mut history, mut inserts) = (History::default(), Inserts::new(self.dialect));
        let claim = Claim { worker_id, max, lease, workflows: None };
        let claimed = self.claim_in(&mut tx, &claim, &mut history, &mut inserts).await?;
        if claimed.tasks.is_empty() {
            tx.rollback().await?;
            return Ok(claimed);
        }
        let flushed = history.flush(&mut tx, inserts, self.events_enabled()).await?;
        tx.commit().await?;
        self.count_events(flushed.events);
        Ok(claimed)
    }

    /// Claim inside an open transaction; the versions and events go to `history`, the new
    /// attempts to `inserts`.
    pub(crate) async fn claim_in(
        &self,
        tx: &mut AnyConnection,
        claim: &Claim<'_>,
        history: &mut History<'_>,
        inserts: &mut Inserts,
    ) -> Result<Claimed> {
        if claim.workflows.is_some_and(|w| w.is_empty()) {
            return Ok(Claimed::default());
        }
        let now = now_us();
        let mut claimed = Vec::new();
        let (candidates, more_ready) = self.candidates(tx, claim, now).await?;
        for (workflow_id, task_ids) in candidates {
            let Some((slots, task_ids)) = take_slots(tx, &workflow_id, task_ids).await? else {
                continue;
            };
            let rows = self.start_tasks(tx, &workflow_id, &task_ids, claim, now).await?;
            let started = started(&workflow_id, rows, &slots, now)?;
            if started.is_empty() {
                continue;
            }
            self.record_started(&workflow_id, &started, claim.worker_id, now, history, inserts)?;
            claimed.extend(started);
        }
        Ok(Claimed { tasks: claimed, more_ready })
    }

    /// The ready tasks a claim may take, by workflow: the first ready ones of each running
    /// workflow with free slots; and whether more were ready (one more is asked for to know).
    async fn candidates(
        &self,
        tx: &mut AnyConnection,
        claim: &Claim<'_>,
        now: i64,
    ) -> Result<(BTreeMap<String, Vec<String>>, bool)> {
        let only = match claim.workflows {
            Some(w) => format!(
                " AND w.workflow_id IN ({})",
                (0..w.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ")
            ),
            None => String::new(),
        };
        let sql = match self.dialect {
            // Each running workflow with free slots gives its first ready tasks, read in order
            // from its own ready index: the cost follows the slots, not the tasks waiting.
            Dialect::Postgres => format!(
                "SELECT t.workflow_id, t.task_id FROM workflows w CROSS JOIN LATERAL ( \
                 SELECT r.workflow_id, r.task_id, r.ready_at, r.position FROM tasks r \
                 WHERE r.workflow_id = w.workflow_id AND r.ready_at IS NOT NULL AND r.ready_at <= $1 \
                 ORDER BY r.ready_at, r.position LIMIT GREATEST(LEAST(w.max_parallel - w.running, $2), 0) \
                 FOR UPDATE SKIP LOCKED) t \
                 WHERE w.status = 'running' AND w.running < w.max_parallel{only} \
                 ORDER BY t.ready_at, t.position LIMIT $2"
            ),
            // `CROSS JOIN` keeps SQLite walking the ready index in order and stopping at `max`,
            // rather than reading every task of each running workflow.
            Dialect::Sqlite => format!(
                "SELECT t.workflow_id, t.task_id FROM tasks t CROSS JOIN workflows w \
                 WHERE w.workflow_id = t.workflow_id AND t.ready_at IS NOT NULL AND t.ready_at <= $1 \
                 AND w.status = 'running' AND w.running < w.max_parallel{only} \
                 ORDER BY t.ready_at, t.position LIMIT $2"
            ),
        };
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(claim.max as i64 + 1);
        for w in claim.workflows.unwrap_or_default() {
            q = q.bind(w);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let more_ready = rows.len() > claim.max;
        let mut by_workflow: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows.iter().take(claim.max) {
            by_workflow.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        Ok((by_workflow, more_ready))
    }

    /// Mark the tasks running under this claim's lease, as attempt + 1. Returns their rows in
    /// submission order.
    async fn start_tasks(
        &self,
        tx: &mut AnyConnection,
        workflow_id: &str,
        task_ids: &[String],
        claim: &Claim<'_>,
        now: i64,
    ) -> Result<Vec<AnyRow>> {
        // The list repeats its last id up to a bucket's length, so its text recurs (see
        // `bucket`); a repeated id changes nothing.
        let listed = super::inserts::bucket(self.dialect, task_ids.len());
        let list: Vec<String> = (0..listed).map(|i| format!("${}", i + 5)).collect();
        let sql = format!(
            "UPDATE tasks SET status = 'running', attempt = attempt + 1, ready_at = NULL, lease_owner = $2, \
             lease_expires = $3, started_at = COALESCE(started_at, $4) \
             WHERE workflow_id = $1 AND ready_at IS NOT NULL AND task_id IN ({}) \
             RETURNING task_id, agent_id, agent_type, attempt, input, dependencies, timeout_ms, metadata, \
             ready_since, position",
            list.join(", ")
        );
        let lease_expires = now + claim.lease.as_micros() as i64;
        let mut q =
            sqlx::query(AssertSqlSafe(sql)).bind(workflow_id).bind(claim.worker_id).bind(lease_expires).bind(now);
        for i in 0..listed {
            q = q.bind(&task_ids[i.min(task_ids.len() - 1)]);
        }
        let mut rows = q.fetch_all(&mut *tx).await?;
        rows.sort_by_key(|r| r.try_get::<i64, _>(9).unwrap_or(0));
        Ok(rows)
    }

    /// The version, `task_started` events and attempt rows of the tasks a claim started.
    fn record_started(
        &self,
        workflow_id: &str,
        started: &[ClaimedTask],
        worker_id: &str,
        now: i64,
        history: &mut History<'_>,
        inserts: &mut Inserts,
    ) -> Result<()> {
        let tracking = self.events_enabled();
        // Shared by the `task_started` events of this claim.
        let worker: Arc<str> = worker_id.into();
        let mut changes = Changes::new();
        let mut events = Vec::with_capacity(if tracking { started.len() } else { 0 });
        for task in started {
            let (state, event) = lifecycle::started(tracking.then(|| task.names()), task.attempt, &worker, now);
            changes.insert(task.task_id.to_string(), state);
            events.extend(event);
        }
        let attempts: Vec<_> =
            started.iter().map(|t| (t.task_id.clone(), t.attempt, t.queue_time.as_micros() as i64)).collect();
        let target = "attempts (workflow_id, task_id, attempt, worker_id, status, queue_us, started_at)";
        inserts.rows(target, 7, attempts, |args, (task_id, attempt, queue_us)| {
            add(args, workflow_id.to_string())?;
            add(args, &*task_id)?;
            add(args, attempt as i64)?;
            add(args, worker_id.to_string())?;
            add(args, "running")?;
            add(args, queue_us)?;
            add(args, now)
        })?;
        history.version(workflow_id, WorkflowStatus::Running, "claimed", changes);
        history.events(workflow_id, events);
        Ok(())
    }

    /// Extend the leases `worker_id` holds. Returns how many leases were renewed.
    pub async fn renew_leases(&self, worker_id: &str, lease: Duration) -> Result<u64> {
        let until = now_us() + lease.as_micros() as i64;
        let r = sqlx::query("UPDATE tasks SET lease_expires = $2 WHERE lease_owner = $1 AND status = 'running'")
            .bind(worker_id)
            .bind(until)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected())
    }

    /// When the next task becomes ready (µs), if any is waiting for a retry delay.
    pub async fn next_ready_at(&self) -> Result<Option<i64>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT t.ready_at FROM tasks t CROSS JOIN workflows w WHERE w.workflow_id = t.workflow_id \
             AND t.ready_at IS NOT NULL AND w.status = 'running' ORDER BY t.ready_at LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok(next)
    }
}

//! Claiming ready tasks under a lease: the only way a task starts running.

use std::sync::Arc;
use std::time::Duration;

use super::rows::History;
use super::tx::{AttemptStart, NewRows, ReadyTask, StartedRow, TakenSlots, Transaction, WriteTx};
use super::{Dialect, Result, Store, TaskResultRow};
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
    /// The results of its dependencies, in the order of `dependencies`, read by the claim.
    pub dependency_results: Vec<TaskResultRow>,
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
#[derive(Debug, Clone)]
pub struct Claim {
    /// The worker that will hold the leases.
    pub worker_id: Arc<str>,
    /// Most tasks to claim.
    pub max: usize,
    /// How long the leases last without renewal.
    pub lease: Duration,
    /// Only from these workflows (all when `None`).
    pub workflows: Option<Vec<String>>,
    /// Only tasks of these agent types, the ones this worker serves (any when `None`).
    pub agent_types: Option<Arc<[String]>>,
}

impl Claim {
    /// This claim, on PostgreSQL narrowed to the workflows whose rows the transaction already
    /// holds (`held`): taking other workflow rows could deadlock with another host's writer.
    pub(crate) fn within_held(self, dialect: Dialect, held: impl FnOnce() -> Vec<String>) -> Claim {
        match dialect {
            Dialect::Postgres => Claim { workflows: Some(held()), ..self },
            Dialect::Sqlite => self,
        }
    }
}

/// Claiming, with the versions and events it writes: alone in a transaction of its own, or
/// last in another one's.
pub(crate) struct ClaimTasks {
    pub claim: Claim,
    pub tracking: bool,
}

impl Transaction for ClaimTasks {
    type Output = (Claimed, u64);

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<(Claimed, u64)> {
        let (mut history, mut rows) = (History::default(), NewRows::default());
        let claimed = claim_in(tx, &self.claim, &mut history, &mut rows, self.tracking).await?;
        let flushed = history.flush(tx, rows, self.tracking).await?;
        Ok((claimed, flushed.events))
    }
}

/// Keep as many of a workflow's ready tasks as its slots allow: another host may have taken
/// some slots since the claim read the workflow, so give back any excess.
async fn fit_slots<T: WriteTx>(
    tx: &mut T,
    workflow_id: &str,
    slots: &TakenSlots,
    ready: &mut Vec<ReadyTask>,
) -> Result<()> {
    let k = ready.len() as i64;
    let excess = lifecycle::excess_claims(slots.running, slots.max_parallel, k);
    if excess > 0 {
        tx.give_back_slots(workflow_id, excess).await?;
        ready.truncate((k - excess) as usize);
    }
    Ok(())
}

/// The claimed tasks, from the rows the claim started.
fn started(workflow_id: &str, rows: Vec<StartedRow>, slots: &TakenSlots, now: i64) -> Vec<ClaimedTask> {
    let mut tasks = Vec::with_capacity(rows.len());
    for r in rows {
        let dependency_results = in_order(r.dependency_results, &r.dependencies);
        tasks.push(ClaimedTask {
            workflow_id: workflow_id.to_string(),
            task_id: r.task_id.into(),
            agent_id: r.agent_id.into(),
            agent_type: r.agent_type.into(),
            attempt: r.attempt,
            input: r.input,
            dependencies: r.dependencies,
            dependency_results,
            timeout: r.timeout_ms.map(|ms| Duration::from_millis(ms as u64)),
            metadata: r.metadata,
            variables: slots.variables.clone(),
            context: slots.context.clone(),
            queue_time: Duration::from_micros((now - r.ready_since.unwrap_or(now)).max(0) as u64),
            budget: slots.budget,
        });
    }
    tasks
}

impl Store {
    /// Claim up to `claim.max` ready tasks of running workflows, respecting each workflow's
    /// `max_parallel_tasks`. Safe to call from several hosts at once.
    pub async fn claim(&self, claim: Claim) -> Result<Claimed> {
        if claim.max == 0 {
            return Ok(Claimed::default());
        }
        let tasks = claim.max;
        let (claimed, events) =
            self.transact_step(ClaimTasks { claim, tracking: self.events_enabled() }, tasks).await?;
        self.count_events(events);
        Ok(claimed)
    }

    /// When the next task becomes ready (µs), if any is waiting for a retry delay.
    pub async fn next_ready_at(&self) -> Result<Option<i64>> {
        let sql = "SELECT t.ready_at FROM tasks t CROSS JOIN workflows w WHERE w.workflow_id = t.workflow_id \
             AND t.ready_at IS NOT NULL AND w.status = 'running' ORDER BY t.ready_at LIMIT 1";
        self.row(sql, Vec::new(), |r| r.int("ready_at")).await
    }
}

/// Claim inside an open transaction; the versions and events go to `history`, the new attempts
/// to `rows`.
pub(crate) async fn claim_in<T: WriteTx>(
    tx: &mut T,
    claim: &Claim,
    history: &mut History<'_>,
    rows: &mut NewRows,
    tracking: bool,
) -> Result<Claimed> {
    if claim.workflows.as_ref().is_some_and(|w| w.is_empty()) {
        return Ok(Claimed::default());
    }
    let now = now_us();
    let mut claimed = Vec::new();
    let taken = tx.take_ready(now, claim.max, claim.workflows.as_deref(), claim.agent_types.as_deref()).await?;
    let lease_expires = now + claim.lease.as_micros() as i64;
    for (workflow_id, slots, mut ready) in taken.workflows {
        fit_slots(tx, &workflow_id, &slots, &mut ready).await?;
        if ready.is_empty() {
            continue;
        }
        let started_rows = tx.start_tasks(&workflow_id, &ready, &claim.worker_id, lease_expires, now).await?;
        let started = started(&workflow_id, started_rows, &slots, now);
        if started.is_empty() {
            continue;
        }
        record_started(&workflow_id, &started, &claim.worker_id, now, tracking, history, rows);
        claimed.extend(started);
    }
    Ok(Claimed { tasks: claimed, more_ready: taken.more_ready })
}

/// `rows` in the order of `task_ids`.
fn in_order(mut rows: Vec<TaskResultRow>, task_ids: &[String]) -> Vec<TaskResultRow> {
    rows.sort_by_key(|r| task_ids.iter().position(|d| *d == r.task_id).unwrap_or(usize::MAX));
    rows
}

/// The version, `task_started` events and attempt rows of the tasks a claim started.
fn record_started(
    workflow_id: &str,
    started: &[ClaimedTask],
    worker_id: &Arc<str>,
    now: i64,
    tracking: bool,
    history: &mut History<'_>,
    rows: &mut NewRows,
) {
    let mut changes = Changes::new();
    let mut events = Vec::with_capacity(if tracking { started.len() } else { 0 });
    for task in started {
        let (state, event) = lifecycle::started(tracking.then(|| task.names()), task.attempt, worker_id, now);
        changes.insert(task.task_id.to_string(), state);
        events.extend(event);
        rows.attempts_started.push(AttemptStart {
            workflow_id: workflow_id.to_string(),
            task_id: task.task_id.clone(),
            attempt: task.attempt,
            worker_id: worker_id.to_string(),
            queue_us: task.queue_time.as_micros() as i64,
            started_at: now,
        });
    }
    history.version(workflow_id, WorkflowStatus::Running, "claimed", changes);
    history.events(workflow_id, events);
}

//! Storing a submitted workflow: one transaction for the workflow, its tasks, version 1 and the
//! creation events.

use std::sync::Arc;

use serde::Serialize;

use super::claim::{Claim, ClaimTasks, Claimed};
use super::rows::{notices, History};
use super::tx::{NewRows, Transaction, WriteTx};
use super::{Result, Store, StoreError};
use crate::clock::now_us;
use crate::events::{EventKind, NewEvent, TaskNames};
use crate::lifecycle::{Changes, TaskVersionState};
use crate::workflow::{TaskStatus, ValidWorkflow, WorkflowStatus};

/// The events of a submission: `workflow_created`, a `task_created` per task, and
/// `workflow_started` when it starts at once.
fn created_events(wf: &ValidWorkflow) -> Vec<NewEvent> {
    let mut events = Vec::with_capacity(wf.tasks.len() + 2);
    events.push(NewEvent::new(EventKind::WorkflowCreated {
        started: wf.start,
        name: wf.name.clone(),
        task_count: wf.tasks.len() as u32,
        max_parallel_tasks: wf.max_parallel_tasks,
    }));
    // The tasks are created together, by this transaction.
    let created = now_us();
    for t in &wf.tasks {
        let task = TaskNames::new(&t.task_id, &t.agent_id, &t.agent_type);
        events.push(NewEvent::at(EventKind::TaskCreated { task, dependencies: t.dependencies.clone() }, created));
    }
    if wf.start {
        events.push(NewEvent::new(EventKind::WorkflowStarted));
    }
    events
}

/// What a submission produced.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub workflow_id: String,
    pub status: WorkflowStatus,
    pub version: i64,
    /// True when the idempotency key matched an earlier submission, which is returned instead.
    pub existing: bool,
}

impl Store {
    /// Store a validated workflow (and start it, unless it asks not to).
    pub async fn submit(&self, wf: ValidWorkflow) -> Result<Submitted> {
        Ok(self.submit_and_claim(wf, None).await?.0)
    }

    /// [`Store::submit`], and in the same transaction claim ready tasks as `claim` asks (on
    /// PostgreSQL only the new workflow's, whose row alone this transaction holds): a workflow's
    /// first tasks start without another transaction. An earlier submission that the
    /// idempotency key names claims nothing.
    pub async fn submit_and_claim(&self, wf: ValidWorkflow, claim: Option<Claim>) -> Result<(Submitted, Claimed)> {
        let op = Submit { wf, claim, tracking: self.events_enabled(), origin: self.origin.clone() };
        let (submitted, claimed, events) = self.transact(op).await?;
        self.count_events(events);
        Ok((submitted, claimed))
    }
}

/// The transaction of a submission: the workflow, its tasks, version 1 (snapshotted: every
/// rebuild has a base) and the creation events, or the workflow its idempotency key names;
/// then the claim, if any, as the next version.
struct Submit {
    wf: ValidWorkflow,
    claim: Option<Claim>,
    tracking: bool,
    origin: Arc<str>,
}

impl Transaction for Submit {
    /// The submission, what the claim took, and how many events it wrote.
    type Output = (Submitted, Claimed, u64);

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Self::Output> {
        let wf = &self.wf;
        if let Some(key) = &wf.idempotency_key {
            if let Some((found, fingerprint)) = tx.submitted_with(key).await? {
                return match fingerprint {
                    Some(f) if Some(&f) != wf.fingerprint.as_ref() => {
                        Err(StoreError::IdempotencyKeyReused { key: key.clone(), workflow_id: found.workflow_id })
                    }
                    _ => Ok((found, Claimed::default(), 0)),
                };
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_us();
        let status = if wf.start { WorkflowStatus::Running } else { WorkflowStatus::Pending };
        tx.insert_workflow(&id, wf, status, now).await?;
        tx.insert_tasks(&id, &wf.tasks, wf.start, now).await?;
        let changes: Changes =
            wf.tasks.iter().map(|t| (t.task_id.clone(), TaskVersionState::bare(TaskStatus::Pending, 0))).collect();
        let mut history = History::default();
        history.version(&id, status, "created", changes);
        if self.tracking {
            history.events(&id, created_events(wf));
        }
        let rows = NewRows { notices: notices(&self.origin, vec![(id.as_str(), false)]), ..NewRows::default() };
        let flushed = history.flush(tx, rows, self.tracking).await?;
        let version = flushed.versions.first().map(|(_, v)| *v).unwrap_or(1);
        super::rows::write_snapshot(tx, &id, version, status).await?;
        let (claimed, claim_events) = match self.claim.filter(|c| c.max > 0 && wf.start) {
            // After the first version and its snapshot: the claim is the next version.
            Some(claim) => {
                let claim = claim.within_held(tx.dialect(), || vec![id.clone()]);
                ClaimTasks { claim, tracking: self.tracking }.run(tx).await?
            }
            None => (Claimed::default(), 0),
        };
        let submitted = Submitted { workflow_id: id, status, version, existing: false };
        Ok((submitted, claimed, flushed.events + claim_events))
    }
}

//! Recording the outcome of an attempt: if its fence still holds, one transaction (shared by a
//! batch of outcomes) stores the result, appends the events, bumps the version, makes dependents
//! ready and settles the workflow.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::claim::{claim_in, Claim, Claimed};
use super::rows::{notices, History};
use super::tx::{AttemptClose, Completion, NewRows, Transaction, WriteTx};
use super::{Result, Store};
use crate::clock::now_us;
use crate::events::NewEvent;
use crate::lifecycle::{self, AttemptEnded, AttemptResult, Changes, Held, Outcome, Stop, Stopped, TaskUpdate};
use crate::workflow::{Exhausted, TaskStatus, Usage, WorkflowStatus};

/// What recording an outcome did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The attempt no longer holds the task (cancelled, reclaimed, or a stale worker): nothing written.
    Fenced,
    Recorded {
        task_status: TaskStatus,
        /// The workflow's status when this outcome ended it.
        workflow_finished: Option<WorkflowStatus>,
        /// Tasks whose running attempts were cancelled (the workflow failed).
        cancelled: Vec<String>,
        /// When the task's retry becomes due (µs).
        retry_at: Option<i64>,
    },
}

/// What recording a batch accumulates before its closing statements.
#[derive(Default)]
struct Batch<'o> {
    /// Borrows the events of the outcomes being recorded.
    history: History<'o>,
    attempts: Vec<AttemptClose>,
    /// By workflow id: iterated in id order, the order workflow rows are locked in.
    workflows: BTreeMap<String, Counters>,
    /// Dependencies settled in this batch, per (workflow id, dependent task id).
    settled: BTreeMap<(String, String), i64>,
}

impl Batch<'_> {
    fn counters(&mut self, workflow_id: &str) -> &mut Counters {
        self.workflows.entry(workflow_id.to_string()).or_default()
    }
}

/// Per workflow: slots given back, tasks settled, whether it failed, its last outcome, what its
/// attempts spent, and the budget that refused one of them.
#[derive(Default)]
struct Counters {
    released: i64,
    settled: i64,
    failed: bool,
    last: usize,
    usage: Usage,
    exhausted: Option<(String, Exhausted)>,
}

/// The workflows the recorded outcomes changed, each with whether attempts running elsewhere
/// may have to stop (tasks cancelled, or the workflow failed): what other hosts are told.
fn changed<'o>(outcomes: &'o [Outcome], applied: &[Applied]) -> Vec<(&'o str, bool)> {
    outcomes
        .iter()
        .zip(applied)
        .filter_map(|(o, a)| match a {
            Applied::Fenced => None,
            Applied::Recorded { cancelled, workflow_finished, .. } => Some((
                o.workflow_id.as_str(),
                !cancelled.is_empty() || *workflow_finished == Some(WorkflowStatus::Failed),
            )),
        })
        .collect()
}

/// Recording a batch of outcomes, then claiming ready tasks for the slots they free.
pub(crate) struct RecordOutcomes {
    pub outcomes: Vec<Outcome>,
    pub claim: Option<Claim>,
    /// Whether coordination events are written.
    pub tracking: bool,
    /// The store's identity in the change notices it sends.
    pub origin: Arc<str>,
}

/// What [`RecordOutcomes`] did: per outcome, what the claim took, the events written.
pub(crate) type Recorded = (Vec<Applied>, Claimed, u64);

impl Transaction for RecordOutcomes {
    type Output = Recorded;

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Recorded> {
        let RecordOutcomes { outcomes, claim, tracking, origin } = self;
        let mut applied = Vec::with_capacity(outcomes.len());
        let mut batch = Batch::default();
        let mut completed = complete_fenced(tx, &outcomes).await?;
        for o in &outcomes {
            if !o.usage.is_zero() {
                // Spent even when the attempt no longer holds its task.
                batch.counters(&o.workflow_id).usage.add(o.usage);
            }
            let held = completed.remove(&(o.workflow_id.as_str(), o.task_id.as_str()));
            let a = record_one(tx, o, held, &mut batch, tracking).await?;
            if a != Applied::Fenced {
                let c = batch.counters(&o.workflow_id);
                c.last = applied.len();
            }
            applied.push(a);
        }
        tx.settle_dependents(&batch.settled, now_us()).await?;
        let mut rows = NewRows { attempts_closed: batch.attempts, ..NewRows::default() };
        let mut history = batch.history;
        settle_workflows(tx, &batch.workflows, &mut history, &mut applied).await?;
        // Claim from the workflows this batch holds (not failed ones) where that matters.
        let held = || batch.workflows.iter().filter(|(_, c)| !c.failed).map(|(id, _)| id.clone()).collect();
        let claim = claim.map(|c| c.within_held(tx.dialect(), held));
        let claimed = match claim {
            Some(c) if c.max > 0 => claim_in(tx, &c, &mut history, &mut rows, tracking).await?,
            _ => Claimed::default(),
        };
        rows.notices = notices(&origin, changed(&outcomes, &applied));
        let flushed = history.flush(tx, rows, tracking).await?;
        Ok((applied, claimed, flushed.events))
    }
}

impl Store {
    /// Record a batch of outcomes in one transaction. Each gets its own [`Applied`].
    pub async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<Vec<Applied>> {
        Ok(self.record_and_claim(outcomes, None).await?.0)
    }

    /// Record a batch of outcomes and, in the same transaction, claim the ready tasks they freed
    /// slots for: a finishing task's dependents start without another round trip.
    pub async fn record_and_claim(
        &self,
        outcomes: &[Outcome],
        claim: Option<Claim>,
    ) -> Result<(Vec<Applied>, Claimed)> {
        let tasks = outcomes.len().max(claim.as_ref().map_or(0, |c| c.max));
        let op = RecordOutcomes {
            outcomes: outcomes.to_vec(),
            claim,
            tracking: self.events_enabled(),
            origin: self.origin.clone(),
        };
        let (applied, claimed, events) = self.transact_step(op, tasks).await?;
        self.count_events(events);
        Ok((applied, claimed))
    }
}

/// Per workflow of the batch, one statement gives back the slots, counts the settled tasks
/// and adds the spending; a workflow with nothing left ends `completed`.
async fn settle_workflows<T: WriteTx>(
    tx: &mut T,
    workflows: &BTreeMap<String, Counters>,
    history: &mut History<'_>,
    applied: &mut [Applied],
) -> Result<()> {
    let now = now_us();
    // Workflow rows are taken in id order, as claims take them, so writers never deadlock.
    for (workflow_id, c) in workflows {
        if c.failed {
            if !c.usage.is_zero() {
                tx.add_usage(workflow_id, c.usage).await?;
            }
            continue;
        }
        if let Some((task_id, exhausted)) = &c.exhausted {
            pause_for_budget(tx, workflow_id, task_id, exhausted, history).await?;
        }
        let (remaining, status) = tx.release_slots(workflow_id, c.released, c.settled, c.usage).await?;
        history.fill_status(workflow_id, status);
        if lifecycle::completes(c.settled, remaining, status) {
            tx.end_workflow(workflow_id, WorkflowStatus::Completed, None, now).await?;
            history.set_last_status(workflow_id, WorkflowStatus::Completed);
            history.events(workflow_id, vec![lifecycle::workflow_completed()]);
            if let Applied::Recorded { workflow_finished, .. } = &mut applied[c.last] {
                *workflow_finished = Some(WorkflowStatus::Completed);
            }
        }
    }
    Ok(())
}

/// Record every completed attempt of the batch whose fence still holds. Returns what recording
/// the rest needs, by (workflow id, task id).
async fn complete_fenced<'o, T: WriteTx>(
    tx: &mut T,
    outcomes: &'o [Outcome],
) -> Result<HashMap<(&'o str, &'o str), Held>> {
    let mut done: Vec<Completion> = outcomes
        .iter()
        .filter_map(|o| match &o.result {
            AttemptResult::Completed(output) => {
                Some(Completion { workflow_id: &o.workflow_id, task_id: &o.task_id, attempt: o.attempt, output })
            }
            AttemptResult::Failed(_) | AttemptResult::Reset { .. } => None,
        })
        .collect();
    // Task rows are taken in key order, as control operations take them.
    done.sort_by(|a, b| (a.workflow_id, a.task_id).cmp(&(b.workflow_id, b.task_id)));
    // What the database returns is looked up by its own strings; the map's values are the same
    // keys borrowed from the outcomes, which the result is keyed by.
    let by_key: HashMap<(&str, &str), (&'o str, &'o str)> =
        done.iter().map(|c| ((c.workflow_id, c.task_id), (c.workflow_id, c.task_id))).collect();
    let mut held = HashMap::with_capacity(done.len());
    for (wf, task, h) in tx.complete_tasks(&done, now_us()).await? {
        if let Some(key) = by_key.get(&(wf.as_str(), task.as_str())) {
            held.insert(*key, h);
        }
    }
    Ok(held)
}

/// Record one outcome. A completed attempt was already written by [`complete_fenced`] (`held` is
/// what it returned, `None` when fenced off); a failed one is checked here.
async fn record_one<'o, T: WriteTx>(
    tx: &mut T,
    o: &'o Outcome,
    held: Option<Held>,
    batch: &mut Batch<'o>,
    tracking: bool,
) -> Result<Applied> {
    let held = match &o.result {
        AttemptResult::Completed(_) => held,
        AttemptResult::Failed(_) | AttemptResult::Reset { .. } => {
            tx.held_task(&o.workflow_id, &o.task_id, o.attempt).await?
        }
    };
    let Some(held) = held else {
        return Ok(Applied::Fenced);
    };
    // The attempt's own events come first; then those of what recording it does.
    batch.history.borrowed_events(&o.workflow_id, &o.events);
    let now = now_us();
    let end = lifecycle::attempt_ended(o, &held, now, tracking);
    update_task(tx, o, &end, now).await?;
    batch.attempts.push(AttemptClose {
        workflow_id: o.workflow_id.clone(),
        task_id: o.task_id.clone(),
        attempt: o.attempt,
        status: end.attempt_status(),
        finished_at: now,
        error: end.error.as_ref().map(|e| e.to_string()),
        log: (!o.log.is_empty()).then(|| serde_json::to_string(&o.log)).transpose()?,
        plugin_digest: o.plugin_digest.clone(),
        error_type: end.error.as_ref().and_then(|e| e["error_type"].as_str()).map(str::to_string),
        peak_memory: (o.peak_memory > 0).then_some(o.peak_memory as i64),
    });
    if end.settled {
        for d in held.dependents {
            *batch.settled.entry((o.workflow_id.clone(), d)).or_default() += 1;
        }
    }
    let counters = batch.counters(&o.workflow_id);
    counters.released += 1;
    counters.settled += end.settled as i64;
    if let Some(exhausted) = &o.exhausted {
        counters.exhausted.get_or_insert_with(|| (o.task_id.clone(), exhausted.clone()));
    }
    let (task_status, retry_at) = (end.task_status(), end.retry_at());
    let mut changes = Changes::new();
    changes.insert(o.task_id.clone(), end.change);
    let mut events = end.events;
    let (mut finished, mut cancelled) = (None, Vec::new());
    if end.fails_workflow {
        cancelled = fail_workflow(tx, o, end.error.as_ref(), &mut changes, &mut events, batch).await?;
        finished = Some(WorkflowStatus::Failed);
        batch.history.version(&o.workflow_id, WorkflowStatus::Failed, task_status.as_str(), changes);
    } else {
        batch.history.version_same_status(&o.workflow_id, task_status.as_str(), changes);
    }
    batch.history.events(&o.workflow_id, events);
    Ok(Applied::Recorded { task_status, workflow_finished: finished, cancelled, retry_at })
}

/// Write a failed attempt's task change (a completed one was written with its fence check).
async fn update_task<T: WriteTx>(tx: &mut T, o: &Outcome, end: &AttemptEnded, now: i64) -> Result<()> {
    let error = end.error.as_ref().map(|e| e.to_string());
    match end.update {
        TaskUpdate::Completed => Ok(()),
        TaskUpdate::Retrying { ready_at, uncounted } => {
            tx.retry_task(&o.workflow_id, &o.task_id, ready_at, error.as_deref(), uncounted).await
        }
        TaskUpdate::Failed => tx.fail_task(&o.workflow_id, &o.task_id, error.as_deref(), now).await,
    }
}

/// The task of `o` failed its workflow: stop the rest and end it. Returns the tasks whose
/// running attempts were cancelled.
async fn fail_workflow<T: WriteTx>(
    tx: &mut T,
    o: &Outcome,
    error: Option<&Value>,
    changes: &mut Changes,
    events: &mut Vec<NewEvent>,
    batch: &mut Batch<'_>,
) -> Result<Vec<String>> {
    let before = tx.workflow_status(&o.workflow_id).await?;
    batch.counters(&o.workflow_id).failed = true;
    batch.history.fill_status(&o.workflow_id, before);
    let stopped = stop_remaining(tx, &o.workflow_id, Stop::Failed).await?;
    let cancelled = stopped.cancelled_tasks();
    changes.extend(stopped.changes);
    events.extend(stopped.events);
    let (reason, event) = lifecycle::workflow_failed(&o.task_id, error, &cancelled);
    tx.end_workflow(&o.workflow_id, WorkflowStatus::Failed, Some(&reason), now_us()).await?;
    events.push(event);
    Ok(cancelled)
}

/// Stop every unfinished task of a workflow, as [`lifecycle::stop`] says.
pub(crate) async fn stop_remaining<T: WriteTx>(tx: &mut T, workflow_id: &str, why: Stop) -> Result<Stopped> {
    let unfinished = tx.unfinished_tasks(workflow_id).await?;
    let stopped = lifecycle::stop(unfinished, why);
    let now = now_us();
    let ended: Vec<(&str, TaskStatus)> = (stopped.cancelled.iter())
        .map(|(t, _)| (t.as_str(), TaskStatus::Cancelled))
        .chain(stopped.not_started.iter().map(|t| (t.as_str(), stopped.not_started_status)))
        .collect();
    tx.end_tasks(workflow_id, &ended, now).await?;
    tx.cancel_attempts(workflow_id, &stopped.cancelled, now).await?;
    Ok(stopped)
}

/// Pause a running workflow whose budget refused a request of `task_id`, with the reason in its
/// state (`pause_reason`) and in its `workflow_paused` event.
async fn pause_for_budget<T: WriteTx>(
    tx: &mut T,
    workflow_id: &str,
    task_id: &str,
    exhausted: &Exhausted,
    history: &mut History<'_>,
) -> Result<()> {
    let (reason, event) = lifecycle::budget_paused(task_id, exhausted);
    if tx.pause_running(workflow_id, &reason).await? {
        history.version(workflow_id, WorkflowStatus::Paused, "budget_exhausted", Changes::new());
        history.events(workflow_id, vec![event]);
    }
    Ok(())
}

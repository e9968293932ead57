//! Storing a submitted workflow: one transaction for the workflow, its tasks, version 1 and the
//! creation events.

use serde::Serialize;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::inserts::placeholders;
use super::rows::History;
use super::tx::NewRows;
use super::tx_any::AnyTx;
use super::{Result, Store};
use crate::clock::now_us;
use crate::events::{EventKind, NewEvent, TaskNames};
use crate::lifecycle::{Changes, TaskVersionState};
use crate::workflow::{TaskStatus, ValidTask, ValidWorkflow, WorkflowStatus};

/// The workflow submitted earlier with this idempotency key, if any.
async fn submitted_with(tx: &mut AnyConnection, key: &str) -> Result<Option<Submitted>> {
    let found = sqlx::query("SELECT workflow_id, status, version FROM workflows WHERE idempotency_key = $1")
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(r) = found else {
        return Ok(None);
    };
    let status: String = r.try_get(1)?;
    Ok(Some(Submitted { workflow_id: r.try_get(0)?, status: status.parse()?, version: r.try_get(2)?, existing: true }))
}

async fn insert_workflow(
    tx: &mut AnyConnection,
    id: &str,
    wf: &ValidWorkflow,
    status: WorkflowStatus,
    now: i64,
) -> Result<()> {
    let n = wf.tasks.len() as i64;
    sqlx::query(
        "INSERT INTO workflows (workflow_id, name, status, version, max_parallel, running, remaining, \
         task_count, snapshot_every, event_seq, variables, context, idempotency_key, created_at, updated_at, \
         started_at, budget) VALUES ($1, $2, $3, 0, $4, 0, $5, $5, $6, 0, $7, $8, $9, $10, $10, $11, $12)",
    )
    .bind(id)
    .bind(wf.name.clone())
    .bind(status.as_str())
    .bind(wf.max_parallel_tasks as i64)
    .bind(n)
    .bind(n.max(64))
    .bind(serde_json::Value::Object(wf.variables.clone()).to_string())
    .bind(serde_json::Value::Object(wf.context.clone()).to_string())
    .bind(wf.idempotency_key.clone())
    .bind(now)
    .bind(wf.start.then_some(now))
    .bind(wf.budget.map(|b| serde_json::to_string(&b)).transpose()?)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

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

const TASK_COLUMNS: usize = 17;
const TASK_CHUNK: usize = 200;

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
    pub async fn submit(&self, wf: &ValidWorkflow) -> Result<Submitted> {
        let mut tx = self.begin_write().await?;
        if let Some(key) = &wf.idempotency_key {
            if let Some(found) = submitted_with(&mut tx, key).await? {
                return Ok(found);
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_us();
        let status = if wf.start { WorkflowStatus::Running } else { WorkflowStatus::Pending };
        insert_workflow(&mut tx, &id, wf, status, now).await?;
        for chunk in wf.tasks.chunks(TASK_CHUNK) {
            self.insert_tasks(&mut tx, &id, chunk, wf.start, now).await?;
        }
        let mut changes = Changes::new();
        for t in &wf.tasks {
            changes.insert(t.task_id.clone(), TaskVersionState::bare(TaskStatus::Pending, 0));
        }
        let mut history = History::default();
        history.version(&id, status, "created", changes);
        if self.events_enabled() {
            history.events(&id, created_events(wf));
        }
        let mut history_tx = AnyTx::new(&mut tx, self.dialect);
        let flushed = history.flush(&mut history_tx, NewRows::default(), self.events_enabled()).await?;
        let version = flushed.versions.first().map(|(_, v)| *v).unwrap_or(1);
        // Version 1 is always snapshotted: every rebuild has a base.
        super::rows::write_snapshot(&mut history_tx, &id, version, status).await?;
        super::rows::notify_hosts(&mut history_tx, &self.origin, vec![(id.as_str(), false)]).await?;
        tx.commit().await?;
        self.count_events(flushed.events);
        Ok(Submitted { workflow_id: id, status, version, existing: false })
    }

    /// Insert one chunk of a workflow's tasks; those without dependencies are ready if it starts.
    async fn insert_tasks(
        &self,
        tx: &mut AnyConnection,
        id: &str,
        chunk: &[ValidTask],
        start: bool,
        now: i64,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO tasks (workflow_id, task_id, position, agent_id, agent_type, dependencies, dependents, \
             input, retry_policy, timeout_ms, allow_failure, metadata, status, deps_remaining, attempt, \
             ready_at, ready_since) VALUES {}",
            placeholders(self.dialect, chunk.len(), TASK_COLUMNS)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for t in chunk {
            let ready = (start && t.dependencies.is_empty()).then_some(now);
            q = q
                .bind(id)
                .bind(&t.task_id)
                .bind(t.position as i64)
                .bind(&t.agent_id)
                .bind(&t.agent_type)
                .bind(serde_json::to_string(&t.dependencies)?)
                .bind(serde_json::to_string(&t.dependents)?)
                .bind(t.input.to_string())
                .bind(serde_json::to_string(&t.retry_policy)?)
                .bind(t.timeout.map(|d| d.as_millis() as i64))
                .bind(t.allow_failure as i64)
                .bind(serde_json::Value::Object(t.metadata.clone()).to_string())
                .bind(TaskStatus::Pending.as_str())
                .bind(t.dependencies.len() as i64)
                .bind(0i64)
                .bind(ready)
                .bind(ready);
        }
        q.execute(&mut *tx).await?;
        Ok(())
    }
}

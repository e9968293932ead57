//! Reading a workflow's history: the list of versions and its state at any version, rebuilt from
//! the nearest snapshot plus the changes after it.

use std::collections::BTreeMap;

use super::columns::json;
use super::tx::{Transaction, WorkflowTx, WriteTx};
use super::{Result, Store, StoreError};
use crate::events::rfc3339;
use crate::lifecycle::TaskVersionState;
use crate::workflow::WorkflowStatus;
use serde::Serialize;
use serde_json::Value;

/// One version of a workflow.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub version: i64,
    /// RFC 3339 time of the change.
    pub at: String,
    /// Workflow status after the change.
    pub status: WorkflowStatus,
    /// What made the change (`created`, `claimed`, `completed`, `paused`, `rolled_back` ...).
    pub reason: String,
    /// Tasks the change touched.
    pub changed_tasks: usize,
}

/// The state of a workflow at one version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionState {
    pub workflow_id: String,
    pub version: i64,
    pub status: WorkflowStatus,
    /// Task states by task id.
    #[schema(value_type = Object)]
    pub tasks: BTreeMap<String, TaskVersionState>,
}

impl Store {
    /// Versions of a workflow, oldest first (at most `limit`, from `after` exclusive).
    pub async fn versions(&self, workflow_id: &str, after: i64, limit: i64) -> Result<Vec<VersionInfo>> {
        self.workflow_exists(workflow_id).await?;
        let sql = "SELECT version, at, status, reason, changes FROM workflow_versions WHERE workflow_id = $1 \
             AND version > $2 ORDER BY version LIMIT $3 + 0";
        let args = vec![workflow_id.into(), after.into(), limit.into()];
        self.rows(sql, args, |r| {
            let changes: serde_json::Map<String, Value> = json(r, "changes")?;
            Ok(VersionInfo {
                version: r.int("version")?,
                at: rfc3339(r.int("at")?),
                status: parse_status(&r.text("status")?)?,
                reason: r.text("reason")?,
                changed_tasks: changes.len(),
            })
        })
        .await
    }

    /// The state of a workflow at `version`.
    pub async fn state_at(&self, workflow_id: &str, version: i64) -> Result<VersionState> {
        let found = self.read(StateAt { workflow_id: workflow_id.to_string(), version }).await;
        if let Err(StoreError::VersionNotFound(..)) = found {
            self.workflow_exists(workflow_id).await?;
        }
        found
    }

    /// Fail with [`StoreError::WorkflowNotFound`] unless the workflow exists.
    pub(crate) async fn workflow_exists(&self, workflow_id: &str) -> Result<()> {
        let sql = "SELECT version FROM workflows WHERE workflow_id = $1";
        let found = self.row(sql, vec![workflow_id.into()], |r| r.int("version")).await?;
        found.map(|_| ()).ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))
    }
}

/// The read of [`Store::state_at`].
struct StateAt {
    workflow_id: String,
    version: i64,
}

impl Transaction for StateAt {
    type Output = VersionState;

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<VersionState> {
        state_at_in(tx, &self.workflow_id, self.version).await
    }
}

/// The state of a workflow at `version`: its nearest snapshot with the changes after it.
pub(crate) async fn state_at_in<T: WorkflowTx>(tx: &mut T, workflow_id: &str, version: i64) -> Result<VersionState> {
    let not_found = || StoreError::VersionNotFound(workflow_id.to_string(), version);
    let (base, state) = tx.snapshot_at(workflow_id, version).await?.ok_or_else(not_found)?;
    let state: Value = serde_json::from_str(&state)?;
    let mut status = parse_status(state["status"].as_str().unwrap_or(""))?;
    let mut tasks: BTreeMap<String, TaskVersionState> = serde_json::from_value(state["tasks"].clone())?;
    let mut last = base;
    for (v, s, changes) in tx.versions_between(workflow_id, base, version).await? {
        last = v;
        status = parse_status(&s)?;
        let changes: BTreeMap<String, TaskVersionState> = serde_json::from_str(&changes)?;
        tasks.extend(changes);
    }
    if last != version {
        return Err(not_found());
    }
    Ok(VersionState { workflow_id: workflow_id.to_string(), version, status, tasks })
}

pub(crate) fn parse_status(s: &str) -> Result<WorkflowStatus> {
    Ok(s.parse()?)
}

//! Reading workflows and tasks as they are now.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use utoipa::ToSchema;

use super::rows::json_opt;
use super::tx::StepTx;
use super::tx_any::AnyTx;
use super::versions::parse_status;
use super::{Result, Store, StoreError};
use crate::events::rfc3339;
use crate::workflow::LogLine;
use crate::workflow::{Budget, RetryPolicy, TaskStatus, Usage, WorkflowStatus};

/// A task as it is now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskState {
    pub task_id: String,
    pub agent_id: String,
    pub agent_type: String,
    pub dependencies: Vec<String>,
    pub status: TaskStatus,
    /// Attempts started so far.
    pub attempt: u32,
    #[schema(value_type = Object)]
    pub input: Value,
    pub retry_policy: RetryPolicy,
    /// Seconds per attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    pub allow_failure: bool,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Attempts with their plugin digest, error and log (only in the single-task view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptRecord>>,
}

/// One attempt of a task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub worker_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_digest: Option<String>,
    pub queue_time_ms: f64,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    #[schema(value_type = Vec<Object>)]
    pub log: Vec<LogLine>,
}

/// A workflow with its tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowState {
    pub workflow_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: WorkflowStatus,
    pub version: i64,
    pub max_parallel_tasks: u32,
    #[schema(value_type = Object)]
    pub variables: Value,
    #[schema(value_type = Object)]
    pub context: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Why the workflow is paused (`reason`: `requested`, `rolled_back` or `budget_exhausted`,
    /// the last with the `budget`, its `limit`, what was `used` and the `task_id` refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub pause_reason: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// What the workflow's attempts spent on outbound requests.
    pub usage: Usage,
    /// Number of tasks in each status.
    pub task_counts: BTreeMap<String, usize>,
    /// The tasks in submission order: all of them, or the first page when read through the API.
    pub tasks: Vec<TaskState>,
    /// More tasks follow: pass as `cursor` to `GET /v1/workflows/{id}/tasks` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_next_cursor: Option<String>,
}

/// A workflow in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowSummary {
    pub workflow_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: WorkflowStatus,
    pub version: i64,
    pub task_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// Filter of a workflow listing.
#[derive(Debug, Clone, Default)]
pub struct WorkflowFilter {
    pub status: Option<WorkflowStatus>,
    pub limit: i64,
    /// Continue after this workflow id (the previous page's `next_cursor`).
    pub cursor: Option<String>,
}

/// Which tasks of a workflow to read.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    /// At most this many (all when `None`).
    pub limit: Option<i64>,
    /// Continue after this task (the previous page's `next_cursor`: a position).
    pub cursor: Option<i64>,
}

/// A page of results.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

const TASK_COLUMNS: &str = "task_id, agent_id, agent_type, dependencies, status, attempt, input, retry_policy, \
    timeout_ms, allow_failure, metadata, output, error, started_at, finished_at";
/// Columns in [`TASK_COLUMNS`].
const TASK_COLUMN_COUNT: usize = 15;

fn task_from_row(r: &AnyRow) -> Result<TaskState> {
    let status: String = r.try_get(4)?;
    Ok(TaskState {
        task_id: r.try_get(0)?,
        agent_id: r.try_get(1)?,
        agent_type: r.try_get(2)?,
        dependencies: serde_json::from_str(&r.try_get::<String, _>(3)?)?,
        status: status.parse()?,
        attempt: r.try_get::<i64, _>(5)? as u32,
        input: serde_json::from_str(&r.try_get::<String, _>(6)?)?,
        retry_policy: serde_json::from_str(&r.try_get::<String, _>(7)?)?,
        timeout: r.try_get::<Option<i64>, _>(8)?.map(|ms| ms as f64 / 1000.0),
        allow_failure: r.try_get::<i64, _>(9)? != 0,
        metadata: serde_json::from_str(&r.try_get::<String, _>(10)?)?,
        output: json_opt(r.try_get(11)?),
        error: json_opt(r.try_get(12)?),
        started_at: r.try_get::<Option<i64>, _>(13)?.map(rfc3339),
        finished_at: r.try_get::<Option<i64>, _>(14)?.map(rfc3339),
        attempts: None,
    })
}

impl Store {
    /// A workflow with all its tasks, in submission order.
    pub async fn workflow(&self, workflow_id: &str) -> Result<WorkflowState> {
        self.workflow_with(workflow_id, &TaskFilter::default()).await
    }

    /// A workflow with the tasks `filter` picks; its `task_counts` count all tasks.
    pub async fn workflow_with(&self, workflow_id: &str, filter: &TaskFilter) -> Result<WorkflowState> {
        let r = sqlx::query(
            "SELECT workflow_id, name, status, version, max_parallel, variables, context, error, created_at, \
             updated_at, started_at, finished_at, pause_reason, budget, egress_requests, llm_tokens \
             FROM workflows WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))?;
        let tasks = self.tasks_of(workflow_id, filter).await?;
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM tasks WHERE workflow_id = $1 GROUP BY status")
                .bind(workflow_id)
                .fetch_all(&self.read)
                .await?;
        Ok(WorkflowState {
            workflow_id: r.try_get(0)?,
            name: r.try_get(1)?,
            status: parse_status(&r.try_get::<String, _>(2)?)?,
            version: r.try_get(3)?,
            max_parallel_tasks: r.try_get::<i64, _>(4)? as u32,
            variables: serde_json::from_str(&r.try_get::<String, _>(5)?)?,
            context: serde_json::from_str(&r.try_get::<String, _>(6)?)?,
            error: json_opt(r.try_get(7)?),
            created_at: rfc3339(r.try_get(8)?),
            updated_at: rfc3339(r.try_get(9)?),
            started_at: r.try_get::<Option<i64>, _>(10)?.map(rfc3339),
            finished_at: r.try_get::<Option<i64>, _>(11)?.map(rfc3339),
            pause_reason: json_opt(r.try_get(12)?),
            budget: r.try_get::<Option<String>, _>(13)?.map(|b| serde_json::from_str(&b)).transpose()?,
            usage: Usage {
                egress_requests: r.try_get::<i64, _>(14)? as u64,
                llm_tokens: r.try_get::<i64, _>(15)? as u64,
            },
            task_counts: counts.into_iter().map(|(status, n)| (status, n as usize)).collect(),
            tasks: tasks.items,
            tasks_next_cursor: tasks.next_cursor,
        })
    }

    /// Tasks of a workflow in submission order, as `filter` picks them (without their attempts).
    pub async fn tasks(&self, workflow_id: &str, filter: &TaskFilter) -> Result<Page<TaskState>> {
        self.workflow_exists(workflow_id).await?;
        self.tasks_of(workflow_id, filter).await
    }

    async fn tasks_of(&self, workflow_id: &str, filter: &TaskFilter) -> Result<Page<TaskState>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS}, position FROM tasks WHERE workflow_id = $1 AND position > $2 \
             AND ($3 = '' OR status = $3) ORDER BY position LIMIT $4"
        )))
        .bind(workflow_id)
        .bind(filter.cursor.unwrap_or(-1))
        .bind(filter.status.map(|s| s.as_str()).unwrap_or(""))
        .bind(filter.limit.map_or(i64::MAX, |l| l.saturating_add(1)))
        .fetch_all(&self.read)
        .await?;
        let mut items = rows.iter().map(task_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = match filter.limit {
            Some(limit) if rows.len() as i64 > limit => {
                let last: i64 = match limit {
                    0 => filter.cursor.unwrap_or(-1),
                    _ => rows[limit as usize - 1].try_get(TASK_COLUMN_COUNT)?,
                };
                items.truncate(limit as usize);
                Some(last.to_string())
            }
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    /// The status of a workflow.
    pub async fn workflow_status(&self, workflow_id: &str) -> Result<WorkflowStatus> {
        let s: Option<String> = sqlx::query_scalar("SELECT status FROM workflows WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_optional(&self.read)
            .await?;
        parse_status(&s.ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))?)
    }

    /// One task with all its attempts.
    pub async fn task(&self, workflow_id: &str, task_id: &str) -> Result<Option<TaskState>> {
        self.workflow_exists(workflow_id).await?;
        let Some(r) = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE workflow_id = $1 AND task_id = $2"
        )))
        .bind(workflow_id)
        .bind(task_id)
        .fetch_optional(&self.read)
        .await?
        else {
            return Ok(None);
        };
        let mut task = task_from_row(&r)?;
        let rows = sqlx::query(
            "SELECT attempt, worker_id, status, plugin_digest, queue_us, started_at, finished_at, error, log \
             FROM attempts WHERE workflow_id = $1 AND task_id = $2 ORDER BY attempt",
        )
        .bind(workflow_id)
        .bind(task_id)
        .fetch_all(&self.read)
        .await?;
        let mut attempts = Vec::with_capacity(rows.len());
        for r in rows {
            let started: i64 = r.try_get(5)?;
            let finished: Option<i64> = r.try_get(6)?;
            let log: Option<String> = r.try_get(8)?;
            attempts.push(AttemptRecord {
                attempt: r.try_get::<i64, _>(0)? as u32,
                worker_id: r.try_get(1)?,
                status: r.try_get(2)?,
                plugin_digest: r.try_get(3)?,
                queue_time_ms: r.try_get::<Option<i64>, _>(4)?.unwrap_or(0) as f64 / 1000.0,
                started_at: rfc3339(started),
                finished_at: finished.map(rfc3339),
                duration_ms: finished.map(|f| (f - started) as f64 / 1000.0),
                error: json_opt(r.try_get(7)?),
                log: log.map(|l| serde_json::from_str(&l)).transpose()?.unwrap_or_default(),
            });
        }
        task.attempts = Some(attempts);
        Ok(Some(task))
    }

    /// Workflows, newest first.
    pub async fn list_workflows(&self, filter: &WorkflowFilter) -> Result<Page<WorkflowSummary>> {
        let limit = filter.limit.clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT workflow_id, name, status, version, task_count, created_at, updated_at FROM workflows \
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR workflow_id < $2) ORDER BY workflow_id DESC LIMIT $3",
        )
        .bind(filter.status.map(|s| s.as_str()).unwrap_or(""))
        .bind(filter.cursor.clone().unwrap_or_default())
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let mut items = rows
            .iter()
            .map(|r| {
                Ok(WorkflowSummary {
                    workflow_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    status: parse_status(&r.try_get::<String, _>(2)?)?,
                    version: r.try_get(3)?,
                    task_count: r.try_get(4)?,
                    created_at: rfc3339(r.try_get(5)?),
                    updated_at: rfc3339(r.try_get(6)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|w| w.workflow_id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Results of the given tasks of a workflow (for `previous_results` and handoffs), by task id.
    pub async fn task_results(&self, workflow_id: &str, task_ids: &[String]) -> Result<Vec<TaskResultRow>> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(sqlite) = &self.sqlite {
            return sqlite.task_results(workflow_id, task_ids).await;
        }
        let mut conn = self.read.acquire().await?;
        AnyTx::new(&mut conn, self.dialect).task_results(workflow_id, task_ids).await
    }
}

/// A dependency's result, as the engine needs it to build a task's context.
#[derive(Debug, Clone)]
pub struct TaskResultRow {
    pub task_id: String,
    pub agent_id: String,
    pub agent_type: String,
    pub status: TaskStatus,
    /// JSON text.
    pub output: Option<String>,
    /// JSON text.
    pub error: Option<String>,
    pub execution_ms: Option<f64>,
}

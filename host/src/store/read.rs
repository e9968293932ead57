//! Reading workflows and tasks as they are now.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::columns::{json, Columns};
use super::rows::json_opt;
use super::tx::{Transaction, WriteTx};
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
    /// Ready to run, but no live worker serves its agent type: it waits for one (install its
    /// plugin, or start a host that has it). Absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub waiting_for_worker: bool,
    /// Ready to run: its dependencies are settled and no attempt holds it.
    #[serde(skip)]
    pub ready: bool,
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
    /// The plugin's peak linear memory during the attempt, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<i64>,
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
    /// Start at this position (the previous page's `next_cursor`: one past its last task).
    pub cursor: Option<i64>,
}

/// A page of results: the envelope of every listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page read with `LIMIT limit`: a full page may have a next one, which starts after the
    /// last item's `position`.
    pub fn limited(items: Vec<T>, limit: usize, position: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if items.len() >= limit { items.last().map(position) } else { None };
        Page { items, next_cursor }
    }

    /// The page of `items` (all there are, in any order) whose `key`s come after `cursor`, in
    /// key order, at most `limit`. The next page starts after the last key, whatever was added
    /// or removed in between.
    pub fn by_key(mut items: Vec<T>, key: impl Fn(&T) -> &str, cursor: Option<&str>, limit: usize) -> Page<T> {
        items.retain(|i| cursor.is_none_or(|c| key(i) > c));
        items.sort_by(|a, b| key(a).cmp(key(b)));
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more { items.last().map(|i| key(i).to_string()) } else { None };
        Page { items, next_cursor }
    }
}

const TASK_COLUMNS: &str = "task_id, agent_id, agent_type, dependencies, status, attempt, input, retry_policy, \
    timeout_ms, allow_failure, metadata, output, error, started_at, finished_at, ready_at";

fn task_from_row(r: &dyn Columns) -> Result<TaskState> {
    Ok(TaskState {
        task_id: r.text("task_id")?,
        agent_id: r.text("agent_id")?,
        agent_type: r.text("agent_type")?,
        dependencies: json(r, "dependencies")?,
        status: r.text("status")?.parse()?,
        attempt: r.int("attempt")? as u32,
        input: json(r, "input")?,
        retry_policy: json(r, "retry_policy")?,
        timeout: r.opt_int("timeout_ms")?.map(|ms| ms as f64 / 1000.0),
        allow_failure: r.flag("allow_failure")?,
        metadata: json(r, "metadata")?,
        output: json_opt(r.opt_text("output")?),
        error: json_opt(r.opt_text("error")?),
        started_at: r.opt_int("started_at")?.map(rfc3339),
        finished_at: r.opt_int("finished_at")?.map(rfc3339),
        attempts: None,
        waiting_for_worker: false,
        ready: r.opt_int("ready_at")?.is_some(),
    })
}

/// A workflow's own row, its tasks and counts still to be filled in.
fn workflow_from_row(r: &dyn Columns) -> Result<WorkflowState> {
    Ok(WorkflowState {
        workflow_id: r.text("workflow_id")?,
        name: r.opt_text("name")?,
        status: parse_status(&r.text("status")?)?,
        version: r.int("version")?,
        max_parallel_tasks: r.int("max_parallel")? as u32,
        variables: json(r, "variables")?,
        context: json(r, "context")?,
        error: json_opt(r.opt_text("error")?),
        created_at: rfc3339(r.int("created_at")?),
        updated_at: rfc3339(r.int("updated_at")?),
        started_at: r.opt_int("started_at")?.map(rfc3339),
        finished_at: r.opt_int("finished_at")?.map(rfc3339),
        pause_reason: json_opt(r.opt_text("pause_reason")?),
        budget: r.opt_text("budget")?.map(|b| serde_json::from_str(&b)).transpose()?,
        usage: Usage { egress_requests: r.int("egress_requests")? as u64, llm_tokens: r.int("llm_tokens")? as u64 },
        task_counts: BTreeMap::new(),
        tasks: Vec::new(),
        tasks_next_cursor: None,
    })
}

fn attempt_from_row(r: &dyn Columns) -> Result<AttemptRecord> {
    let started = r.int("started_at")?;
    let finished = r.opt_int("finished_at")?;
    Ok(AttemptRecord {
        attempt: r.int("attempt")? as u32,
        worker_id: r.text("worker_id")?,
        status: r.text("status")?,
        plugin_digest: r.opt_text("plugin_digest")?,
        queue_time_ms: r.opt_int("queue_us")?.unwrap_or(0) as f64 / 1000.0,
        started_at: rfc3339(started),
        finished_at: finished.map(rfc3339),
        duration_ms: finished.map(|f| (f - started) as f64 / 1000.0),
        error: json_opt(r.opt_text("error")?),
        log: r.opt_text("log")?.map(|l| serde_json::from_str(&l)).transpose()?.unwrap_or_default(),
        peak_memory_bytes: r.opt_int("peak_memory")?,
    })
}

fn summary_from_row(r: &dyn Columns) -> Result<WorkflowSummary> {
    Ok(WorkflowSummary {
        workflow_id: r.text("workflow_id")?,
        name: r.opt_text("name")?,
        status: parse_status(&r.text("status")?)?,
        version: r.int("version")?,
        task_count: r.int("task_count")?,
        created_at: rfc3339(r.int("created_at")?),
        updated_at: rfc3339(r.int("updated_at")?),
    })
}

impl Store {
    /// A workflow with all its tasks, in submission order.
    pub async fn workflow(&self, workflow_id: &str) -> Result<WorkflowState> {
        self.workflow_with(workflow_id, &TaskFilter::default()).await
    }

    /// A workflow with the tasks `filter` picks; its `task_counts` count all tasks.
    pub async fn workflow_with(&self, workflow_id: &str, filter: &TaskFilter) -> Result<WorkflowState> {
        let sql = "SELECT workflow_id, name, status, version, max_parallel, variables, context, error, created_at, \
             updated_at, started_at, finished_at, pause_reason, budget, egress_requests, llm_tokens \
             FROM workflows WHERE workflow_id = $1";
        let mut wf = self
            .row(sql, vec![workflow_id.into()], workflow_from_row)
            .await?
            .ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))?;
        let tasks = self.tasks_of(workflow_id, filter).await?;
        let counts = "SELECT status, COUNT(*) AS n FROM tasks WHERE workflow_id = $1 GROUP BY status";
        let counts = self.rows(counts, vec![workflow_id.into()], |r| Ok((r.text("status")?, r.int("n")? as usize)));
        wf.task_counts = counts.await?.into_iter().collect();
        (wf.tasks, wf.tasks_next_cursor) = (tasks.items, tasks.next_cursor);
        Ok(wf)
    }

    /// Tasks of a workflow in submission order, as `filter` picks them (without their attempts).
    pub async fn tasks(&self, workflow_id: &str, filter: &TaskFilter) -> Result<Page<TaskState>> {
        self.workflow_exists(workflow_id).await?;
        self.tasks_of(workflow_id, filter).await
    }

    async fn tasks_of(&self, workflow_id: &str, filter: &TaskFilter) -> Result<Page<TaskState>> {
        // `position >= 0` (always true) lets PostgreSQL use its paging index (see its migration).
        let sql = format!(
            "SELECT {TASK_COLUMNS}, position FROM tasks WHERE workflow_id = $1 AND position >= 0 AND position >= $2 \
             AND ($3 = '' OR status = $3) ORDER BY position LIMIT $4 + 0"
        );
        let args = vec![
            workflow_id.into(),
            filter.cursor.unwrap_or(0).into(),
            filter.status.map(|s| s.as_str()).unwrap_or("").into(),
            filter.limit.map_or(i64::MAX, |l| l.saturating_add(1)).into(),
        ];
        let rows = self.rows(&sql, args, |r| Ok((task_from_row(r)?, r.int("position")?))).await?;
        let next_cursor = match filter.limit {
            Some(limit) if rows.len() as i64 > limit => Some(match limit {
                0 => filter.cursor.unwrap_or(0),
                _ => rows[limit as usize - 1].1 + 1,
            }),
            _ => None,
        };
        let take = filter.limit.map_or(usize::MAX, |l| l as usize);
        let items = rows.into_iter().take(take).map(|(task, _)| task).collect();
        Ok(Page { items, next_cursor: next_cursor.map(|c| c.to_string()) })
    }

    /// The status of a workflow.
    pub async fn workflow_status(&self, workflow_id: &str) -> Result<WorkflowStatus> {
        let sql = "SELECT status FROM workflows WHERE workflow_id = $1";
        let status = self.row(sql, vec![workflow_id.into()], |r| r.text("status")).await?;
        parse_status(&status.ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))?)
    }

    /// One task with all its attempts.
    pub async fn task(&self, workflow_id: &str, task_id: &str) -> Result<Option<TaskState>> {
        self.workflow_exists(workflow_id).await?;
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE workflow_id = $1 AND task_id = $2");
        let Some(mut task) = self.row(&sql, vec![workflow_id.into(), task_id.into()], task_from_row).await? else {
            return Ok(None);
        };
        let sql = "SELECT attempt, worker_id, status, plugin_digest, queue_us, started_at, finished_at, error, log, \
             peak_memory FROM attempts WHERE workflow_id = $1 AND task_id = $2 ORDER BY attempt";
        task.attempts = Some(self.rows(sql, vec![workflow_id.into(), task_id.into()], attempt_from_row).await?);
        Ok(Some(task))
    }

    /// The W3C `traceparent` a workflow keeps for its attempts' spans (traces exported only).
    pub async fn traceparent(&self, workflow_id: &str) -> Result<Option<String>> {
        let sql = "SELECT traceparent FROM workflows WHERE workflow_id = $1";
        Ok(self.row(sql, vec![workflow_id.into()], |r| r.opt_text("traceparent")).await?.flatten())
    }

    /// Workflows, newest first.
    pub async fn list_workflows(&self, filter: &WorkflowFilter) -> Result<Page<WorkflowSummary>> {
        let limit = filter.limit.clamp(1, 1000);
        let sql = "SELECT workflow_id, name, status, version, task_count, created_at, updated_at FROM workflows \
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR workflow_id < $2) ORDER BY workflow_id DESC LIMIT $3 + 0";
        let args = vec![
            filter.status.map(|s| s.as_str()).unwrap_or("").into(),
            filter.cursor.clone().unwrap_or_default().into(),
            (limit + 1).into(),
        ];
        let mut items = self.rows(sql, args, summary_from_row).await?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|w| w.workflow_id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Results of the given tasks of a workflow (those that exist), in no set order.
    pub async fn task_results(&self, workflow_id: &str, task_ids: &[String]) -> Result<Vec<TaskResultRow>> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(TaskResults { workflow_id: workflow_id.to_string(), task_ids: task_ids.to_vec() }).await
    }
}

/// The read of [`Store::task_results`].
struct TaskResults {
    workflow_id: String,
    task_ids: Vec<String>,
}

impl Transaction for TaskResults {
    type Output = Vec<TaskResultRow>;

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Vec<TaskResultRow>> {
        tx.task_results(&self.workflow_id, &self.task_ids).await
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

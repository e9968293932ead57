//! The statements of a write transaction, as one port per database: what recording outcomes,
//! claiming and writing history ask of the database, named by what they do. The order of the
//! statements and what they mean is written once ([`super::outcome`], [`super::claim`],
//! [`super::rows`]); each database implements this trait with its own SQL: SQLite on a
//! connection's own thread ([`super::sqlite`]), PostgreSQL on sqlx's driver ([`super::postgres`]).
//!
//! On SQLite every method runs at once on the calling thread and its future is ready when first
//! polled, so a whole transaction runs in one hand-off to the writer's thread.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

pub use super::access::AccessTx;
pub use super::installs::InstallsTx;
use super::submit::Submitted;
use super::{Dialect, Result, TaskResultRow};
use crate::events::blocks::{Block, Content};
use crate::lifecycle::{Changes, Held, TaskShape, TaskVersionState, Unfinished, WorkflowView};
use crate::workflow::{Budget, TaskStatus, Usage, ValidTask, ValidWorkflow, WorkflowStatus};

/// The task columns that make a [`Held`], by name.
pub const HELD_COLUMNS: &str =
    "agent_id, agent_type, dependents, allow_failure, retry_policy, started_at, uncounted_attempts";

/// A completed attempt to record if its fence still holds.
pub struct Completion<'a> {
    pub workflow_id: &'a str,
    pub task_id: &'a str,
    pub attempt: u32,
    pub output: &'a str,
}

/// A ready task a claim found and locked.
#[derive(Debug)]
pub struct ReadyTask {
    pub workflow_id: String,
    pub task_id: String,
    /// Where the row is, on PostgreSQL (its `ctid`, valid while the lock is held): starting the
    /// task by it needs no plan over the workflow's rows, whose count the planner cannot know
    /// for a workflow newer than its statistics.
    pub row: Option<String>,
}

/// The ready tasks a claim found and locked, by workflow (in id order), each workflow with
/// as many slots taken as it has tasks here.
#[derive(Default)]
pub struct ReadySlots {
    pub workflows: Vec<(String, TakenSlots, Vec<ReadyTask>)>,
    /// More tasks were ready than the claim could take.
    pub more_ready: bool,
}

/// A workflow after a claim took slots: how many run now, its limit, and what its tasks share.
pub struct TakenSlots {
    pub running: i64,
    pub max_parallel: i64,
    pub variables: String,
    pub context: String,
    /// The budget, if any, and what the workflow had spent.
    pub budget: Option<(Budget, Usage)>,
}

/// A task a claim started, as its row reads after the update.
pub struct StartedRow {
    pub task_id: String,
    pub agent_id: String,
    pub agent_type: String,
    pub attempt: u32,
    pub input: String,
    pub dependencies: Vec<String>,
    /// The results of its dependencies (those that exist), in no set order.
    pub dependency_results: Vec<TaskResultRow>,
    pub timeout_ms: Option<i64>,
    pub metadata: String,
    pub ready_since: Option<i64>,
}

/// A workflow's counters after a transaction numbered its history.
#[derive(Clone, Copy)]
pub struct Numbered {
    /// The last version given.
    pub version: i64,
    /// The last event sequence number given.
    pub event_seq: i64,
    /// A snapshot is written every this many versions (0: never).
    pub snapshot_every: i64,
}

/// The attempt row a claim opens.
pub struct AttemptStart {
    pub workflow_id: String,
    pub task_id: Arc<str>,
    pub attempt: u32,
    pub worker_id: String,
    pub queue_us: i64,
    pub started_at: i64,
}

/// The end of an attempt, as its row records it.
pub struct AttemptClose {
    pub workflow_id: String,
    pub task_id: String,
    pub attempt: u32,
    pub status: &'static str,
    pub finished_at: i64,
    pub error: Option<String>,
    pub log: Option<String>,
    pub plugin_digest: Option<Arc<str>>,
    /// The `error_type` of `error`, for queries.
    pub error_type: Option<String>,
    /// The plugin's peak linear memory (bytes), when it ran.
    pub peak_memory: Option<i64>,
}

/// A version of a workflow.
pub struct VersionRow {
    pub workflow_id: String,
    pub version: i64,
    pub at: i64,
    pub status: WorkflowStatus,
    pub reason: &'static str,
    /// The task changes, as JSON.
    pub changes: String,
}

/// The rows a transaction adds at its end, written together.
#[derive(Default)]
pub struct NewRows {
    pub attempts_started: Vec<AttemptStart>,
    pub attempts_closed: Vec<AttemptClose>,
    pub versions: Vec<VersionRow>,
    pub blocks: Vec<Block>,
    /// Change notices for the other hosts sharing the database, sent on commit (SQLite, whose
    /// database one host owns, has no one to tell).
    pub notices: Vec<String>,
}

/// Every statement a write transaction may ask of its database: [`StepTx`], [`WorkflowTx`],
/// [`UpkeepTx`], [`AccessTx`] and [`InstallsTx`]. Rows are taken in a fixed order (tasks by key, then workflows by id) by the
/// callers, so that writers on PostgreSQL never deadlock.
pub trait WriteTx: StepTx + WorkflowTx + UpkeepTx + AccessTx + InstallsTx {}

impl<T: StepTx + WorkflowTx + UpkeepTx + AccessTx + InstallsTx> WriteTx for T {}

/// The statements of the engine's steps: recording outcomes, claiming, writing history.
#[allow(async_fn_in_trait)] // used through generics only, never as `dyn`
pub trait StepTx {
    /// The database, for the few rules that differ (which workflows a claim may lock).
    fn dialect(&self) -> Dialect;

    /// The results of the tasks `task_ids` of a workflow (those that exist), in no set order.
    async fn task_results(&mut self, workflow_id: &str, task_ids: &[String]) -> Result<Vec<TaskResultRow>>;

    /// Mark these attempts' tasks completed where the attempt still holds the task (running, same
    /// attempt). Returns, for those, (workflow id, task id, what recording the rest needs).
    async fn complete_tasks(&mut self, done: &[Completion<'_>], now: i64) -> Result<Vec<(String, String, Held)>>;

    /// What recording a failed attempt needs of its task, if the attempt still holds it.
    async fn held_task(&mut self, workflow_id: &str, task_id: &str, attempt: u32) -> Result<Option<Held>>;

    /// The task waits `ready_at` to run again, its lease released; `uncounted` when its retry
    /// policy does not count the attempt.
    async fn retry_task(
        &mut self,
        workflow_id: &str,
        task_id: &str,
        ready_at: i64,
        error: Option<&str>,
        uncounted: bool,
    ) -> Result<()>;

    /// The task failed for good.
    async fn fail_task(&mut self, workflow_id: &str, task_id: &str, error: Option<&str>, now: i64) -> Result<()>;

    /// Dependencies of these tasks settled (how many, per (workflow, task)); those with none
    /// left become ready at `now`.
    async fn settle_dependents(&mut self, settled: &BTreeMap<(String, String), i64>, now: i64) -> Result<()>;

    /// A workflow's status.
    async fn workflow_status(&mut self, workflow_id: &str) -> Result<WorkflowStatus>;

    /// A workflow's unfinished tasks (running, pending, retrying) in task id order, locked.
    async fn unfinished_tasks(&mut self, workflow_id: &str) -> Result<Vec<Unfinished>>;

    /// Put these tasks of a workflow into an end status, leases released.
    async fn end_tasks(&mut self, workflow_id: &str, tasks: &[(&str, TaskStatus)], now: i64) -> Result<()>;

    /// Close these running attempts (task id, attempt) of a workflow as cancelled.
    async fn cancel_attempts(&mut self, workflow_id: &str, attempts: &[(String, u32)], now: i64) -> Result<()>;

    /// Put a workflow into an end status; `error` replaces its error when given.
    async fn end_workflow(
        &mut self,
        workflow_id: &str,
        status: WorkflowStatus,
        error: Option<&Value>,
        now: i64,
    ) -> Result<()>;

    /// Give back `released` slots, count `settled` tasks and add `usage` to a workflow. Returns
    /// the tasks it has left to settle and its status.
    async fn release_slots(
        &mut self,
        workflow_id: &str,
        released: i64,
        settled: i64,
        usage: Usage,
    ) -> Result<(i64, WorkflowStatus)>;

    /// Add what a workflow's attempts spent to its usage.
    async fn add_usage(&mut self, workflow_id: &str, usage: Usage) -> Result<()>;

    /// Pause a workflow if it is running, with `reason`. Returns whether it paused.
    async fn pause_running(&mut self, workflow_id: &str, reason: &Value) -> Result<bool>;

    /// Ready tasks of running workflows with free slots (of `only` these workflows and of
    /// `agent_types`, when given), first ready first, at most `max`, locked until the end of the
    /// transaction; of each workflow they belong to, one slot taken per task (the workflow rows
    /// locked in id order).
    async fn take_ready(
        &mut self,
        now: i64,
        max: usize,
        only: Option<&[String]>,
        agent_types: Option<&[String]>,
    ) -> Result<ReadySlots>;

    /// Give back `n` slots a claim took but may not use.
    async fn give_back_slots(&mut self, workflow_id: &str, n: i64) -> Result<()>;

    /// Start these ready tasks of a workflow, as [`StepTx::take_ready`] returned them, under a
    /// lease as their next attempt. Returns the rows of those started, with the results of their
    /// dependencies, in submission order.
    async fn start_tasks(
        &mut self,
        workflow_id: &str,
        ready: &[ReadyTask],
        worker_id: &str,
        lease_expires: i64,
        now: i64,
    ) -> Result<Vec<StartedRow>>;

    /// Give a workflow `versions` more versions and `events` more event numbers. The new
    /// counters may be written only by [`StepTx::insert`], which every numbering is followed by.
    async fn number_history(&mut self, workflow_id: &str, versions: i64, events: i64, now: i64) -> Result<Numbered>;

    /// Every task's state, for a snapshot.
    async fn task_states(&mut self, workflow_id: &str) -> Result<Changes>;

    /// Store a snapshot (JSON) as `version`, unless there is one.
    async fn insert_snapshot(&mut self, workflow_id: &str, version: i64, state: &str) -> Result<()>;

    /// Write the rows and send the notices.
    async fn insert(&mut self, rows: NewRows) -> Result<()>;
}

/// The statements of submissions, budgets and controls.
#[allow(async_fn_in_trait)] // used through generics only, never as `dyn`
pub trait WorkflowTx {
    /// The workflow submitted earlier with this idempotency key, if any, and the fingerprint of
    /// its request (none for rows older than fingerprints). On PostgreSQL, submissions with the
    /// same key wait for each other from here to their commit, so only one inserts.
    async fn submitted_with(&mut self, key: &str) -> Result<Option<(Submitted, Option<String>)>>;

    /// Insert a submitted workflow's row with `status`, no version given yet.
    async fn insert_workflow(
        &mut self,
        workflow_id: &str,
        wf: &ValidWorkflow,
        status: WorkflowStatus,
        now: i64,
    ) -> Result<()>;

    /// Insert a workflow's tasks, pending; those without dependencies are ready at `now` when
    /// it starts.
    async fn insert_tasks(&mut self, workflow_id: &str, tasks: &[ValidTask], start: bool, now: i64) -> Result<()>;

    /// A workflow's status, budget (JSON) and what it has spent, if it exists.
    async fn budget_row(&mut self, workflow_id: &str) -> Result<Option<(WorkflowStatus, Option<String>, Usage)>>;

    /// Replace a workflow's budget (JSON; `None` removes it).
    async fn set_budget(&mut self, workflow_id: &str, budget: Option<&str>) -> Result<()>;

    /// What a control needs of a workflow, if it exists; its task rows, then its row, locked.
    async fn control_view(&mut self, workflow_id: &str) -> Result<Option<WorkflowView>>;

    /// Set a workflow's status and pause reason after a control; `started_at` when it starts.
    async fn set_status(
        &mut self,
        workflow_id: &str,
        status: WorkflowStatus,
        pause_reason: Option<&str>,
        started_at: Option<i64>,
    ) -> Result<()>;

    /// Pending tasks of a workflow whose dependencies have all settled become ready at `now`.
    async fn mark_roots_ready(&mut self, workflow_id: &str, now: i64) -> Result<()>;

    /// The latest snapshot at or before `version`: its version and its state (JSON).
    async fn snapshot_at(&mut self, workflow_id: &str, version: i64) -> Result<Option<(i64, String)>>;

    /// The versions after `after` up to `upto`, in order: version, status, task changes (JSON).
    async fn versions_between(
        &mut self,
        workflow_id: &str,
        after: i64,
        upto: i64,
    ) -> Result<Vec<(i64, String, String)>>;

    /// Every task's shape (dependencies, allow_failure), for a rollback.
    async fn task_shapes(&mut self, workflow_id: &str) -> Result<Vec<TaskShape>>;

    /// Set a task to `state`, waiting for `waiting` dependencies, neither ready nor leased.
    async fn restore_task(
        &mut self,
        workflow_id: &str,
        task_id: &str,
        state: &TaskVersionState,
        waiting: i64,
    ) -> Result<()>;

    /// A rolled-back workflow: nothing running, `remaining` tasks to settle, not finished.
    async fn restore_counters(&mut self, workflow_id: &str, remaining: i64) -> Result<()>;
}

/// A host worker's row as it registers.
pub struct WorkerRow<'a> {
    pub worker_id: &'a str,
    pub hostname: &'a str,
    pub pid: i64,
    pub now: i64,
    pub interval_ms: i64,
    /// The agent types it serves, with their digests (a JSON object).
    pub serves: &'a str,
}

/// The statements that keep the database in shape: workers, leases, event retention.
#[allow(async_fn_in_trait)] // used through generics only, never as `dyn`
pub trait UpkeepTx {
    /// Record a worker (or refresh it) as alive at `now`.
    async fn register_worker(&mut self, worker: &WorkerRow<'_>) -> Result<()>;

    /// A worker's heartbeat at `now`, with the agent types it serves now (a JSON object).
    async fn heartbeat(&mut self, worker_id: &str, now: i64, serves: &str) -> Result<()>;

    /// A worker stopped cleanly.
    async fn stop_worker(&mut self, worker_id: &str) -> Result<()>;

    /// Extend the leases a worker holds on running tasks to `until`. Returns how many.
    async fn renew_leases(&mut self, worker_id: &str, until: i64) -> Result<u64>;

    /// Delete the event blocks (and their agent index rows) wholly older than `cutoff`.
    /// Returns how many events they held.
    async fn delete_blocks_before(&mut self, cutoff: i64) -> Result<u64>;

    /// The blocks that begin before `cutoff` (and end after it): workflow, first seq, content.
    async fn blocks_straddling(&mut self, cutoff: i64) -> Result<Vec<(String, i64, Content)>>;

    /// Delete one block and its agent index rows.
    async fn delete_block(&mut self, workflow_id: &str, first_seq: i64) -> Result<()>;
}

/// The budget a workflow row holds (JSON), with what it has spent.
pub fn budget_of(budget: Option<&str>, egress_requests: i64, llm_tokens: i64) -> Result<Option<(Budget, Usage)>> {
    let Some(b) = budget else { return Ok(None) };
    let used = Usage { egress_requests: egress_requests as u64, llm_tokens: llm_tokens as u64 };
    Ok(Some((serde_json::from_str::<Budget>(b)?, used)))
}

/// A write transaction written once for every database: what it does, given its statements.
/// It owns what it needs, since on SQLite it runs on the writer's thread.
#[allow(async_fn_in_trait)] // used through generics only, never as `dyn`
pub trait Transaction: Send + 'static {
    type Output: Send + 'static;

    /// Run inside an open transaction; the caller commits when this returns `Ok`.
    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Self::Output>;
}

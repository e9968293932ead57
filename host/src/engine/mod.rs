//! The orchestration engine: claims ready tasks under leases, runs them in the sandbox, records
//! outcomes in batches, and wakes the next claims at once (no waves, no polling gaps).

mod budget;
mod heartbeat;
mod listener;
mod scheduler;
mod settings;
mod task;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use settings::Limits;

use crate::lifecycle::Control;
use crate::plugins::Sandbox;
use crate::store::{BudgetState, Claim, ControlOutcome, Store, StoreError, Submitted, TaskReset};
use crate::telemetry::Metrics;
use crate::workflow::{validate, Budget, ValidWorkflow, ValidationError, WorkflowSpec, WorkflowStatus};

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Id of this worker (default: hostname, pid and a random suffix).
    pub worker_id: Option<String>,
    /// Tasks this host runs at once, over all workflows.
    pub max_concurrent_tasks: usize,
    /// Most tasks claimed in one transaction.
    pub claim_batch: usize,
    /// Most outcomes recorded in one transaction.
    pub write_batch: usize,
    /// How long a claim holds a task without renewal.
    pub lease: Duration,
    /// Heartbeat interval of this worker (leases are renewed at the same pace).
    pub heartbeat_interval: Duration,
    /// Missed heartbeats after which a worker is FAILED and its leases are taken over.
    pub miss_threshold: u32,
    /// Per-attempt timeout of tasks that set none.
    pub default_timeout: Duration,
    /// This host is the only one on its database (SQLite): at start, every lease held by another
    /// worker id is from a previous run of this host and is taken over at once.
    pub exclusive: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            worker_id: None,
            max_concurrent_tasks: 64,
            claim_batch: 64,
            write_batch: 256,
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            miss_threshold: 3,
            default_timeout: Duration::from_secs(300),
            exclusive: true,
        }
    }
}

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change worth telling watchers about: new events or a new status of a workflow.
#[derive(Debug, Clone)]
pub struct Notice {
    pub workflow_id: String,
    /// The workflow's status may have changed (it may have ended or paused).
    pub status_changed: bool,
}

/// Handle on a running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sandbox: Arc<dyn Sandbox>,
    config: EngineConfig,
    worker_id: String,
    metrics: Arc<Metrics>,
    /// Wakes the scheduler: a task became ready, a slot freed, a workflow resumed.
    wake: Notify,
    /// Host-wide cap on running tasks.
    slots: Arc<Semaphore>,
    /// The caps (host-wide, per agent type) and the tasks running under them.
    caps: settings::Caps,
    /// Cancellation of the attempts running here, by (workflow id, task id), with the attempt.
    running: Mutex<HashMap<(String, String), (u32, CancellationToken)>>,
    /// Budgets of the workflows with attempts running here.
    ledgers: Arc<budget::Ledgers>,
    writer: mpsc::UnboundedSender<writer::Job>,
    notices: broadcast::Sender<Notice>,
    /// When the earliest known retry becomes due (µs).
    next_due: Mutex<Option<i64>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Engine {
    /// Start the engine on `store`, running tasks in `sandbox`: register this worker, take over
    /// lost attempts, and start scheduling every running workflow.
    pub async fn start(
        config: EngineConfig,
        store: Store,
        sandbox: Arc<dyn Sandbox>,
        metrics: Arc<Metrics>,
    ) -> Result<Engine, EngineError> {
        let worker_id = config.worker_id.clone().unwrap_or_else(default_worker_id);
        let serves = sandbox.served().unwrap_or_default();
        store.register_worker(&worker_id, &hostname(), config.heartbeat_interval, &serves).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (notices, _) = broadcast::channel(4096);
        let max = config.max_concurrent_tasks.max(1);
        let slots = Arc::new(Semaphore::new(max));
        let inner = Arc::new(Inner {
            caps: settings::Caps::new(slots.clone(), max),
            slots,
            store,
            sandbox,
            config,
            worker_id,
            metrics,
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            ledgers: Arc::default(),
            writer: tx,
            notices,
            next_due: Mutex::new(None),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let all_but = inner.config.exclusive.then_some(inner.worker_id.as_str());
        let lost = inner.store.reap_lost_attempts(&inner.worker_id, inner.config.miss_threshold, all_but).await?;
        if !lost.is_empty() {
            tracing::warn!(attempts = lost.len(), "took over attempts that were in flight when their worker stopped");
            let recorded = lost.iter().filter(|a| matches!(a, crate::store::Applied::Recorded { .. })).count();
            inner.metrics.attempts_lost(recorded);
        }
        *inner.next_due.lock().unwrap_or_else(|e| e.into_inner()) = inner.store.next_ready_at().await?;
        inner.tasks.spawn(writer::run(inner.clone(), rx));
        inner.tasks.spawn(scheduler::run(inner.clone()));
        inner.tasks.spawn(heartbeat::run(inner.clone()));
        if inner.store.dialect() == crate::store::Dialect::Postgres {
            inner.tasks.spawn(listener::run(inner.clone()));
        }
        tracing::info!(worker_id = %inner.worker_id, "engine started");
        Ok(Engine { inner })
    }

    /// The store the engine works on.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The time limit of an attempt of a task of `agent_type` that sets none of its own: the
    /// agent type's manifest's, else the host's default.
    pub fn attempt_timeout(&self, agent_type: &str) -> Duration {
        self.inner.sandbox.manifest_timeout(agent_type).unwrap_or(self.inner.config.default_timeout)
    }

    /// The id of this worker.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Validate and store a workflow; it starts at once unless it asks not to.
    pub async fn submit(&self, spec: WorkflowSpec) -> Result<Submitted, EngineError> {
        self.submit_traced(spec, None).await
    }

    /// [`Engine::submit`] in a `workflow` span, the child of the span `traceparent` names (a
    /// client's W3C header); when traces are exported, the workflow keeps its span's context and
    /// every attempt joins that trace.
    pub async fn submit_traced(&self, spec: WorkflowSpec, traceparent: Option<&str>) -> Result<Submitted, EngineError> {
        let span = tracing::info_span!(
            "workflow",
            workflow.name = spec.name.as_deref().unwrap_or(""),
            workflow.tasks = spec.tasks.len(),
            workflow.id = tracing::field::Empty
        );
        crate::telemetry::join(&span, traceparent);
        let kept = crate::telemetry::exporting().then(|| crate::telemetry::traceparent_of(&span)).flatten();
        let submitted = self.store_submission(spec, kept).instrument(span.clone()).await?;
        span.record("workflow.id", submitted.workflow_id.as_str());
        Ok(submitted)
    }

    async fn store_submission(
        &self,
        spec: WorkflowSpec,
        traceparent: Option<String>,
    ) -> Result<Submitted, EngineError> {
        // An agent type no executor here serves may be served by another live host.
        let sandbox = &self.inner.sandbox;
        let elsewhere = match spec.tasks.iter().any(|t| !sandbox.has_executor(&t.agent_type)) {
            true => self.inner.store.live_agent_types(self.inner.config.miss_threshold).await?,
            false => Default::default(),
        };
        let mut valid = validate(spec, |t| sandbox.has_executor(t) || elsewhere.contains(t))?;
        valid.traceparent = traceparent;
        crate::handoff::check_supplied(&valid)?;
        // The workflow's first tasks are claimed by its own transaction, in the slots free now.
        let mut permits = self.inner.free_slots(first_claim(&valid, self.inner.config.claim_batch));
        let claim =
            (!permits.is_empty() && !self.inner.shutdown.is_cancelled()).then(|| self.inner.claim(permits.len()));
        let (submitted, claimed) = self.inner.store.submit_and_claim(valid, claim).await?;
        if submitted.existing {
            return Ok(submitted);
        }
        self.inner.metrics.workflow_submitted();
        // The scheduler is needed only if the claim could not take every ready task.
        let wake = permits.is_empty() || claimed.more_ready || claimed.tasks.is_empty();
        scheduler::start(&self.inner, claimed.tasks, &mut permits);
        drop(permits);
        self.inner.notify(&submitted.workflow_id, false);
        if wake {
            self.inner.wake.notify_one();
        }
        Ok(submitted)
    }

    /// Pause, resume, cancel or roll back a workflow. Cancelled attempts running here are
    /// interrupted inside their sandbox.
    pub async fn control(&self, workflow_id: &str, op: Control) -> Result<ControlOutcome, StoreError> {
        let out = self.inner.store.control(workflow_id, op).await?;
        self.inner.interrupt(workflow_id, &out.cancelled_tasks);
        self.inner.notify(workflow_id, true);
        self.inner.wake.notify_one();
        Ok(out)
    }

    /// Reset a running task (see [`Store::reset_task`]): its attempt is interrupted if it runs
    /// here (elsewhere it runs on until it ends, and its result is refused), and the task runs again.
    pub async fn reset_task(
        &self,
        workflow_id: &str,
        task_id: &str,
        reason: &str,
    ) -> Result<Option<TaskReset>, StoreError> {
        let Some(reset) = self.inner.store.reset_task(workflow_id, task_id, reason).await? else { return Ok(None) };
        {
            let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
            let key = (workflow_id.to_string(), task_id.to_string());
            if let Some((_, token)) = running.get(&key).filter(|(a, _)| *a == reset.reset_attempt) {
                token.cancel();
            }
        }
        self.inner.notify(workflow_id, false);
        self.inner.wake.notify_one();
        Ok(Some(reset))
    }

    /// Replace a workflow's budget (see [`Store::set_budget`]); a paused workflow stays paused.
    pub async fn set_budget(&self, workflow_id: &str, budget: Budget) -> Result<BudgetState, StoreError> {
        let out = self.inner.store.set_budget(workflow_id, budget).await?;
        self.inner.notify(workflow_id, false);
        Ok(out)
    }

    /// Watch for changes of workflows (new events, new statuses).
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }

    /// Wait until a workflow reaches an end status (or `paused`), and return it.
    pub async fn wait_settled(&self, workflow_id: &str) -> Result<WorkflowStatus, StoreError> {
        let mut rx = self.subscribe();
        loop {
            let status = self.inner.store.workflow_status(workflow_id).await?;
            if status.is_terminal() || status == WorkflowStatus::Paused {
                return Ok(status);
            }
            // Another host may finish it: look again now and then even without a notice.
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    match rx.recv().await {
                        Ok(n) if n.workflow_id == workflow_id && n.status_changed => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
            .await;
        }
    }

    /// The limits in force on this host.
    pub fn limits(&self) -> Limits {
        self.inner.caps.limits()
    }

    /// Change this host's limits while it runs: the host-wide cap (at least 1) and caps per agent
    /// type (`None` removes one). Returns the limits now in force.
    pub fn set_limits(&self, max_concurrent_tasks: Option<usize>, per_type: &[(String, Option<usize>)]) -> Limits {
        if let Some(max) = max_concurrent_tasks {
            self.inner.caps.set_max(max.max(1));
        }
        for (agent_type, cap) in per_type {
            self.inner.caps.set_agent_type(agent_type, *cap);
        }
        self.inner.wake.notify_one();
        self.limits()
    }

    /// Tasks running on this host now.
    pub fn running_tasks(&self) -> usize {
        self.inner.running.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Stop claiming, interrupt nothing, wait for running attempts to be recorded, and stop.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.wake.notify_waiters();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        let _ = self.inner.store.stop_worker(&self.inner.worker_id).await;
    }
}

impl Inner {
    /// A claim of up to `max` tasks for this worker, of the agent types it serves.
    fn claim(&self, max: usize) -> Claim {
        let served = self.sandbox.served().map(|s| s.into_keys().collect());
        let (agent_types, max) = self.caps.narrow(served, max);
        Claim { worker_id: self.worker_id.as_str().into(), max, lease: self.config.lease, workflows: None, agent_types }
    }

    fn notify(&self, workflow_id: &str, status_changed: bool) {
        let _ = self.notices.send(Notice { workflow_id: workflow_id.to_string(), status_changed });
    }

    /// Interrupt the given attempts of a workflow if they run here.
    fn interrupt(&self, workflow_id: &str, task_ids: &[String]) {
        if task_ids.is_empty() {
            return;
        }
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for t in task_ids {
            if let Some((_, token)) = running.get(&(workflow_id.to_string(), t.clone())) {
                token.cancel();
            }
        }
    }

    /// Up to `n` free slots of this host, taken now (fewer if fewer are free).
    fn free_slots(&self, n: usize) -> Vec<OwnedSemaphorePermit> {
        std::iter::from_fn(|| self.slots.clone().try_acquire_owned().ok()).take(n).collect()
    }

    /// Remember that a retry becomes due at `at` (µs), and have the scheduler reckon its sleep again.
    fn due_at(&self, at: i64) {
        {
            let mut next = self.next_due.lock().unwrap_or_else(|e| e.into_inner());
            if next.is_none_or(|n| at < n) {
                *next = Some(at);
            }
        }
        self.wake.notify_one();
    }
}

/// How many tasks a submission's own claim may take: the tasks that are ready at once (those
/// with no dependencies), as many as the workflow lets run and one claim takes.
fn first_claim(wf: &ValidWorkflow, claim_batch: usize) -> usize {
    let ready = wf.tasks.iter().filter(|t| t.dependencies.is_empty()).count();
    if wf.start {
        ready.min(wf.max_parallel_tasks as usize).min(claim_batch)
    } else {
        0
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".to_string())
}

fn default_worker_id() -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}-{}", hostname(), std::process::id(), &suffix[..8])
}

#[cfg(test)]
mod tests;

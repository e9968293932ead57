//! [`WriteTx`] on the writer's own connection: each statement prepared once and run per row, at
//! once, on the writer's thread (a statement costs microseconds here, not a hand-off).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::events::blocks::Content;
use crate::lifecycle::{Changes, Held, TaskVersionState, Unfinished};
use crate::store::rows::json_opt;
use crate::store::tx::{
    budget_of, Completion, NewRows, Numbered, ReadySlots, ReadyTask, StartedRow, StepTx, TakenSlots, HELD_COLUMNS,
};
use crate::store::versions::parse_status;
use crate::store::{Dialect, Result, TaskResultRow};
use crate::workflow::{TaskStatus, Usage, WorkflowStatus};

/// The writer's open transaction.
pub(crate) struct SqliteTx<'c> {
    pub(crate) conn: &'c Connection,
}

/// The ready tasks a claim may take. `CROSS JOIN` keeps SQLite walking the ready index in order and stopping at the limit,
/// rather than reading every task of each running workflow. The limit is `?2 + 0`: SQLite
/// plans with the value of a bare `LIMIT ?`, so it would prepare the statement again on
/// every claim (about a sixth of a step's write transaction, measured with `perf`).
const READY_TASKS: &str = "SELECT t.workflow_id, t.task_id FROM tasks t CROSS JOIN workflows w \
     WHERE w.workflow_id = t.workflow_id AND t.ready_at IS NOT NULL AND t.ready_at <= ?1 \
     AND w.status = 'running' AND w.running < w.max_parallel \
     AND (?3 IS NULL OR t.agent_type IN (SELECT value FROM json_each(?3))) \
     ORDER BY t.ready_at, t.position LIMIT ?2 + 0";

impl SqliteTx<'_> {
    /// Ready tasks, as [`StepTx::take_ready`] finds them, at most `limit`.
    fn ready_tasks(
        &mut self,
        now: i64,
        limit: usize,
        only: Option<&[String]>,
        agent_types: Option<&[String]>,
    ) -> Result<Vec<ReadyTask>> {
        let mut select = self.conn.prepare_cached(READY_TASKS)?;
        let agent_types = agent_types.map(serde_json::to_string).transpose()?;
        // Only some workflows: read them all (-1 is no limit), keep theirs up to the limit.
        let mut rows = select.query((now, if only.is_some() { -1 } else { limit as i64 }, agent_types))?;
        let mut ready = Vec::new();
        while let Some(r) = rows.next()? {
            let workflow_id: String = r.get(0)?;
            if only.is_none_or(|w| w.contains(&workflow_id)) {
                ready.push(ReadyTask { workflow_id, task_id: r.get(1)?, row: None });
            }
            if ready.len() == limit {
                break;
            }
        }
        Ok(ready)
    }

    /// Take `k` slots of a workflow.
    fn take_slots(&mut self, workflow_id: &str, k: i64) -> Result<TakenSlots> {
        let mut update = self.conn.prepare_cached(
            "UPDATE workflows SET running = running + ?2 WHERE workflow_id = ?1 \
             RETURNING running, max_parallel, variables, context, budget, egress_requests, llm_tokens",
        )?;
        let (taken, budget) = update.query_row((workflow_id, k), |r| {
            let budget: (Option<String>, i64, i64) =
                (r.get("budget")?, r.get("egress_requests")?, r.get("llm_tokens")?);
            let taken = TakenSlots {
                running: r.get("running")?,
                max_parallel: r.get("max_parallel")?,
                variables: r.get("variables")?,
                context: r.get("context")?,
                budget: None,
            };
            Ok((taken, budget))
        })?;
        Ok(TakenSlots { budget: budget_of(budget.0.as_deref(), budget.1, budget.2)?, ..taken })
    }
}

/// The first `max` of `ready` (in ready order) by workflow, and whether there were more.
fn by_workflow(ready: Vec<ReadyTask>, max: usize) -> (BTreeMap<String, Vec<ReadyTask>>, bool) {
    let more_ready = ready.len() > max;
    let mut by_workflow: BTreeMap<String, Vec<ReadyTask>> = BTreeMap::new();
    for task in ready.into_iter().take(max) {
        by_workflow.entry(task.workflow_id.clone()).or_default().push(task);
    }
    (by_workflow, more_ready)
}

/// What recording an outcome needs of its task, from a row with [`HELD_COLUMNS`].
fn held(r: &Row) -> rusqlite::Result<Result<Held>> {
    let (dependents, policy): (String, String) = (r.get("dependents")?, r.get("retry_policy")?);
    let (agent_id, agent_type) = (r.get("agent_id")?, r.get("agent_type")?);
    let (allow_failure, first_started) = (r.get::<_, i64>("allow_failure")? != 0, r.get("started_at")?);
    let uncounted = r.get::<_, i64>("uncounted_attempts")? as u32;
    Ok((|| {
        Ok(Held {
            agent_id,
            agent_type,
            dependents: serde_json::from_str(&dependents)?,
            allow_failure,
            policy: serde_json::from_str(&policy)?,
            first_started,
            uncounted,
        })
    })())
}

impl StepTx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn task_results(&mut self, workflow_id: &str, task_ids: &[String]) -> Result<Vec<TaskResultRow>> {
        super::read::task_results(self.conn, workflow_id, task_ids)
    }

    async fn complete_tasks(&mut self, done: &[Completion<'_>], now: i64) -> Result<Vec<(String, String, Held)>> {
        let mut update = self.conn.prepare_cached(&format!(
            "UPDATE tasks SET status = 'completed', lease_owner = NULL, lease_expires = NULL, ready_at = NULL, \
             output = ?4, error = NULL, finished_at = ?5 \
             WHERE workflow_id = ?1 AND task_id = ?2 AND attempt = ?3 AND status = 'running' RETURNING {HELD_COLUMNS}"
        ))?;
        let mut out = Vec::with_capacity(done.len());
        for c in done {
            let row = (update.query_row((c.workflow_id, c.task_id, c.attempt, c.output, now), held)).optional()?;
            if let Some(h) = row {
                out.push((c.workflow_id.to_string(), c.task_id.to_string(), h?));
            }
        }
        Ok(out)
    }

    async fn held_task(&mut self, workflow_id: &str, task_id: &str, attempt: u32) -> Result<Option<Held>> {
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT {HELD_COLUMNS} FROM tasks \
             WHERE workflow_id = ?1 AND task_id = ?2 AND attempt = ?3 AND status = 'running'"
        ))?;
        select.query_row((workflow_id, task_id, attempt), held).optional()?.transpose()
    }

    async fn retry_task(
        &mut self,
        workflow_id: &str,
        task_id: &str,
        ready_at: i64,
        error: Option<&str>,
        uncounted: bool,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tasks SET status = 'retrying', lease_owner = NULL, lease_expires = NULL, \
                 ready_at = ?3, ready_since = ?3, error = ?4, uncounted_attempts = uncounted_attempts + ?5 \
                 WHERE workflow_id = ?1 AND task_id = ?2",
            )?
            .execute((workflow_id, task_id, ready_at, error, uncounted as i64))?;
        Ok(())
    }

    async fn fail_task(&mut self, workflow_id: &str, task_id: &str, error: Option<&str>, now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tasks SET status = 'failed', lease_owner = NULL, lease_expires = NULL, ready_at = NULL, \
                 output = NULL, error = ?3, finished_at = ?4 WHERE workflow_id = ?1 AND task_id = ?2",
            )?
            .execute((workflow_id, task_id, error, now))?;
        Ok(())
    }

    async fn settle_dependents(&mut self, settled: &BTreeMap<(String, String), i64>, now: i64) -> Result<()> {
        let mut update = self.conn.prepare_cached(
            "UPDATE tasks SET deps_remaining = deps_remaining - ?3, \
             ready_at = CASE WHEN deps_remaining = ?3 AND status = 'pending' THEN ?4 ELSE ready_at END, \
             ready_since = CASE WHEN deps_remaining = ?3 AND status = 'pending' THEN ?4 ELSE ready_since END \
             WHERE workflow_id = ?1 AND task_id = ?2",
        )?;
        for ((workflow_id, task_id), n) in settled {
            update.execute((workflow_id, task_id, n, now))?;
        }
        Ok(())
    }

    async fn workflow_status(&mut self, workflow_id: &str) -> Result<WorkflowStatus> {
        let mut select = self.conn.prepare_cached("SELECT status FROM workflows WHERE workflow_id = ?1")?;
        parse_status(&select.query_row([workflow_id], |r| r.get::<_, String>(0))?)
    }

    async fn unfinished_tasks(&mut self, workflow_id: &str) -> Result<Vec<Unfinished>> {
        let mut select = self.conn.prepare_cached(
            "SELECT task_id, agent_id, agent_type, status, attempt, error FROM tasks \
             WHERE workflow_id = ?1 AND status IN ('running', 'pending', 'retrying') ORDER BY task_id",
        )?;
        let rows = select.query_map([workflow_id], |r| {
            Ok((
                Unfinished {
                    task_id: r.get("task_id")?,
                    agent_id: r.get("agent_id")?,
                    agent_type: r.get("agent_type")?,
                    status: TaskStatus::Pending,
                    attempt: r.get("attempt")?,
                    error: json_opt(r.get("error")?),
                },
                r.get::<_, String>("status")?,
            ))
        })?;
        let mut unfinished = Vec::new();
        for row in rows {
            let (mut task, status) = row?;
            task.status = status.parse()?;
            unfinished.push(task);
        }
        Ok(unfinished)
    }

    async fn end_tasks(&mut self, workflow_id: &str, tasks: &[(&str, TaskStatus)], now: i64) -> Result<()> {
        let mut update = self.conn.prepare_cached(
            "UPDATE tasks SET status = ?3, lease_owner = NULL, lease_expires = NULL, ready_at = NULL, \
             finished_at = ?4 WHERE workflow_id = ?1 AND task_id = ?2",
        )?;
        for (task_id, status) in tasks {
            update.execute((workflow_id, task_id, status.as_str(), now))?;
        }
        Ok(())
    }

    async fn cancel_attempts(&mut self, workflow_id: &str, attempts: &[(String, u32)], now: i64) -> Result<()> {
        let mut update = self.conn.prepare_cached(
            "UPDATE attempts SET status = 'cancelled', finished_at = ?4 \
             WHERE workflow_id = ?1 AND task_id = ?2 AND attempt = ?3",
        )?;
        for (task_id, attempt) in attempts {
            update.execute((workflow_id, task_id, attempt, now))?;
        }
        Ok(())
    }

    async fn end_workflow(
        &mut self,
        workflow_id: &str,
        status: WorkflowStatus,
        error: Option<&Value>,
        now: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE workflows SET status = ?2, running = 0, finished_at = ?3, error = COALESCE(?4, error), \
                 pause_reason = NULL WHERE workflow_id = ?1",
            )?
            .execute((workflow_id, status.as_str(), now, error.map(|e| e.to_string())))?;
        Ok(())
    }

    async fn release_slots(
        &mut self,
        workflow_id: &str,
        released: i64,
        settled: i64,
        usage: Usage,
    ) -> Result<(i64, WorkflowStatus)> {
        let mut update = self.conn.prepare_cached(
            "UPDATE workflows SET running = running - ?2, remaining = remaining - ?3, \
             egress_requests = egress_requests + ?4, llm_tokens = llm_tokens + ?5 WHERE workflow_id = ?1 \
             RETURNING remaining, status",
        )?;
        let args = (workflow_id, released, settled, usage.egress_requests as i64, usage.llm_tokens as i64);
        let (remaining, status): (i64, String) = update.query_row(args, |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((remaining, parse_status(&status)?))
    }

    async fn add_usage(&mut self, workflow_id: &str, usage: Usage) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE workflows SET egress_requests = egress_requests + ?2, llm_tokens = llm_tokens + ?3 \
                 WHERE workflow_id = ?1",
            )?
            .execute((workflow_id, usage.egress_requests as i64, usage.llm_tokens as i64))?;
        Ok(())
    }

    async fn pause_running(&mut self, workflow_id: &str, reason: &Value) -> Result<bool> {
        let paused = self
            .conn
            .prepare_cached(
                "UPDATE workflows SET status = 'paused', pause_reason = ?2 WHERE workflow_id = ?1 AND status = 'running'",
            )?
            .execute((workflow_id, reason.to_string()))?;
        Ok(paused == 1)
    }

    async fn take_ready(
        &mut self,
        now: i64,
        max: usize,
        only: Option<&[String]>,
        agent_types: Option<&[String]>,
    ) -> Result<ReadySlots> {
        // One more is read, to know whether more were ready.
        let (by_workflow, more_ready) = by_workflow(self.ready_tasks(now, max + 1, only, agent_types)?, max);
        let mut workflows = Vec::with_capacity(by_workflow.len());
        for (workflow_id, ready) in by_workflow {
            let slots = self.take_slots(&workflow_id, ready.len() as i64)?;
            workflows.push((workflow_id, slots, ready));
        }
        Ok(ReadySlots { workflows, more_ready })
    }

    async fn give_back_slots(&mut self, workflow_id: &str, n: i64) -> Result<()> {
        let mut update =
            self.conn.prepare_cached("UPDATE workflows SET running = running - ?2 WHERE workflow_id = ?1")?;
        update.execute((workflow_id, n))?;
        Ok(())
    }

    async fn start_tasks(
        &mut self,
        workflow_id: &str,
        ready: &[ReadyTask],
        worker_id: &str,
        lease_expires: i64,
        now: i64,
    ) -> Result<Vec<StartedRow>> {
        let mut update = self.conn.prepare_cached(
            "UPDATE tasks SET status = 'running', attempt = attempt + 1, ready_at = NULL, lease_owner = ?3, \
             lease_expires = ?4, started_at = COALESCE(started_at, ?5) \
             WHERE workflow_id = ?1 AND task_id = ?2 AND ready_at IS NOT NULL \
             RETURNING task_id, agent_id, agent_type, attempt, input, dependencies, timeout_ms, metadata, \
             ready_since, position",
        )?;
        let mut started = Vec::with_capacity(ready.len());
        for task in ready {
            let args = (workflow_id, &task.task_id, worker_id, lease_expires, now);
            let row = update.query_row(args, |r| {
                let row = StartedRow {
                    task_id: r.get("task_id")?,
                    agent_id: r.get("agent_id")?,
                    agent_type: r.get("agent_type")?,
                    attempt: r.get("attempt")?,
                    input: r.get("input")?,
                    dependencies: Vec::new(),
                    dependency_results: Vec::new(),
                    timeout_ms: r.get("timeout_ms")?,
                    metadata: r.get("metadata")?,
                    ready_since: r.get("ready_since")?,
                };
                Ok((r.get::<_, i64>("position")?, r.get::<_, String>("dependencies")?, row))
            });
            if let Some((position, dependencies, mut row)) = row.optional()? {
                row.dependencies = serde_json::from_str(&dependencies)?;
                if !row.dependencies.is_empty() {
                    row.dependency_results = super::read::task_results(self.conn, workflow_id, &row.dependencies)?;
                }
                started.push((position, row));
            }
        }
        started.sort_by_key(|(position, _)| *position);
        Ok(started.into_iter().map(|(_, r)| r).collect())
    }

    async fn number_history(&mut self, workflow_id: &str, versions: i64, events: i64, now: i64) -> Result<Numbered> {
        let mut update = self.conn.prepare_cached(
            "UPDATE workflows SET version = version + ?2, event_seq = event_seq + ?3, updated_at = ?4 \
             WHERE workflow_id = ?1 RETURNING version, event_seq, snapshot_every",
        )?;
        Ok(update.query_row((workflow_id, versions, events, now), |r| {
            Ok(Numbered { version: r.get(0)?, event_seq: r.get(1)?, snapshot_every: r.get(2)? })
        })?)
    }

    async fn task_states(&mut self, workflow_id: &str) -> Result<Changes> {
        let mut select = self
            .conn
            .prepare_cached("SELECT task_id, status, attempt, output, error FROM tasks WHERE workflow_id = ?1")?;
        let rows = select.query_map([workflow_id], |r| {
            let status: String = r.get("status")?;
            let state = TaskVersionState {
                status: TaskStatus::Pending,
                attempt: r.get("attempt")?,
                output: json_opt(r.get("output")?),
                error: json_opt(r.get("error")?),
            };
            Ok((r.get::<_, String>("task_id")?, status, state))
        })?;
        let mut tasks = Changes::new();
        for row in rows {
            let (task_id, status, mut state) = row?;
            state.status = status.parse()?;
            tasks.insert(task_id, state);
        }
        Ok(tasks)
    }

    async fn insert_snapshot(&mut self, workflow_id: &str, version: i64, state: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO workflow_snapshots (workflow_id, version, state) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (workflow_id, version) DO NOTHING",
            )?
            .execute((workflow_id, version, state))?;
        Ok(())
    }

    async fn insert(&mut self, rows: NewRows) -> Result<()> {
        let conn = self.conn;
        let mut started = conn.prepare_cached(
            "INSERT INTO attempts (workflow_id, task_id, attempt, worker_id, status, queue_us, started_at) \
             VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6)",
        )?;
        for a in &rows.attempts_started {
            started.execute((&a.workflow_id, &*a.task_id, a.attempt, &a.worker_id, a.queue_us, a.started_at))?;
        }
        let mut closed = conn.prepare_cached(
            "INSERT INTO attempts (workflow_id, task_id, attempt, worker_id, status, started_at, finished_at, error, \
             log, plugin_digest, error_type, peak_memory) VALUES (?1, ?2, ?3, '', ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (workflow_id, task_id, attempt) DO UPDATE SET status = excluded.status, \
             finished_at = excluded.finished_at, error = excluded.error, log = excluded.log, \
             plugin_digest = excluded.plugin_digest, error_type = excluded.error_type, \
             peak_memory = excluded.peak_memory",
        )?;
        for a in &rows.attempts_closed {
            let digest = a.plugin_digest.as_deref();
            closed.execute((
                &a.workflow_id,
                &a.task_id,
                a.attempt,
                a.status,
                a.finished_at,
                &a.error,
                &a.log,
                digest,
                &a.error_type,
                a.peak_memory,
            ))?;
        }
        let mut version = conn.prepare_cached(
            "INSERT INTO workflow_versions (workflow_id, version, at, status, reason, changes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for v in &rows.versions {
            version.execute((&v.workflow_id, v.version, v.at, v.status.as_str(), v.reason, &v.changes))?;
        }
        let mut block = conn.prepare_cached(
            "INSERT INTO event_blocks (workflow_id, first_seq, last_seq, first_ts, last_ts, event_count, events, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut agent = conn.prepare_cached(
            "INSERT INTO event_agents (agent_id, first_ts, workflow_id, first_seq) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for b in &rows.blocks {
            let (text, bytes) = match &b.content {
                Content::Legacy(text) => (Some(text.as_str()), None),
                Content::Encoded(bytes) => (None, Some(bytes.as_slice())),
            };
            block.execute((&b.workflow_id, b.first_seq, b.last_seq, b.first_ts, b.last_ts, b.count, text, bytes))?;
            for (agent_id, ts) in &b.agents {
                agent.execute((agent_id, ts, &b.workflow_id, b.first_seq))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus};

    #[test]
    fn claiming_again_does_not_prepare_the_ready_query_again() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE workflows (workflow_id TEXT PRIMARY KEY, status TEXT, running INT, max_parallel INT);
             CREATE TABLE tasks (workflow_id TEXT, task_id TEXT, agent_type TEXT, ready_at INT, position INT);
             CREATE INDEX tasks_ready ON tasks (ready_at, position) WHERE ready_at IS NOT NULL;
             INSERT INTO workflows VALUES ('w', 'running', 0, 4);
             INSERT INTO tasks VALUES ('w', 't', 'echo', 5, 0), ('w', 'u', 'fib', 6, 1);",
        )
        .unwrap();
        let cases =
            [(10, 2, None, vec!["t", "u"]), (11, 3, Some(r#"["echo"]"#), vec!["t"]), (12, 65, Some("[]"), vec![])];
        for (now, limit, agent_types, expected) in cases {
            let mut select = conn.prepare_cached(super::READY_TASKS).unwrap();
            let rows = select.query_map((now, limit, agent_types), |r| r.get(1)).unwrap();
            let ids: Vec<String> = rows.map(Result::unwrap).collect();
            assert_eq!(ids, expected, "agent types {agent_types:?}");
            assert_eq!(select.get_status(StatementStatus::RePrepare), 0, "prepared again with limit {limit}");
        }
    }
}

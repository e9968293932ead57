//! Recording the outcome of an attempt: if its fence still holds, one transaction (shared by a
//! batch of outcomes) stores the result, appends the events, bumps the version, makes dependents
//! ready and settles the workflow.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::claim::{Claim, Claimed};
use super::inserts::{add, Inserts};
use super::rows::{json_opt, History};
use super::{Dialect, Result, Store};
use crate::clock::now_us;
use crate::events::NewEvent;
use crate::lifecycle::{
    self, AttemptEnded, AttemptResult, Changes, Held, Outcome, Stop, Stopped, TaskUpdate, Unfinished,
};
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

/// The columns [`held_from_row`] reads, from index `at` on.
const HELD_COLUMNS: &str =
    "agent_id, agent_type, dependents, allow_failure, retry_policy, started_at, uncounted_attempts";

fn held_from_row(row: &AnyRow, at: usize) -> Result<Held> {
    Ok(Held {
        agent_id: row.try_get(at)?,
        agent_type: row.try_get(at + 1)?,
        dependents: serde_json::from_str(&row.try_get::<String, _>(at + 2)?)?,
        allow_failure: row.try_get::<i64, _>(at + 3)? != 0,
        policy: serde_json::from_str(&row.try_get::<String, _>(at + 4)?)?,
        first_started: row.try_get(at + 5)?,
        uncounted: row.try_get::<i64, _>(at + 6)? as u32,
    })
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

/// The end of an attempt, as its row records it.
struct AttemptClose {
    workflow_id: String,
    task_id: String,
    attempt: u32,
    status: &'static str,
    finished_at: i64,
    error: Option<String>,
    log: Option<String>,
    plugin_digest: Option<Arc<str>>,
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
        claim: Option<Claim<'_>>,
    ) -> Result<(Vec<Applied>, Claimed)> {
        let mut tx = self.write.begin().await?;
        let mut applied = Vec::with_capacity(outcomes.len());
        let mut batch = Batch::default();
        let mut completed = self.complete_fenced(&mut tx, outcomes).await?;
        for o in outcomes {
            if !o.usage.is_zero() {
                // Spent even when the attempt no longer holds its task.
                batch.counters(&o.workflow_id).usage.add(o.usage);
            }
            let held = completed.remove(&(o.workflow_id.as_str(), o.task_id.as_str()));
            let a = self.record_one(&mut tx, o, held, &mut batch).await?;
            if a != Applied::Fenced {
                let c = batch.counters(&o.workflow_id);
                c.last = applied.len();
            }
            applied.push(a);
        }
        self.settle_dependents(&mut tx, &batch.settled).await?;
        let mut inserts = Inserts::new(self.dialect);
        close_attempts(&mut inserts, batch.attempts)?;
        let mut history = batch.history;
        self.settle_workflows(&mut tx, &batch.workflows, &mut history, &mut applied).await?;
        // On PostgreSQL, claim only from the workflows whose rows this transaction already holds:
        // taking other workflow rows now could deadlock with another host's writer.
        let held: Vec<String> = batch.workflows.iter().filter(|(_, c)| !c.failed).map(|(id, _)| id.clone()).collect();
        let claim = claim.map(|c| match self.dialect {
            Dialect::Postgres => Claim { workflows: Some(&held), ..c },
            Dialect::Sqlite => c,
        });
        let claimed = match claim {
            Some(c) if c.max > 0 => self.claim_in(&mut tx, &c, &mut history, &mut inserts).await?,
            _ => Claimed::default(),
        };
        let flushed = history.flush(&mut tx, inserts, self.events_enabled()).await?;
        super::rows::notify_hosts(&mut tx, self.dialect, &self.origin, changed(outcomes, &applied)).await?;
        tx.commit().await?;
        self.count_events(flushed.events);
        Ok((applied, claimed))
    }

    /// Per workflow of the batch, one statement gives back the slots, counts the settled tasks
    /// and adds the spending; a workflow with nothing left ends `completed`.
    async fn settle_workflows(
        &self,
        tx: &mut AnyConnection,
        workflows: &BTreeMap<String, Counters>,
        history: &mut History<'_>,
        applied: &mut [Applied],
    ) -> Result<()> {
        let now = now_us();
        // Workflow rows are taken in id order, as claims take them, so writers never deadlock.
        for (workflow_id, c) in workflows {
            if c.failed {
                add_usage(&mut *tx, workflow_id, c.usage).await?;
                continue;
            }
            if let Some((task_id, exhausted)) = &c.exhausted {
                pause_for_budget(&mut *tx, workflow_id, task_id, exhausted, history).await?;
            }
            let row = sqlx::query(
                "UPDATE workflows SET running = running - $2, remaining = remaining - $3, \
             egress_requests = egress_requests + $4, llm_tokens = llm_tokens + $5 WHERE workflow_id = $1 \
             RETURNING remaining, status",
            )
            .bind(workflow_id)
            .bind(c.released)
            .bind(c.settled)
            .bind(c.usage.egress_requests as i64)
            .bind(c.usage.llm_tokens as i64)
            .fetch_one(&mut *tx)
            .await?;
            let remaining: i64 = row.try_get(0)?;
            let status = super::versions::parse_status(&row.try_get::<String, _>(1)?)?;
            history.fill_status(workflow_id, status);
            if lifecycle::completes(c.settled, remaining, status) {
                self.end_workflow(&mut *tx, workflow_id, WorkflowStatus::Completed, None, now).await?;
                history.set_last_status(workflow_id, WorkflowStatus::Completed);
                history.events(workflow_id, vec![lifecycle::workflow_completed()]);
                if let Applied::Recorded { workflow_finished, .. } = &mut applied[c.last] {
                    *workflow_finished = Some(WorkflowStatus::Completed);
                }
            }
        }
        Ok(())
    }

    /// Record every completed attempt of the batch whose fence still holds, by one statement per
    /// few hundred outcomes. Returns what recording the rest needs, by (workflow id, task id).
    async fn complete_fenced<'o>(
        &self,
        conn: &mut AnyConnection,
        outcomes: &'o [Outcome],
    ) -> Result<HashMap<(&'o str, &'o str), Held>> {
        let mut done: Vec<(&Outcome, &String)> = outcomes
            .iter()
            .filter_map(|o| match &o.result {
                AttemptResult::Completed(output) => Some((o, output)),
                AttemptResult::Failed(_) => None,
            })
            .collect();
        // Task rows are taken in key order, as control operations take them.
        done.sort_by(|a, b| (&a.0.workflow_id, &a.0.task_id).cmp(&(&b.0.workflow_id, &b.0.task_id)));
        let by_key: HashMap<(&str, &str), &Outcome> =
            done.iter().map(|(o, _)| ((o.workflow_id.as_str(), o.task_id.as_str()), *o)).collect();
        let mut held = HashMap::with_capacity(done.len());
        let now = now_us();
        for chunk in done.chunks(400) {
            // Padded with null rows, which match no task (see `bucket`).
            let rows = super::inserts::bucket(self.dialect, chunk.len());
            let values = super::inserts::placeholders(self.dialect, rows, 5);
            let sql = match self.dialect {
                // Task rows are locked in key order first, as control operations lock them.
                Dialect::Postgres => format!(
                    "WITH o (wf, tid, att, out, fin) AS (VALUES {values}), \
                     l AS MATERIALIZED (SELECT t.workflow_id, t.task_id FROM tasks t JOIN o \
                     ON t.workflow_id = o.wf AND t.task_id = o.tid ORDER BY 1, 2 FOR UPDATE OF t) \
                     UPDATE tasks SET status = 'completed', lease_owner = NULL, lease_expires = NULL, \
                     ready_at = NULL, output = o.out, error = NULL, finished_at = o.fin FROM o JOIN l \
                     ON l.workflow_id = o.wf AND l.task_id = o.tid \
                     WHERE tasks.workflow_id = o.wf AND tasks.task_id = o.tid AND attempt = o.att \
                     AND status = 'running' RETURNING tasks.workflow_id, tasks.task_id, {HELD_COLUMNS}"
                ),
                Dialect::Sqlite => format!(
                    "WITH o (wf, tid, att, out, fin) AS (VALUES {values}) \
                     UPDATE tasks SET status = 'completed', lease_owner = NULL, lease_expires = NULL, \
                     ready_at = NULL, output = o.out, error = NULL, finished_at = o.fin FROM o \
                     WHERE workflow_id = o.wf AND task_id = o.tid AND attempt = o.att AND status = 'running' \
                     RETURNING tasks.workflow_id, tasks.task_id, {HELD_COLUMNS}"
                ),
            };
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (o, output) in chunk {
                q = q.bind(&o.workflow_id).bind(&o.task_id).bind(o.attempt as i64).bind(*output).bind(now);
            }
            for _ in 0..(rows - chunk.len()) * 5 {
                q = q.bind(None::<i64>);
            }
            for row in q.fetch_all(&mut *conn).await? {
                let (wf, task): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                if let Some(o) = by_key.get(&(wf.as_str(), task.as_str())) {
                    held.insert((o.workflow_id.as_str(), o.task_id.as_str()), held_from_row(&row, 2)?);
                }
            }
        }
        Ok(held)
    }

    /// Record one outcome. A completed attempt was already written by [`Store::complete_fenced`]
    /// (`held` is what it returned, `None` when fenced off); a failed one is checked here.
    async fn record_one<'o>(
        &self,
        conn: &mut AnyConnection,
        o: &'o Outcome,
        held: Option<Held>,
        batch: &mut Batch<'o>,
    ) -> Result<Applied> {
        let held = match &o.result {
            AttemptResult::Completed(_) => held,
            AttemptResult::Failed(_) => self.held_for_failure(conn, o).await?,
        };
        let Some(held) = held else {
            return Ok(Applied::Fenced);
        };
        // The attempt's own events come first; then those of what recording it does.
        batch.history.borrowed_events(&o.workflow_id, &o.events);
        let now = now_us();
        let end = lifecycle::attempt_ended(o, &held, now, self.events_enabled());
        self.update_task(conn, o, &end, now).await?;
        batch.attempts.push(AttemptClose {
            workflow_id: o.workflow_id.clone(),
            task_id: o.task_id.clone(),
            attempt: o.attempt,
            status: end.attempt_status(),
            finished_at: now,
            error: end.error.as_ref().map(|e| e.to_string()),
            log: (!o.log.is_empty()).then(|| serde_json::to_string(&o.log)).transpose()?,
            plugin_digest: o.plugin_digest.clone(),
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
            cancelled = self.fail_workflow(conn, o, end.error.as_ref(), &mut changes, &mut events, batch).await?;
            finished = Some(WorkflowStatus::Failed);
            batch.history.version(&o.workflow_id, WorkflowStatus::Failed, task_status.as_str(), changes);
        } else {
            batch.history.version_same_status(&o.workflow_id, task_status.as_str(), changes);
        }
        batch.history.events(&o.workflow_id, events);
        Ok(Applied::Recorded { task_status, workflow_finished: finished, cancelled, retry_at })
    }

    /// What recording a failed attempt needs of its task, if the attempt still holds it.
    async fn held_for_failure(&self, conn: &mut AnyConnection, o: &Outcome) -> Result<Option<Held>> {
        let lock = if self.dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM tasks \
             WHERE workflow_id = $1 AND task_id = $2 AND attempt = $3 AND status = 'running'{lock}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&o.workflow_id)
            .bind(&o.task_id)
            .bind(o.attempt as i64)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| held_from_row(&r, 0)).transpose()
    }

    /// Write a failed attempt's task change (a completed one was written with its fence check).
    async fn update_task(&self, conn: &mut AnyConnection, o: &Outcome, end: &AttemptEnded, now: i64) -> Result<()> {
        let error = end.error.as_ref().map(|e| e.to_string());
        let q = match end.update {
            TaskUpdate::Completed => return Ok(()),
            TaskUpdate::Retrying { ready_at, uncounted } => sqlx::query(
                "UPDATE tasks SET status = 'retrying', lease_owner = NULL, lease_expires = NULL, \
                 ready_at = $3, ready_since = $3, error = $4, uncounted_attempts = uncounted_attempts + $5 \
                 WHERE workflow_id = $1 AND task_id = $2",
            )
            .bind(&o.workflow_id)
            .bind(&o.task_id)
            .bind(ready_at)
            .bind(error)
            .bind(uncounted as i64),
            TaskUpdate::Failed => sqlx::query(
                "UPDATE tasks SET status = 'failed', lease_owner = NULL, lease_expires = NULL, ready_at = NULL, \
                 output = NULL, error = $3, finished_at = $4 WHERE workflow_id = $1 AND task_id = $2",
            )
            .bind(&o.workflow_id)
            .bind(&o.task_id)
            .bind(error)
            .bind(now),
        };
        q.execute(&mut *conn).await?;
        Ok(())
    }

    /// The task of `o` failed its workflow: stop the rest and end it. Returns the tasks whose
    /// running attempts were cancelled.
    async fn fail_workflow(
        &self,
        conn: &mut AnyConnection,
        o: &Outcome,
        error: Option<&Value>,
        changes: &mut Changes,
        events: &mut Vec<NewEvent>,
        batch: &mut Batch<'_>,
    ) -> Result<Vec<String>> {
        let before: String = sqlx::query_scalar("SELECT status FROM workflows WHERE workflow_id = $1")
            .bind(&o.workflow_id)
            .fetch_one(&mut *conn)
            .await?;
        batch.counters(&o.workflow_id).failed = true;
        batch.history.fill_status(&o.workflow_id, super::versions::parse_status(&before)?);
        let stopped = self.stop_remaining(conn, &o.workflow_id, Stop::Failed).await?;
        let cancelled = stopped.cancelled_tasks();
        changes.extend(stopped.changes);
        events.extend(stopped.events);
        let (reason, event) = lifecycle::workflow_failed(&o.task_id, error, &cancelled);
        self.end_workflow(conn, &o.workflow_id, WorkflowStatus::Failed, Some(&reason), now_us()).await?;
        events.push(event);
        Ok(cancelled)
    }

    /// Dependencies of these tasks settled (how many, per task); those with none left become ready.
    async fn settle_dependents(
        &self,
        conn: &mut AnyConnection,
        settled: &BTreeMap<(String, String), i64>,
    ) -> Result<()> {
        let now = now_us();
        let rows: Vec<_> = settled.iter().collect();
        for chunk in rows.chunks(400) {
            // Padded with null rows, which match no task (see `bucket`).
            let padded = super::inserts::bucket(self.dialect, chunk.len());
            let sql = format!(
                "WITH d (wf, tid, n, at) AS (VALUES {}) UPDATE tasks SET deps_remaining = deps_remaining - d.n, \
                 ready_at = CASE WHEN deps_remaining = d.n AND status = 'pending' THEN d.at ELSE ready_at END, \
                 ready_since = CASE WHEN deps_remaining = d.n AND status = 'pending' THEN d.at ELSE ready_since END \
                 FROM d WHERE workflow_id = d.wf AND task_id = d.tid",
                super::inserts::placeholders(self.dialect, padded, 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for ((wf, task), n) in chunk {
                q = q.bind(wf).bind(task).bind(**n).bind(now);
            }
            for _ in 0..(padded - chunk.len()) * 4 {
                q = q.bind(None::<i64>);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Stop every unfinished task of a workflow, as [`lifecycle::stop`] says.
    pub(crate) async fn stop_remaining(
        &self,
        conn: &mut AnyConnection,
        workflow_id: &str,
        why: Stop,
    ) -> Result<Stopped> {
        let lock = if self.dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!(
            "SELECT task_id, agent_id, agent_type, status, attempt, error FROM tasks \
             WHERE workflow_id = $1 AND status IN ('running', 'pending', 'retrying') ORDER BY task_id{lock}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(workflow_id).fetch_all(&mut *conn).await?;
        let mut unfinished = Vec::with_capacity(rows.len());
        for r in rows {
            unfinished.push(Unfinished {
                task_id: r.try_get(0)?,
                agent_id: r.try_get(1)?,
                agent_type: r.try_get(2)?,
                status: r.try_get::<String, _>(3)?.parse()?,
                attempt: r.try_get::<i64, _>(4)? as u32,
                error: json_opt(r.try_get(5)?),
            });
        }
        let stopped = lifecycle::stop(unfinished, why);
        let now = now_us();
        let ended: Vec<(&str, TaskStatus)> = (stopped.cancelled.iter())
            .map(|(t, _)| (t.as_str(), TaskStatus::Cancelled))
            .chain(stopped.not_started.iter().map(|t| (t.as_str(), stopped.not_started_status)))
            .collect();
        self.end_tasks(conn, workflow_id, &ended, now).await?;
        self.cancel_attempts(conn, workflow_id, &stopped.cancelled, now).await?;
        Ok(stopped)
    }

    /// Put these tasks of a workflow into an end status, leases released.
    async fn end_tasks(
        &self,
        conn: &mut AnyConnection,
        workflow_id: &str,
        tasks: &[(&str, TaskStatus)],
        now: i64,
    ) -> Result<()> {
        for chunk in tasks.chunks(400) {
            // Padded with null rows, which match no task (see `bucket`).
            let padded = super::inserts::bucket(self.dialect, chunk.len());
            let sql = format!(
                "WITH e (wf, tid, st, at) AS (VALUES {}) UPDATE tasks SET status = e.st, lease_owner = NULL, \
                 lease_expires = NULL, ready_at = NULL, finished_at = e.at FROM e \
                 WHERE workflow_id = e.wf AND task_id = e.tid",
                super::inserts::placeholders(self.dialect, padded, 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (task, status) in chunk {
                q = q.bind(workflow_id).bind(*task).bind(status.as_str()).bind(now);
            }
            for _ in 0..(padded - chunk.len()) * 4 {
                q = q.bind(None::<i64>);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Close these running attempts of a workflow as cancelled.
    async fn cancel_attempts(
        &self,
        conn: &mut AnyConnection,
        workflow_id: &str,
        attempts: &[(String, u32)],
        now: i64,
    ) -> Result<()> {
        for (task_id, attempt) in attempts {
            sqlx::query(
                "UPDATE attempts SET status = 'cancelled', finished_at = $4 \
                 WHERE workflow_id = $1 AND task_id = $2 AND attempt = $3",
            )
            .bind(workflow_id)
            .bind(task_id)
            .bind(*attempt as i64)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Put a workflow into an end status.
    pub(crate) async fn end_workflow(
        &self,
        conn: &mut AnyConnection,
        workflow_id: &str,
        status: WorkflowStatus,
        error: Option<&Value>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE workflows SET status = $2, running = 0, finished_at = $3, error = COALESCE($4, error), \
             pause_reason = NULL WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(status.as_str())
        .bind(now)
        .bind(error.map(|e| e.to_string()))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Add what a workflow's attempts spent to its usage.
async fn add_usage(conn: &mut AnyConnection, workflow_id: &str, usage: Usage) -> Result<()> {
    if !usage.is_zero() {
        sqlx::query(
            "UPDATE workflows SET egress_requests = egress_requests + $2, llm_tokens = llm_tokens + $3 \
             WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(usage.egress_requests as i64)
        .bind(usage.llm_tokens as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Pause a running workflow whose budget refused a request of `task_id`, with the reason in its
/// state (`pause_reason`) and in its `workflow_paused` event.
async fn pause_for_budget(
    conn: &mut AnyConnection,
    workflow_id: &str,
    task_id: &str,
    exhausted: &Exhausted,
    history: &mut History<'_>,
) -> Result<()> {
    let (reason, event) = lifecycle::budget_paused(task_id, exhausted);
    let paused = sqlx::query(
        "UPDATE workflows SET status = 'paused', pause_reason = $2 WHERE workflow_id = $1 AND status = 'running'",
    )
    .bind(workflow_id)
    .bind(reason.to_string())
    .execute(&mut *conn)
    .await?;
    if paused.rows_affected() == 1 {
        history.version(workflow_id, WorkflowStatus::Paused, "budget_exhausted", Changes::new());
        history.events(workflow_id, vec![event]);
    }
    Ok(())
}

/// Close the recorded attempts: a multi-row upsert, sent with the transaction's last INSERTs.
fn close_attempts(inserts: &mut Inserts, rows: Vec<AttemptClose>) -> Result<()> {
    let target = "attempts (workflow_id, task_id, attempt, worker_id, status, started_at, finished_at, error, log, \
                  plugin_digest)";
    let then = " ON CONFLICT (workflow_id, task_id, attempt) DO UPDATE SET status = excluded.status, \
                finished_at = excluded.finished_at, error = excluded.error, log = excluded.log, \
                plugin_digest = excluded.plugin_digest";
    inserts.rows_then(target, 10, rows, then, |args, a| {
        add(args, a.workflow_id)?;
        add(args, a.task_id)?;
        add(args, a.attempt as i64)?;
        add(args, "")?;
        add(args, a.status)?;
        add(args, a.finished_at)?;
        add(args, a.finished_at)?;
        add(args, a.error)?;
        add(args, a.log)?;
        add(args, a.plugin_digest.map(|d| d.to_string()))
    })
}

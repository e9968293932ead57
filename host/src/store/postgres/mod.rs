//! PostgreSQL on sqlx's native driver: [`PgTx`] runs the statements of a write transaction
//! ([`StepTx`] here, [`super::tx::WorkflowTx`] in [`workflows`], [`super::tx::UpkeepTx`] in
//! [`upkeep`]), many rows in one statement (one array per column), since each statement is a
//! round trip; [`steps`] runs write transactions, [`read`] the store's reads. Rows are locked
//! in key order (tasks, then workflows), so that hosts writing at once wait for each other
//! instead of deadlocking.

mod access;
mod inserts;
mod installs;
mod read;
mod steps;
mod upkeep;
mod workflows;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::rows::json_opt;
use super::tx::{
    budget_of, Completion, NewRows, Numbered, ReadySlots, ReadyTask, StartedRow, StepTx, TakenSlots, HELD_COLUMNS,
};
use super::versions::parse_status;
use super::{Dialect, Result, TaskResultRow};
use crate::lifecycle::{Changes, Held, TaskVersionState, Unfinished};
use crate::workflow::{TaskStatus, Usage, WorkflowStatus};

pub(crate) use read::{read_only, rows, Pool};
pub(crate) use steps::{step, transact, Kept, IDLE_BEFORE_PING};

/// How a write transaction begins. Its statements reach rows by key (primary key, a workflow's
/// ready index, a locked row's `ctid`), so the planner is kept from whole-table and bitmap scans:
/// its estimates lag behind a queue table (a workflow newer than the statistics counts as a row
/// or two, and a cached plan keeps the table's size from when it was made), and with them it
/// chose to scan every task of the table, or read and sort every ready task of a 10,000-task
/// workflow, on each claim. With those plans ruled out, and the paging index usable only by the
/// paging read (migration 0014), a statement has one good plan whatever the table holds, so each
/// prepared statement is planned once (a generic plan): planning it again at every execution
/// cost 0.15-0.5 ms for each of a step's larger statements.
pub(crate) const BEGIN_WRITE: &str = "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
     SET LOCAL plan_cache_mode = force_generic_plan";

/// An open transaction.
pub(crate) struct PgTx<'c> {
    pub(crate) conn: &'c mut PgConnection,
    /// The history counters of the workflow rows this transaction updated (so holds locked), as
    /// their last statement returned them and numbering moved them on since: numbering a
    /// workflow's history then needs no statement of its own, and the new counters are written
    /// with the transaction's rows ([`StepTx::insert`]).
    counters: BTreeMap<String, Counters>,
}

/// A locked workflow's history counters, and when numbering moved them (not yet written).
struct Counters {
    numbered: Numbered,
    moved_at: Option<i64>,
}

impl<'c> PgTx<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection) -> Self {
        PgTx { conn, counters: BTreeMap::new() }
    }

    /// Remember a locked workflow's counters, as a statement that updated its row returned
    /// them, unless numbering here already moved them on.
    fn locked(&mut self, workflow_id: &str, numbered: Numbered) {
        self.counters.entry(workflow_id.to_string()).or_insert(Counters { numbered, moved_at: None });
    }

    /// The counters numbering moved and has not written, with when.
    fn moved_counters(&mut self) -> Vec<(String, Numbered, i64)> {
        let moved = self.counters.iter_mut().filter_map(|(id, c)| Some((id.clone(), c.numbered, c.moved_at.take()?)));
        moved.collect()
    }
}

/// The history counters among a workflow row's columns, from `at` on: version, event_seq,
/// snapshot_every.
fn numbered_from(row: &PgRow, at: usize) -> Result<Numbered> {
    Ok(Numbered { version: row.try_get(at)?, event_seq: row.try_get(at + 1)?, snapshot_every: row.try_get(at + 2)? })
}

/// A workflow's slots after a claim took some, from the row's columns from `at` on.
fn taken_slots(row: &PgRow, at: usize) -> Result<TakenSlots> {
    Ok(TakenSlots {
        running: row.try_get(at)?,
        max_parallel: row.try_get(at + 1)?,
        variables: row.try_get(at + 2)?,
        context: row.try_get(at + 3)?,
        budget: budget_of(row.try_get(at + 4)?, row.try_get(at + 5)?, row.try_get(at + 6)?)?,
    })
}

fn held_from_row(row: &PgRow, at: usize) -> Result<Held> {
    Ok(Held {
        agent_id: row.try_get(at)?,
        agent_type: row.try_get(at + 1)?,
        dependents: serde_json::from_str(&row.try_get::<String, _>(at + 2)?)?,
        allow_failure: row.try_get(at + 3)?,
        policy: serde_json::from_str(&row.try_get::<String, _>(at + 4)?)?,
        first_started: row.try_get(at + 5)?,
        uncounted: row.try_get::<i64, _>(at + 6)? as u32,
    })
}

impl StepTx for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn task_results(&mut self, workflow_id: &str, task_ids: &[String]) -> Result<Vec<TaskResultRow>> {
        let mut out = Vec::with_capacity(task_ids.len());
        for chunk in task_ids.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT task_id, agent_id, agent_type, status, output, error, started_at, finished_at FROM tasks \
                 WHERE workflow_id = $1 AND task_id IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(workflow_id);
            for t in chunk {
                q = q.bind(t);
            }
            for r in q.fetch_all(&mut *self.conn).await? {
                let status: String = r.try_get(3)?;
                let (started, finished): (Option<i64>, Option<i64>) = (r.try_get(6)?, r.try_get(7)?);
                out.push(TaskResultRow {
                    task_id: r.try_get(0)?,
                    agent_id: r.try_get(1)?,
                    agent_type: r.try_get(2)?,
                    status: status.parse()?,
                    output: r.try_get(4)?,
                    error: r.try_get(5)?,
                    execution_ms: started.zip(finished).map(|(s, f)| (f - s) as f64 / 1000.0),
                });
            }
        }
        Ok(out)
    }

    async fn complete_tasks(&mut self, done: &[Completion<'_>], now: i64) -> Result<Vec<(String, String, Held)>> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        // Task rows are locked in key order first, as control operations lock them.
        let sql = format!(
            "WITH o AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[]) AS o (wf, tid, att, out)), \
             l AS MATERIALIZED (SELECT t.workflow_id, t.task_id FROM tasks t JOIN o \
             ON t.workflow_id = o.wf AND t.task_id = o.tid ORDER BY 1, 2 FOR UPDATE OF t) \
             UPDATE tasks SET status = 'completed', lease_owner = NULL, lease_expires = NULL, \
             ready_at = NULL, output = o.out, error = NULL, finished_at = $5 FROM o JOIN l \
             ON l.workflow_id = o.wf AND l.task_id = o.tid \
             WHERE tasks.workflow_id = o.wf AND tasks.task_id = o.tid AND attempt = o.att \
             AND status = 'running' RETURNING tasks.workflow_id, tasks.task_id, {HELD_COLUMNS}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(done.iter().map(|c| c.workflow_id).collect::<Vec<_>>())
            .bind(done.iter().map(|c| c.task_id).collect::<Vec<_>>())
            .bind(done.iter().map(|c| c.attempt as i64).collect::<Vec<_>>())
            .bind(done.iter().map(|c| c.output).collect::<Vec<_>>())
            .bind(now)
            .fetch_all(&mut *self.conn)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, held_from_row(r, 2)?))).collect()
    }

    async fn held_task(&mut self, workflow_id: &str, task_id: &str, attempt: u32) -> Result<Option<Held>> {
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM tasks \
             WHERE workflow_id = $1 AND task_id = $2 AND attempt = $3 AND status = 'running' FOR UPDATE"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(workflow_id)
            .bind(task_id)
            .bind(attempt as i64)
            .fetch_optional(&mut *self.conn)
            .await?;
        row.map(|r| held_from_row(&r, 0)).transpose()
    }

    async fn retry_task(
        &mut self,
        workflow_id: &str,
        task_id: &str,
        ready_at: i64,
        error: Option<&str>,
        uncounted: bool,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET status = 'retrying', lease_owner = NULL, lease_expires = NULL, \
             ready_at = $3, ready_since = $3, error = $4, uncounted_attempts = uncounted_attempts + $5 \
             WHERE workflow_id = $1 AND task_id = $2",
        )
        .bind(workflow_id)
        .bind(task_id)
        .bind(ready_at)
        .bind(error)
        .bind(uncounted as i64)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn fail_task(&mut self, workflow_id: &str, task_id: &str, error: Option<&str>, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET status = 'failed', lease_owner = NULL, lease_expires = NULL, ready_at = NULL, \
             output = NULL, error = $3, finished_at = $4 WHERE workflow_id = $1 AND task_id = $2",
        )
        .bind(workflow_id)
        .bind(task_id)
        .bind(error)
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn settle_dependents(&mut self, settled: &BTreeMap<(String, String), i64>, now: i64) -> Result<()> {
        if settled.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH d AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) AS d (wf, tid, n)) \
             UPDATE tasks SET deps_remaining = deps_remaining - d.n, \
             ready_at = CASE WHEN deps_remaining = d.n AND status = 'pending' THEN $4 ELSE ready_at END, \
             ready_since = CASE WHEN deps_remaining = d.n AND status = 'pending' THEN $4 ELSE ready_since END \
             FROM d WHERE workflow_id = d.wf AND task_id = d.tid",
        )
        .bind(settled.keys().map(|(wf, _)| wf.as_str()).collect::<Vec<_>>())
        .bind(settled.keys().map(|(_, task)| task.as_str()).collect::<Vec<_>>())
        .bind(settled.values().copied().collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn workflow_status(&mut self, workflow_id: &str) -> Result<WorkflowStatus> {
        let status: String = sqlx::query_scalar("SELECT status FROM workflows WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_one(&mut *self.conn)
            .await?;
        parse_status(&status)
    }

    async fn unfinished_tasks(&mut self, workflow_id: &str) -> Result<Vec<Unfinished>> {
        let sql = "SELECT task_id, agent_id, agent_type, status, attempt, error FROM tasks \
             WHERE workflow_id = $1 AND status IN ('running', 'pending', 'retrying') ORDER BY task_id FOR UPDATE";
        let rows = sqlx::query(sql).bind(workflow_id).fetch_all(&mut *self.conn).await?;
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
        Ok(unfinished)
    }

    async fn end_tasks(&mut self, workflow_id: &str, tasks: &[(&str, TaskStatus)], now: i64) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH e AS (SELECT * FROM unnest($2::text[], $3::text[]) AS e (tid, st)) UPDATE tasks SET status = e.st, \
             lease_owner = NULL, lease_expires = NULL, ready_at = NULL, finished_at = $4 FROM e \
             WHERE workflow_id = $1 AND task_id = e.tid",
        )
        .bind(workflow_id)
        .bind(tasks.iter().map(|(task, _)| *task).collect::<Vec<_>>())
        .bind(tasks.iter().map(|(_, status)| status.as_str()).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn cancel_attempts(&mut self, workflow_id: &str, attempts: &[(String, u32)], now: i64) -> Result<()> {
        for (task_id, attempt) in attempts {
            sqlx::query(
                "UPDATE attempts SET status = 'cancelled', finished_at = $4 \
                 WHERE workflow_id = $1 AND task_id = $2 AND attempt = $3",
            )
            .bind(workflow_id)
            .bind(task_id)
            .bind(*attempt as i64)
            .bind(now)
            .execute(&mut *self.conn)
            .await?;
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
        sqlx::query(
            "UPDATE workflows SET status = $2, running = 0, finished_at = $3, error = COALESCE($4, error), \
             pause_reason = NULL WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(status.as_str())
        .bind(now)
        .bind(error.map(|e| e.to_string()))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn release_slots(
        &mut self,
        workflow_id: &str,
        released: i64,
        settled: i64,
        usage: Usage,
    ) -> Result<(i64, WorkflowStatus)> {
        let row = sqlx::query(
            "UPDATE workflows SET running = running - $2, remaining = remaining - $3, \
             egress_requests = egress_requests + $4, llm_tokens = llm_tokens + $5 WHERE workflow_id = $1 \
             RETURNING remaining, status, version, event_seq, snapshot_every",
        )
        .bind(workflow_id)
        .bind(released)
        .bind(settled)
        .bind(usage.egress_requests as i64)
        .bind(usage.llm_tokens as i64)
        .fetch_one(&mut *self.conn)
        .await?;
        self.locked(workflow_id, numbered_from(&row, 2)?);
        Ok((row.try_get(0)?, parse_status(&row.try_get::<String, _>(1)?)?))
    }

    async fn add_usage(&mut self, workflow_id: &str, usage: Usage) -> Result<()> {
        sqlx::query(
            "UPDATE workflows SET egress_requests = egress_requests + $2, llm_tokens = llm_tokens + $3 \
             WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(usage.egress_requests as i64)
        .bind(usage.llm_tokens as i64)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn pause_running(&mut self, workflow_id: &str, reason: &Value) -> Result<bool> {
        let paused = sqlx::query(
            "UPDATE workflows SET status = 'paused', pause_reason = $2 WHERE workflow_id = $1 AND status = 'running'",
        )
        .bind(workflow_id)
        .bind(reason.to_string())
        .execute(&mut *self.conn)
        .await?;
        Ok(paused.rows_affected() == 1)
    }

    async fn take_ready(
        &mut self,
        now: i64,
        max: usize,
        only: Option<&[String]>,
        agent_types: Option<&[String]>,
    ) -> Result<ReadySlots> {
        let only_sql = match only {
            Some(w) => format!(
                " AND w.workflow_id IN ({})",
                (0..w.len()).map(|i| format!("${}", i + 4)).collect::<Vec<_>>().join(", ")
            ),
            None => String::new(),
        };
        // Each running workflow with free slots gives its first ready tasks, read in order from
        // its own ready index: the cost follows the slots, not the tasks waiting. One more than
        // `max` is read, to know whether more were ready; the slots of the first `max` are
        // taken in the same round trip, their workflow rows locked in id order.
        let sql = format!(
            "WITH r AS MATERIALIZED (SELECT t.workflow_id, t.task_id, t.ctid, \
             row_number() OVER (ORDER BY t.ready_at, t.position) AS n FROM workflows w CROSS JOIN LATERAL ( \
             SELECT r.workflow_id, r.task_id, r.ready_at, r.position, r.ctid FROM tasks r \
             WHERE r.workflow_id = w.workflow_id AND r.ready_at IS NOT NULL AND r.ready_at <= $1 \
             AND ($3::text[] IS NULL OR r.agent_type = ANY($3)) \
             ORDER BY r.ready_at, r.position LIMIT GREATEST(LEAST(w.max_parallel - w.running, $2 + 1), 0) \
             FOR UPDATE SKIP LOCKED) t \
             WHERE w.status = 'running' AND w.running < w.max_parallel{only_sql} \
             ORDER BY t.ready_at, t.position LIMIT $2 + 1), \
             k AS (SELECT workflow_id, count(*) AS k FROM r WHERE n <= $2 GROUP BY workflow_id), \
             l AS MATERIALIZED (SELECT w.workflow_id FROM workflows w JOIN k USING (workflow_id) \
             ORDER BY 1 FOR UPDATE OF w), \
             s AS (UPDATE workflows w SET running = w.running + k.k FROM k JOIN l USING (workflow_id) \
             WHERE w.workflow_id = k.workflow_id RETURNING w.workflow_id, w.running, w.max_parallel, \
             w.variables, w.context, w.budget, w.egress_requests, w.llm_tokens, w.version, w.event_seq, \
             w.snapshot_every) \
             SELECT r.workflow_id, r.task_id, r.ctid::text, s.running, s.max_parallel, s.variables, s.context, \
             s.budget, s.egress_requests, s.llm_tokens, s.version, s.event_seq, s.snapshot_every \
             FROM r LEFT JOIN s USING (workflow_id) ORDER BY r.n"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(max as i64).bind(agent_types);
        for w in only.unwrap_or_default() {
            q = q.bind(w);
        }
        let rows = q.fetch_all(&mut *self.conn).await?;
        let more_ready = rows.len() > max;
        let mut by_workflow: BTreeMap<String, (TakenSlots, Vec<ReadyTask>)> = BTreeMap::new();
        for r in rows.iter().take(max) {
            let task = ReadyTask { workflow_id: r.try_get(0)?, task_id: r.try_get(1)?, row: r.try_get(2)? };
            let entry = match by_workflow.entry(task.workflow_id.clone()) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    self.locked(&task.workflow_id, numbered_from(r, 10)?);
                    e.insert((taken_slots(r, 3)?, Vec::new()))
                }
            };
            entry.1.push(task);
        }
        let workflows = by_workflow.into_iter().map(|(id, (slots, ready))| (id, slots, ready)).collect();
        Ok(ReadySlots { workflows, more_ready })
    }

    async fn give_back_slots(&mut self, workflow_id: &str, n: i64) -> Result<()> {
        sqlx::query("UPDATE workflows SET running = running - $2 WHERE workflow_id = $1")
            .bind(workflow_id)
            .bind(n)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn start_tasks(
        &mut self,
        _workflow_id: &str,
        ready: &[ReadyTask],
        worker_id: &str,
        lease_expires: i64,
        now: i64,
    ) -> Result<Vec<StartedRow>> {
        // By where the rows are (the ready query locked them, so they stay there), for a plan
        // that cannot wander over the workflow's other rows. The dependencies' results come
        // with each row, in the same round trip.
        let rows: Vec<&str> = ready.iter().filter_map(|t| t.row.as_deref()).collect();
        let q = sqlx::query(
            "UPDATE tasks SET status = 'running', attempt = attempt + 1, ready_at = NULL, lease_owner = $1, \
             lease_expires = $2, started_at = COALESCE(started_at, $3) WHERE ctid = ANY($4::text[]::tid[]) \
             RETURNING task_id, agent_id, agent_type, attempt, input, dependencies, timeout_ms, metadata, \
             ready_since, position, CASE WHEN dependencies <> '[]' THEN (SELECT json_agg(json_build_array( \
             d.task_id, d.agent_id, d.agent_type, d.status, d.output, d.error, d.started_at, d.finished_at))::text \
             FROM tasks d WHERE d.workflow_id = tasks.workflow_id \
             AND d.task_id = ANY(ARRAY(SELECT json_array_elements_text(tasks.dependencies::json)))) END",
        )
        .bind(worker_id)
        .bind(lease_expires)
        .bind(now)
        .bind(rows);
        let mut rows = Vec::with_capacity(ready.len());
        for r in q.fetch_all(&mut *self.conn).await? {
            let position: i64 = r.try_get(9)?;
            rows.push((
                position,
                StartedRow {
                    task_id: r.try_get(0)?,
                    agent_id: r.try_get(1)?,
                    agent_type: r.try_get(2)?,
                    attempt: r.try_get::<i64, _>(3)? as u32,
                    input: r.try_get(4)?,
                    dependencies: serde_json::from_str(r.try_get::<&str, _>(5)?)?,
                    dependency_results: dependency_results(r.try_get(10)?)?,
                    timeout_ms: r.try_get(6)?,
                    metadata: r.try_get(7)?,
                    ready_since: r.try_get(8)?,
                },
            ));
        }
        rows.sort_by_key(|(position, _)| *position);
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    async fn number_history(&mut self, workflow_id: &str, versions: i64, events: i64, now: i64) -> Result<Numbered> {
        if let Some(c) = self.counters.get_mut(workflow_id) {
            c.numbered.version += versions;
            c.numbered.event_seq += events;
            c.moved_at = Some(now);
            return Ok(c.numbered);
        }
        let row = sqlx::query(
            "UPDATE workflows SET version = version + $2, event_seq = event_seq + $3, updated_at = $4 \
             WHERE workflow_id = $1 RETURNING version, event_seq, snapshot_every",
        )
        .bind(workflow_id)
        .bind(versions)
        .bind(events)
        .bind(now)
        .fetch_one(&mut *self.conn)
        .await?;
        let numbered = numbered_from(&row, 0)?;
        self.locked(workflow_id, numbered);
        Ok(numbered)
    }

    async fn task_states(&mut self, workflow_id: &str) -> Result<Changes> {
        let rows = sqlx::query("SELECT task_id, status, attempt, output, error FROM tasks WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_all(&mut *self.conn)
            .await?;
        let mut tasks = Changes::new();
        for r in rows {
            let state = TaskVersionState {
                status: r.try_get::<String, _>(1)?.parse()?,
                attempt: r.try_get::<i64, _>(2)? as u32,
                output: json_opt(r.try_get(3)?),
                error: json_opt(r.try_get(4)?),
            };
            tasks.insert(r.try_get(0)?, state);
        }
        Ok(tasks)
    }

    async fn insert_snapshot(&mut self, workflow_id: &str, version: i64, state: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO workflow_snapshots (workflow_id, version, state) VALUES ($1, $2, $3) \
             ON CONFLICT (workflow_id, version) DO NOTHING",
        )
        .bind(workflow_id)
        .bind(version)
        .bind(state)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn insert(&mut self, rows: NewRows) -> Result<()> {
        let counters = self.moved_counters();
        inserts::insert_rows(self.conn, rows, counters).await
    }
}

/// The results of a started task's dependencies, as its start returned them (a JSON array of
/// `[task_id, agent_id, agent_type, status, output, error, started_at, finished_at]`).
fn dependency_results(json: Option<&str>) -> Result<Vec<TaskResultRow>> {
    type Columns = (String, String, String, String, Option<String>, Option<String>, Option<i64>, Option<i64>);
    let rows: Vec<Columns> = json.map(serde_json::from_str).transpose()?.unwrap_or_default();
    let mut out = Vec::with_capacity(rows.len());
    for (task_id, agent_id, agent_type, status, output, error, started, finished) in rows {
        out.push(TaskResultRow {
            task_id,
            agent_id,
            agent_type,
            status: status.parse()?,
            output,
            error,
            execution_ms: started.zip(finished).map(|(s, f)| (f - s) as f64 / 1000.0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use sqlx::{AssertSqlSafe, Connection, PgConnection};

    use super::{PgTx, BEGIN_WRITE};
    use crate::lifecycle::{lost_attempt, AttemptResult, Outcome};
    use crate::store::claim::{Claim, ClaimTasks};
    use crate::store::outcome::{Applied, RecordOutcomes};
    use crate::store::tx::Transaction;
    use crate::store::Store;
    use crate::workflow::validate;

    /// A new, empty database on the test server.
    async fn new_database() -> String {
        let admin = std::env::var("HYPHAE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut conn = PgConnection::connect(&admin).await.expect("a PostgreSQL server (HYPHAE_TEST_POSTGRES)");
        let name = format!("hyphae_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
        format!("{base}/{name}")
    }

    /// A claim's plans may not follow the planner's estimates of a new workflow, which are a
    /// row or two: it reads the tasks it takes, not all the workflow's (as a bitmap scan of the
    /// ready index or a scan of the table would).
    #[tokio::test]
    async fn a_claim_reads_the_tasks_it_takes_not_the_whole_workflow() {
        let url = new_database().await;
        let store = Store::connect(&url).await.unwrap();
        submit_echo(&store, 2000).await;

        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(BEGIN_WRITE).execute(&mut conn).await.unwrap();
        let claim = Claim {
            worker_id: "w".into(),
            max: 64,
            lease: Duration::from_secs(30),
            workflows: None,
            agent_types: None,
        };
        let (claimed, _) = ClaimTasks { claim, tracking: true }.run(&mut PgTx::new(&mut conn)).await.unwrap();
        assert_eq!(claimed.tasks.len(), 64);
        assert_eq!(claimed.tasks[0].task_id.as_ref(), "t0", "first submitted, first claimed");
        let (seq_scans, fetched): (i64, i64) =
            sqlx::query_as("SELECT seq_scan, idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'tasks'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(seq_scans, 0, "no scan of the whole table");
        assert!(fetched <= 65, "the claim fetched {fetched} task rows through indexes for 64 tasks");
    }

    /// Submit a workflow of `n` independent echo tasks, all allowed to run at once.
    async fn submit_echo(store: &Store, n: usize) {
        let tasks: Vec<_> = (0..n).map(|i| json!({"task_id": format!("t{i}"), "agent_type": "echo"})).collect();
        let spec = serde_json::from_value(json!({"tasks": tasks, "max_parallel_tasks": n})).unwrap();
        store.submit(validate(spec, |_| true).unwrap()).await.unwrap();
    }

    /// Claim up to `max` tasks in a write transaction on `conn`, then complete them in another:
    /// returns how many task rows the completing transaction fetched through indexes.
    async fn claim_and_complete(conn: &mut PgConnection, max: usize) -> i64 {
        let claim =
            Claim { worker_id: "w".into(), max, lease: Duration::from_secs(30), workflows: None, agent_types: None };
        sqlx::raw_sql(BEGIN_WRITE).execute(&mut *conn).await.unwrap();
        let (claimed, _) = ClaimTasks { claim, tracking: true }.run(&mut PgTx::new(&mut *conn)).await.unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
        assert_eq!(claimed.tasks.len(), max);
        let outcomes = (claimed.tasks.into_iter())
            .map(|t| Outcome {
                result: AttemptResult::Completed("{}".into()),
                ..lost_attempt(t.workflow_id, t.task_id.to_string(), t.attempt, None)
            })
            .collect();
        let record = RecordOutcomes { outcomes, claim: None, tracking: true, origin: "test".into() };
        sqlx::raw_sql(BEGIN_WRITE).execute(&mut *conn).await.unwrap();
        let (applied, _, _) = record.run(&mut PgTx::new(&mut *conn)).await.unwrap();
        assert!(applied.iter().all(|a| matches!(a, Applied::Recorded { .. })), "{applied:?}");
        let fetched: i64 =
            sqlx::query_scalar("SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'tasks'")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
        fetched
    }

    /// The plans a connection made while the table was small (generic plans, kept by the
    /// connection) still reach tasks by key once a workflow has thousands: no other index can
    /// stand in for the primary key and read the whole workflow for each task.
    #[tokio::test]
    async fn plans_made_on_a_small_table_still_reach_tasks_by_key() {
        let url = new_database().await;
        let store = Store::connect(&url).await.unwrap();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        submit_echo(&store, 1).await;
        claim_and_complete(&mut conn, 1).await;
        submit_echo(&store, 2000).await;
        let fetched = claim_and_complete(&mut conn, 64).await;
        assert!(fetched <= 4 * 64, "completing 64 tasks fetched {fetched} task rows through indexes");
    }

    /// Steps run on a connection kept for them: one whose server process went away is replaced
    /// at the next step after a rest, and closing the store does not wait for the kept one.
    #[tokio::test]
    async fn steps_outlive_their_kept_connection_and_closing_gives_it_back() {
        let url = new_database().await;
        let store = Store::connect(&url).await.unwrap();
        submit_echo(&store, 3).await;
        let claim = |max| Claim {
            worker_id: "w".into(),
            max,
            lease: Duration::from_secs(30),
            workflows: None,
            agent_types: None,
        };
        assert_eq!(store.claim(claim(1)).await.unwrap().tasks.len(), 1);
        let mut admin = PgConnection::connect(&url).await.unwrap();
        let others = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()";
        sqlx::query(others).execute(&mut admin).await.unwrap();
        tokio::time::sleep(super::IDLE_BEFORE_PING + Duration::from_millis(200)).await;
        assert_eq!(store.claim(claim(1)).await.unwrap().tasks.len(), 1, "the step ran on a new connection");
        tokio::time::timeout(Duration::from_secs(10), store.close()).await.expect("the kept connection went back");
    }

    /// A write's change notice goes out with its rows, and reaches the hosts listening when it
    /// commits.
    #[tokio::test]
    async fn a_submission_tells_the_listening_hosts_on_commit() {
        let url = new_database().await;
        let store = Store::connect(&url).await.unwrap();
        let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
        listener.listen("hyphae").await.unwrap();
        let spec = serde_json::from_value(json!({"tasks": [{"task_id": "a", "agent_type": "echo"}]})).unwrap();
        let submitted = store.submit(validate(spec, |_| true).unwrap()).await.unwrap();
        let notice = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
        let (_, stopped, workflow_id) = crate::store::rows::parse_notice(notice.payload()).unwrap();
        assert_eq!((stopped, workflow_id), (false, submitted.workflow_id.as_str()));
    }
}

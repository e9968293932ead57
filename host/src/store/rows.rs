//! Writing the history that every state change carries: the next version (with an occasional
//! snapshot) and the coordination events.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{now_us, Result};
use crate::events::NewEvent;
use crate::workflow::{TaskStatus, WorkflowStatus};

/// The part of a task's state that versions record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskVersionState {
    pub status: TaskStatus,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// Task changes of one version, by task id.
pub type Changes = Map<String, Value>;

/// Record a task change into `changes`.
pub fn change(changes: &mut Changes, task_id: &str, state: TaskVersionState) {
    changes.insert(task_id.to_string(), serde_json::to_value(state).unwrap_or(Value::Null));
}

/// Parse an optional JSON text column.
pub fn json_opt(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// Give the workflow its next version, recording `changes` and the workflow status after them.
/// Every `snapshot_every` versions, a full snapshot is written too, so reading any version replays
/// at most that many changes and history stays linear in size.
pub async fn bump_version(
    conn: &mut AnyConnection,
    workflow_id: &str,
    status: WorkflowStatus,
    reason: &str,
    changes: &Changes,
) -> Result<i64> {
    let now = now_us();
    let row = sqlx::query(
        "UPDATE workflows SET version = version + 1, updated_at = $2 WHERE workflow_id = $1 \
         RETURNING version, snapshot_every",
    )
    .bind(workflow_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let version: i64 = row.try_get(0)?;
    let every: i64 = row.try_get(1)?;
    sqlx::query(
        "INSERT INTO workflow_versions (workflow_id, version, at, status, reason, changes) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(workflow_id)
    .bind(version)
    .bind(now)
    .bind(status.as_str())
    .bind(reason)
    .bind(serde_json::to_string(changes)?)
    .execute(&mut *conn)
    .await?;
    if every > 0 && version % every == 0 {
        write_snapshot(conn, workflow_id, version, status).await?;
    }
    Ok(version)
}

/// Write a full snapshot of the workflow's current state as `version`.
pub async fn write_snapshot(
    conn: &mut AnyConnection,
    workflow_id: &str,
    version: i64,
    status: WorkflowStatus,
) -> Result<()> {
    let rows = sqlx::query("SELECT task_id, status, attempt, output, error FROM tasks WHERE workflow_id = $1")
        .bind(workflow_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut tasks = Map::new();
    for r in rows {
        let status: String = r.try_get(1)?;
        let state = TaskVersionState {
            status: status.parse().map_err(|e| super::StoreError::Corrupt(format!("{e}")))?,
            attempt: r.try_get::<i64, _>(2)? as u32,
            output: json_opt(r.try_get(3)?),
            error: json_opt(r.try_get(4)?),
        };
        change(&mut tasks, &r.try_get::<String, _>(0)?, state);
    }
    let state = serde_json::json!({ "status": status.as_str(), "tasks": tasks });
    sqlx::query(
        "INSERT INTO workflow_snapshots (workflow_id, version, state) VALUES ($1, $2, $3) \
         ON CONFLICT (workflow_id, version) DO NOTHING",
    )
    .bind(workflow_id)
    .bind(version)
    .bind(state.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const EVENT_COLUMNS: usize = 13;
/// Rows per INSERT statement (keeps bind parameters well under every database's limit).
const EVENT_CHUNK: usize = 400;

/// Append events to a workflow's log, numbering them after the ones already there.
/// Returns how many were appended.
pub async fn append_events(conn: &mut AnyConnection, workflow_id: &str, events: Vec<NewEvent>) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let n = events.len() as i64;
    let last: i64 = sqlx::query_scalar(
        "UPDATE workflows SET event_seq = event_seq + $2 WHERE workflow_id = $1 RETURNING event_seq",
    )
    .bind(workflow_id)
    .bind(n)
    .fetch_one(&mut *conn)
    .await?;
    let mut seq = last - n;
    let now = now_us();
    for chunk in events.chunks(EVENT_CHUNK) {
        let sql = format!(
            "INSERT INTO events (workflow_id, seq, event_id, event_type, task_id, agent_id, agent_type, \
             source_agent, target_agent, status, duration_ms, ts, body) VALUES {}",
            placeholders(chunk.len(), EVENT_COLUMNS)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for e in chunk {
            seq += 1;
            let mut body = Map::new();
            if let Some(err) = &e.error {
                body.insert("error".into(), serde_json::to_value(err)?);
            }
            if let Some(m) = &e.metadata {
                body.insert("metadata".into(), m.clone());
            }
            if let Some(c) = &e.context {
                body.insert("context".into(), c.clone());
            }
            if let Some(p) = &e.performance {
                body.insert("performance".into(), serde_json::to_value(p)?);
            }
            let body = (!body.is_empty()).then(|| Value::Object(body).to_string());
            q = q
                .bind(workflow_id)
                .bind(seq)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(e.event_type.map(|t| t.as_str()).unwrap_or("unknown"))
                .bind(e.task_id.clone())
                .bind(e.agent_id.clone())
                .bind(e.agent_type.clone())
                .bind(e.source_agent.clone())
                .bind(e.target_agent.clone())
                .bind(e.status.clone())
                .bind(e.duration_ms)
                .bind(if e.at_us > 0 { e.at_us } else { now })
                .bind(body);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(n as u64)
}

/// `($1, $2, ...), ($n+1, ...)` for `rows` rows of `cols` columns: placeholders both SQLite and
/// PostgreSQL accept.
pub fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

/// On PostgreSQL, tell every host (on commit) that these workflows changed, so ready tasks start
/// within milliseconds on some host and event streams on any host see new events.
pub async fn notify_hosts(conn: &mut AnyConnection, dialect: super::Dialect, workflow_ids: Vec<&str>) -> Result<()> {
    if dialect != super::Dialect::Postgres {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    for id in workflow_ids {
        if seen.insert(id) {
            sqlx::query("SELECT pg_notify('hyphae', $1)").bind(id).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_across_rows() {
        assert_eq!(super::placeholders(2, 2), "($1, $2), ($3, $4)");
    }
}

//! [`UpkeepTx`] on PostgreSQL: workers, leases, event retention.

use sqlx::{AssertSqlSafe, Row};

use super::PgTx;
use crate::events::blocks::Content;
use crate::store::tx::{UpkeepTx, WorkerRow};
use crate::store::{Result, StoreError};

impl UpkeepTx for PgTx<'_> {
    async fn register_worker(&mut self, w: &WorkerRow<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (worker_id, hostname, pid, started_at, last_beat, interval_ms, stopped, serves) \
             VALUES ($1, $2, $3, $4, $4, $5, FALSE, $6::jsonb) \
             ON CONFLICT (worker_id) DO UPDATE SET last_beat = $4, stopped = FALSE, serves = $6::jsonb",
        )
        .bind(w.worker_id)
        .bind(w.hostname)
        .bind(w.pid)
        .bind(w.now)
        .bind(w.interval_ms)
        .bind(w.serves)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn heartbeat(&mut self, worker_id: &str, now: i64, serves: &str) -> Result<()> {
        sqlx::query("UPDATE workers SET last_beat = $2, serves = $3::jsonb WHERE worker_id = $1")
            .bind(worker_id)
            .bind(now)
            .bind(serves)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn stop_worker(&mut self, worker_id: &str) -> Result<()> {
        sqlx::query("UPDATE workers SET stopped = TRUE WHERE worker_id = $1")
            .bind(worker_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn renew_leases(&mut self, worker_id: &str, until: i64) -> Result<u64> {
        let r = sqlx::query("UPDATE tasks SET lease_expires = $2 WHERE lease_owner = $1 AND status = 'running'")
            .bind(worker_id)
            .bind(until)
            .execute(&mut *self.conn)
            .await?;
        Ok(r.rows_affected())
    }

    async fn delete_blocks_before(&mut self, cutoff: i64) -> Result<u64> {
        let events: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(event_count), 0) AS BIGINT) FROM event_blocks \
             WHERE first_ts < $1 AND last_ts < $1",
        )
        .bind(cutoff)
        .fetch_one(&mut *self.conn)
        .await?;
        sqlx::query(
            "DELETE FROM event_agents WHERE (workflow_id, first_seq) IN \
             (SELECT workflow_id, first_seq FROM event_blocks WHERE first_ts < $1 AND last_ts < $1)",
        )
        .bind(cutoff)
        .execute(&mut *self.conn)
        .await?;
        sqlx::query("DELETE FROM event_blocks WHERE first_ts < $1 AND last_ts < $1")
            .bind(cutoff)
            .execute(&mut *self.conn)
            .await?;
        Ok(events as u64)
    }

    async fn blocks_straddling(&mut self, cutoff: i64) -> Result<Vec<(String, i64, Content)>> {
        let rows = sqlx::query("SELECT workflow_id, first_seq, events, data FROM event_blocks WHERE first_ts < $1")
            .bind(cutoff)
            .fetch_all(&mut *self.conn)
            .await?;
        rows.iter()
            .map(|r| {
                let content = Content::of_columns(r.try_get(2)?, r.try_get(3)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((r.try_get(0)?, r.try_get(1)?, content))
            })
            .collect()
    }

    async fn delete_block(&mut self, workflow_id: &str, first_seq: i64) -> Result<()> {
        for table in ["event_agents", "event_blocks"] {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE workflow_id = $1 AND first_seq = $2")))
                .bind(workflow_id)
                .bind(first_seq)
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }
}

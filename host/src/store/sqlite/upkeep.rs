//! [`UpkeepTx`] on the writer's connection: workers, leases, event retention.

use super::write::SqliteTx;
use crate::events::blocks::Content;
use crate::store::tx::{UpkeepTx, WorkerRow};
use crate::store::{Result, StoreError};

impl UpkeepTx for SqliteTx<'_> {
    async fn register_worker(&mut self, w: &WorkerRow<'_>) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO workers (worker_id, hostname, pid, started_at, last_beat, interval_ms, stopped, serves) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, 0, ?6) \
                 ON CONFLICT (worker_id) DO UPDATE SET last_beat = ?4, stopped = 0, serves = ?6",
            )?
            .execute((w.worker_id, w.hostname, w.pid, w.now, w.interval_ms, w.serves))?;
        Ok(())
    }

    async fn heartbeat(&mut self, worker_id: &str, now: i64, serves: &str) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE workers SET last_beat = ?2, serves = ?3 WHERE worker_id = ?1")?
            .execute((worker_id, now, serves))?;
        Ok(())
    }

    async fn stop_worker(&mut self, worker_id: &str) -> Result<()> {
        self.conn.prepare_cached("UPDATE workers SET stopped = 1 WHERE worker_id = ?1")?.execute([worker_id])?;
        Ok(())
    }

    async fn renew_leases(&mut self, worker_id: &str, until: i64) -> Result<u64> {
        let mut update = self
            .conn
            .prepare_cached("UPDATE tasks SET lease_expires = ?2 WHERE lease_owner = ?1 AND status = 'running'")?;
        Ok(update.execute((worker_id, until))? as u64)
    }

    async fn delete_blocks_before(&mut self, cutoff: i64) -> Result<u64> {
        let events: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(event_count), 0) FROM event_blocks WHERE first_ts < ?1 AND last_ts < ?1",
            [cutoff],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "DELETE FROM event_agents WHERE (workflow_id, first_seq) IN \
             (SELECT workflow_id, first_seq FROM event_blocks WHERE first_ts < ?1 AND last_ts < ?1)",
            [cutoff],
        )?;
        self.conn.execute("DELETE FROM event_blocks WHERE first_ts < ?1 AND last_ts < ?1", [cutoff])?;
        Ok(events as u64)
    }

    async fn blocks_straddling(&mut self, cutoff: i64) -> Result<Vec<(String, i64, Content)>> {
        let mut select =
            self.conn.prepare("SELECT workflow_id, first_seq, events, data FROM event_blocks WHERE first_ts < ?1")?;
        let rows = select.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        let mut blocks = Vec::new();
        for row in rows {
            let (workflow_id, first_seq, text, bytes) = row?;
            let content = Content::of_columns(text, bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            blocks.push((workflow_id, first_seq, content));
        }
        Ok(blocks)
    }

    async fn delete_block(&mut self, workflow_id: &str, first_seq: i64) -> Result<()> {
        for table in ["event_agents", "event_blocks"] {
            self.conn.execute(
                &format!("DELETE FROM {table} WHERE workflow_id = ?1 AND first_seq = ?2"),
                (workflow_id, first_seq),
            )?;
        }
        Ok(())
    }
}

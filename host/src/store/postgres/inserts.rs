//! The rows a write transaction adds at its end, the history counters it moved, and its change
//! notices, in one statement of fixed text: each table's rows go as one array per column
//! (`unnest`), so the statement is parsed and planned once per connection, whatever the number
//! of rows. (A VALUES list per row count was parsed and planned again for most batches: a third
//! of its execution time.)

use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection};

use crate::events::blocks::Content;
use crate::store::tx::{NewRows, Numbered};
use crate::store::Result;

/// Attempts started, attempts closed, versions, event blocks, their agent index, workflows'
/// history counters, notices.
const INSERT_ROWS: &str = "WITH s AS (INSERT INTO attempts (workflow_id, task_id, attempt, worker_id, status, \
     queue_us, started_at) SELECT wf, tid, att, wid, 'running', q, st FROM unnest($1::text[], $2::text[], \
     $3::int8[], $4::text[], $5::int8[], $6::int8[]) AS r (wf, tid, att, wid, q, st)), \
     c AS (INSERT INTO attempts (workflow_id, task_id, attempt, worker_id, status, started_at, finished_at, \
     error, log, plugin_digest, error_type, peak_memory) SELECT wf, tid, att, '', st, fin, fin, err, log, dig, et, pm \
     FROM unnest($7::text[], $8::text[], $9::int8[], $10::text[], $11::int8[], $12::text[], $13::text[], \
     $14::text[], $15::text[], $16::int8[]) AS r (wf, tid, att, st, fin, err, log, dig, et, pm) \
     ON CONFLICT (workflow_id, task_id, attempt) DO UPDATE SET status = excluded.status, \
     finished_at = excluded.finished_at, error = excluded.error, log = excluded.log, \
     plugin_digest = excluded.plugin_digest, error_type = excluded.error_type, peak_memory = excluded.peak_memory), \
     v AS (INSERT INTO workflow_versions (workflow_id, version, at, status, reason, changes) \
     SELECT * FROM unnest($17::text[], $18::int8[], $19::int8[], $20::text[], $21::text[], $22::text[])), \
     b AS (INSERT INTO event_blocks (workflow_id, first_seq, last_seq, first_ts, last_ts, event_count, events, data) \
     SELECT * FROM unnest($23::text[], $24::int8[], $25::int8[], $26::int8[], $27::int8[], $28::int8[], \
     $29::text[], $30::bytea[])), \
     a AS (INSERT INTO event_agents (agent_id, first_ts, workflow_id, first_seq) \
     SELECT * FROM unnest($31::text[], $32::int8[], $33::text[], $34::int8[])), \
     n AS (UPDATE workflows w SET version = x.v, event_seq = x.e, updated_at = x.u \
     FROM unnest($35::text[], $36::int8[], $37::int8[], $38::int8[]) AS x (id, v, e, u) WHERE w.workflow_id = x.id) \
     SELECT pg_notify('hyphae', n) FROM unnest($39::text[]) AS n";

/// Write `rows` and the `counters` of locked workflows (id, counters, when they moved), and send
/// the notices (on commit), in one round trip.
pub async fn insert_rows(conn: &mut PgConnection, rows: NewRows, counters: Vec<(String, Numbered, i64)>) -> Result<()> {
    if rows.attempts_started.is_empty()
        && rows.attempts_closed.is_empty()
        && rows.versions.is_empty()
        && rows.blocks.is_empty()
        && rows.notices.is_empty()
        && counters.is_empty()
    {
        return Ok(());
    }
    let args = arguments(rows, &counters).map_err(sqlx::Error::Encode)?;
    sqlx::query_with(INSERT_ROWS, args).execute(conn).await?;
    Ok(())
}

/// The 39 arrays of [`INSERT_ROWS`].
fn arguments(rows: NewRows, counters: &[(String, Numbered, i64)]) -> std::result::Result<PgArguments, BoxDynError> {
    let mut args = PgArguments::default();
    let s = &rows.attempts_started;
    args.add(s.iter().map(|a| a.workflow_id.as_str()).collect::<Vec<_>>())?;
    args.add(s.iter().map(|a| &*a.task_id).collect::<Vec<_>>())?;
    args.add(s.iter().map(|a| a.attempt as i64).collect::<Vec<_>>())?;
    args.add(s.iter().map(|a| a.worker_id.as_str()).collect::<Vec<_>>())?;
    args.add(s.iter().map(|a| a.queue_us).collect::<Vec<_>>())?;
    args.add(s.iter().map(|a| a.started_at).collect::<Vec<_>>())?;
    let c = &rows.attempts_closed;
    args.add(c.iter().map(|a| a.workflow_id.as_str()).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.task_id.as_str()).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.attempt as i64).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.status).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.finished_at).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.error.as_deref()).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.log.as_deref()).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.plugin_digest.as_deref()).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.error_type.as_deref()).collect::<Vec<_>>())?;
    args.add(c.iter().map(|a| a.peak_memory).collect::<Vec<_>>())?;
    let v = &rows.versions;
    args.add(v.iter().map(|v| v.workflow_id.as_str()).collect::<Vec<_>>())?;
    args.add(v.iter().map(|v| v.version).collect::<Vec<_>>())?;
    args.add(v.iter().map(|v| v.at).collect::<Vec<_>>())?;
    args.add(v.iter().map(|v| v.status.as_str()).collect::<Vec<_>>())?;
    args.add(v.iter().map(|v| v.reason).collect::<Vec<_>>())?;
    args.add(v.iter().map(|v| v.changes.as_str()).collect::<Vec<_>>())?;
    let b = &rows.blocks;
    args.add(b.iter().map(|b| b.workflow_id.as_str()).collect::<Vec<_>>())?;
    args.add(b.iter().map(|b| b.first_seq).collect::<Vec<_>>())?;
    args.add(b.iter().map(|b| b.last_seq).collect::<Vec<_>>())?;
    args.add(b.iter().map(|b| b.first_ts).collect::<Vec<_>>())?;
    args.add(b.iter().map(|b| b.last_ts).collect::<Vec<_>>())?;
    args.add(b.iter().map(|b| b.count).collect::<Vec<_>>())?;
    args.add(b.iter().map(|b| text(&b.content)).collect::<Vec<_>>())?;
    args.add(b.iter().map(|b| bytes(&b.content)).collect::<Vec<_>>())?;
    let agents = || b.iter().flat_map(|b| b.agents.iter().map(move |(agent, ts)| (b, agent, *ts)));
    args.add(agents().map(|(_, agent, _)| agent.as_str()).collect::<Vec<_>>())?;
    args.add(agents().map(|(_, _, ts)| ts).collect::<Vec<_>>())?;
    args.add(agents().map(|(b, _, _)| b.workflow_id.as_str()).collect::<Vec<_>>())?;
    args.add(agents().map(|(b, _, _)| b.first_seq).collect::<Vec<_>>())?;
    args.add(counters.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>())?;
    args.add(counters.iter().map(|(_, n, _)| n.version).collect::<Vec<_>>())?;
    args.add(counters.iter().map(|(_, n, _)| n.event_seq).collect::<Vec<_>>())?;
    args.add(counters.iter().map(|(_, _, at)| *at).collect::<Vec<_>>())?;
    args.add(rows.notices.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok(args)
}

/// A block's content as the `events` column holds it (blocks of the first format).
fn text(content: &Content) -> Option<&str> {
    match content {
        Content::Legacy(text) => Some(text),
        Content::Encoded(_) => None,
    }
}

/// A block's content as the `data` column holds it.
fn bytes(content: &Content) -> Option<&[u8]> {
    match content {
        Content::Legacy(_) => None,
        Content::Encoded(bytes) => Some(bytes),
    }
}

//! The store's queries over the event log: per workflow, task and agent, handoff chains,
//! timelines, statistics, and retention. Events are stored in blocks ([`crate::events::blocks`]):
//! the database finds the blocks, this module reads the events out of them.

use super::columns::Columns;
use super::tx::{NewRows, Transaction, WriteTx};
use super::{Result, Store, StoreError};
use crate::clock::now_us;
use crate::events::blocks::{self, BlockError, Content, Stored};
use crate::events::{AgentCursor, AgentEventsQuery, Event, EventQuery, EventType, Order, Statistics, Tally, Timeline};

/// Blocks read per query at first; later pages read more (most reads want the first few).
const FIRST_PAGE: i64 = 4;
const MAX_PAGE: i64 = 256;

/// The blocks of workflow `$1` from the one holding position `$2`, `$3` of them. Every `LIMIT`
/// of a read is written `$n + 0`: SQLite plans with the value of a bare `LIMIT ?`, so it would
/// prepare the statement again on each call (the event streams' tails read after every step).
pub(crate) const SCAN_FROM: &str = "SELECT first_seq, events, data FROM event_blocks WHERE workflow_id = $1 \
     AND first_seq >= (SELECT COALESCE(MAX(first_seq), 0) FROM event_blocks WHERE workflow_id = $1 AND first_seq <= $2) \
     ORDER BY first_seq LIMIT $3 + 0";
/// The blocks of workflow `$1` after the one starting at `$2`, `$3` of them.
pub(crate) const SCAN_AFTER: &str = "SELECT first_seq, events, data FROM event_blocks WHERE workflow_id = $1 \
     AND first_seq > $2 ORDER BY first_seq LIMIT $3 + 0";

fn corrupt(workflow_id: &str) -> impl Fn(BlockError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("event block of workflow {workflow_id}: {e}"))
}

/// The events of a block, from its `events` and `data` columns.
fn content(row: &dyn Columns) -> Result<Content> {
    let (text, bytes) = (row.opt_text("events")?, row.opt_bytes("data")?);
    Content::of_columns(text, bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn event(e: Stored, workflow_id: &str) -> Result<Event> {
    e.into_event(workflow_id).map_err(StoreError::Corrupt)
}

impl Store {
    /// Events of a workflow, oldest first.
    pub async fn workflow_events(&self, workflow_id: &str, q: &EventQuery) -> Result<Vec<Event>> {
        let limit = q.limit.max(1) as usize;
        let mut events = Vec::new();
        self.scan_workflow(workflow_id, q.after, |e| {
            let wanted =
                e.seq() > q.after && e.is_of(&q.types) && q.task_id.as_deref().is_none_or(|t| e.task_id() == Some(t));
            if wanted {
                events.push(event(e, workflow_id)?);
            }
            Ok(events.len() < limit)
        })
        .await?;
        if events.is_empty() && q.after == 0 {
            self.workflow_exists(workflow_id).await?;
        }
        Ok(events)
    }

    /// Call `each` on the events of a workflow from the block holding position `after + 1` on,
    /// in order, until it returns `false`.
    async fn scan_workflow(
        &self,
        workflow_id: &str,
        after: i64,
        mut each: impl FnMut(Stored) -> Result<bool>,
    ) -> Result<()> {
        let (mut cursor, mut page) = (None::<i64>, FIRST_PAGE);
        loop {
            let (sql, from) = match cursor {
                None => (SCAN_FROM, after.saturating_add(1)),
                Some(last) => (SCAN_AFTER, last),
            };
            let args = vec![workflow_id.into(), from.into(), page.into()];
            let blocks = self.rows(sql, args, |r| Ok((r.int("first_seq")?, content(r)?))).await?;
            for (first_seq, block) in &blocks {
                cursor = Some(*first_seq);
                for e in blocks::decode(block).map_err(corrupt(workflow_id))? {
                    if !each(e)? {
                        return Ok(());
                    }
                }
            }
            if (blocks.len() as i64) < page {
                return Ok(());
            }
            page = (page * 4).min(MAX_PAGE);
        }
    }

    /// Position of the last event of a workflow (0 when none).
    pub async fn last_event_seq(&self, workflow_id: &str) -> Result<i64> {
        let sql = "SELECT event_seq FROM workflows WHERE workflow_id = $1";
        let seq = self.row(sql, vec![workflow_id.into()], |r| r.int("event_seq")).await?;
        seq.ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))
    }

    /// A page of the events in which an agent took part (as actor, source or target), by time
    /// (then workflow and position): oldest first, or newest first with `q.order`; and where
    /// the next page starts, when there is one.
    ///
    /// The agent index lists the agent's blocks by the time of their earliest event; oldest
    /// first, blocks are read in that order until no later block can hold an event of the page,
    /// so the first page costs what `limit` asks. A later page reads the blocks before its cursor
    /// again, and newest first reads all of the agent's blocks (an index by latest time would
    /// bound both).
    pub async fn agent_events(
        &self,
        agent_id: &str,
        q: &AgentEventsQuery,
    ) -> Result<(Vec<Event>, Option<AgentCursor>)> {
        let keep = q.limit.max(1) as usize + 1; // one more: is there a next page?
        let newest = q.order == Order::Newest;
        let after = q.after.as_ref().map(|c| (c.ts, c.workflow_id.as_str(), c.seq));
        let wanted = |k: (i64, &str, i64)| after.is_none_or(|c| if newest { k < c } else { k > c });
        let mut found: Vec<(AgentCursor, Event)> = Vec::new();
        let (mut from, mut page) = ((i64::MIN, String::new(), i64::MIN), FIRST_PAGE);
        'pages: loop {
            let sql = "SELECT a.first_ts, a.workflow_id, a.first_seq, b.events, b.data FROM \
                 (SELECT first_ts, workflow_id, first_seq FROM event_agents WHERE agent_id = $1 \
                  AND (first_ts, workflow_id, first_seq) > ($2, $3, $4) \
                  ORDER BY first_ts, workflow_id, first_seq LIMIT $5 + 0) a \
                 JOIN event_blocks b ON b.workflow_id = a.workflow_id AND b.first_seq = a.first_seq \
                 ORDER BY a.first_ts, a.workflow_id, a.first_seq";
            let args = vec![agent_id.into(), from.0.into(), from.1.clone().into(), from.2.into(), page.into()];
            let rows = self
                .rows(sql, args, |r| Ok((r.int("first_ts")?, r.text("workflow_id")?, r.int("first_seq")?, content(r)?)))
                .await?;
            let read = rows.len() as i64;
            for (first_ts, workflow_id, first_seq, block) in rows {
                // Oldest first, no event of this block or a later one comes before the block's
                // key: stop once it is past the page's last event.
                if let Some((last, _)) = found.get(keep - 1).filter(|_| !newest) {
                    if (first_ts, workflow_id.as_str(), first_seq) > (last.ts, last.workflow_id.as_str(), last.seq) {
                        break 'pages;
                    }
                }
                for e in blocks::decode(&block).map_err(corrupt(&workflow_id))? {
                    if e.involves(agent_id) && e.is_of(&q.types) {
                        let ts = e.ts();
                        let e = event(e, &workflow_id)?;
                        let at = AgentCursor { ts, workflow_id: workflow_id.clone(), seq: e.seq };
                        if wanted((at.ts, &at.workflow_id, at.seq)) {
                            found.push((at, e));
                        }
                    }
                }
                found.sort_by(|(a, _), (b, _)| {
                    let order = (a.ts, &a.workflow_id, a.seq).cmp(&(b.ts, &b.workflow_id, b.seq));
                    if newest {
                        order.reverse()
                    } else {
                        order
                    }
                });
                found.truncate(keep);
                from = (first_ts, workflow_id, first_seq);
            }
            if read < page {
                break;
            }
            page = (page * 4).min(MAX_PAGE);
        }
        let next = if found.len() == keep { found.get(keep - 2).map(|(at, _)| at.clone()) } else { None };
        found.truncate(keep - 1);
        Ok((found.into_iter().map(|(_, e)| e).collect(), next))
    }

    /// The handoffs of a workflow, in order.
    pub async fn handoff_chain(&self, workflow_id: &str) -> Result<Vec<Event>> {
        let q = EventQuery { types: vec![EventType::Handoff], limit: i64::MAX, ..Default::default() };
        self.workflow_events(workflow_id, &q).await
    }

    /// A workflow's events grouped as lifecycle, tasks, handoffs and failures.
    pub async fn timeline(&self, workflow_id: &str) -> Result<Timeline> {
        let mut t = Timeline {
            workflow_id: workflow_id.to_string(),
            total_events: 0,
            duration_ms: 0.0,
            start_time: None,
            end_time: None,
            lifecycle: Vec::new(),
            tasks: Vec::new(),
            handoffs: Vec::new(),
            failures: Vec::new(),
        };
        let mut span: Option<(i64, i64)> = None;
        self.scan_workflow(workflow_id, 0, |e| {
            let ts = e.ts();
            span = Some(span.map_or((ts, ts), |(a, _)| (a, ts)));
            let e = event(e, workflow_id)?;
            t.total_events += 1;
            t.start_time.get_or_insert_with(|| e.timestamp.clone());
            t.end_time = Some(e.timestamp.clone());
            match e.event_type.group() {
                "handoffs" => t.handoffs.push(e),
                "failures" => t.failures.push(e),
                "tasks" => t.tasks.push(e),
                _ => t.lifecycle.push(e),
            }
            Ok(true)
        })
        .await?;
        match span {
            Some((first, last)) => t.duration_ms = (last - first) as f64 / 1000.0,
            None => self.workflow_exists(workflow_id).await?,
        }
        Ok(t)
    }

    /// Statistics over the events of one workflow, or of all when `workflow_id` is `None`.
    pub async fn statistics(&self, workflow_id: Option<&str>) -> Result<Statistics> {
        if let Some(id) = workflow_id {
            self.workflow_exists(id).await?;
        }
        let mut acc = Tally::new(workflow_id.is_some());
        let mut cursor = (workflow_id.unwrap_or("").to_string(), i64::MIN);
        loop {
            let sql = if workflow_id.is_some() {
                "SELECT workflow_id, first_seq, events, data FROM event_blocks WHERE workflow_id = $1 AND first_seq > $2 \
                 ORDER BY first_seq LIMIT $3 + 0"
            } else {
                "SELECT workflow_id, first_seq, events, data FROM event_blocks WHERE (workflow_id, first_seq) > ($1, $2) \
                 ORDER BY workflow_id, first_seq LIMIT $3 + 0"
            };
            let args = vec![cursor.0.clone().into(), cursor.1.into(), MAX_PAGE.into()];
            let rows = self.rows(sql, args, |r| Ok((r.text("workflow_id")?, r.int("first_seq")?, content(r)?))).await?;
            for (wf, first_seq, block) in &rows {
                for e in blocks::decode(block).map_err(corrupt(wf))? {
                    acc.add(wf, &e);
                }
                cursor = (wf.clone(), *first_seq);
            }
            if (rows.len() as i64) < MAX_PAGE {
                break;
            }
        }
        Ok(acc.finish())
    }

    /// Delete events older than `days` days. Returns how many were deleted.
    ///
    /// Blocks wholly older than the cut-off go; a block that straddles it keeps its newer events.
    pub async fn delete_events_older_than(&self, days: f64) -> Result<u64> {
        let cutoff = now_us() - (days * 86_400e6) as i64;
        self.transact(DeleteEvents { cutoff }).await
    }
}

/// The transaction of [`Store::delete_events_older_than`].
struct DeleteEvents {
    cutoff: i64,
}

impl Transaction for DeleteEvents {
    /// Events deleted.
    type Output = u64;

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<u64> {
        let cutoff = self.cutoff;
        let mut deleted = tx.delete_blocks_before(cutoff).await?;
        let mut trimmed = Vec::new();
        for (wf, first_seq, content) in tx.blocks_straddling(cutoff).await? {
            let kept = blocks::retain(&wf, &content, |e| e.ts() >= cutoff).map_err(corrupt(&wf))?;
            let Some((block, removed)) = kept else {
                continue; // cannot happen: the block has an event at or after the cut-off
            };
            tx.delete_block(&wf, first_seq).await?;
            trimmed.push(block);
            deleted += removed as u64;
        }
        tx.insert(NewRows { blocks: trimmed, ..NewRows::default() }).await?;
        Ok(deleted)
    }
}

//! Writing the history that every state change carries: the next version (with an occasional
//! snapshot) and the coordination events.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::tx::{NewRows, VersionRow, WriteTx};
use super::Result;
use crate::clock::now_us;
use crate::events::blocks;
use crate::events::NewEvent;
use crate::lifecycle::Changes;
use crate::workflow::WorkflowStatus;

/// Parse an optional JSON text column.
pub fn json_opt(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// Write a full snapshot of the workflow's current state as `version`.
pub async fn write_snapshot<T: WriteTx>(
    tx: &mut T,
    workflow_id: &str,
    version: i64,
    status: WorkflowStatus,
) -> Result<()> {
    let tasks = tx.task_states(workflow_id).await?;
    #[derive(Serialize)]
    struct Snapshot<'a> {
        status: &'a str,
        tasks: &'a Changes,
    }
    let state = serde_json::to_string(&Snapshot { status: status.as_str(), tasks: &tasks })?;
    tx.insert_snapshot(workflow_id, version, &state).await
}

/// The versions and events a transaction produces, written together when it ends: each
/// workflow's counters number them ([`super::tx::StepTx::number_history`]), and multi-row
/// INSERTs store them.
/// Events can be borrowed (`'e`) from what the transaction records, so they are not copied.
#[derive(Default)]
pub struct History<'e> {
    /// By workflow id: flushed in id order, the order workflow rows are locked in.
    workflows: std::collections::BTreeMap<String, Pending<'e>>,
}

#[derive(Default)]
struct Pending<'e> {
    versions: Vec<(Option<WorkflowStatus>, &'static str, Changes)>,
    /// In order, as added: whole lists, never moved one event at a time.
    events: Vec<Cow<'e, [NewEvent]>>,
}

/// What [`History::flush`] wrote.
pub struct Flushed {
    /// Events written.
    pub events: u64,
    /// The last version given to each workflow.
    pub versions: Vec<(String, i64)>,
}

impl<'e> History<'e> {
    fn entry(&mut self, workflow_id: &str) -> &mut Pending<'e> {
        self.workflows.entry(workflow_id.to_string()).or_default()
    }

    /// A new version of a workflow: its status after the change, what made it, the task changes.
    pub fn version(&mut self, workflow_id: &str, status: WorkflowStatus, reason: &'static str, changes: Changes) {
        self.entry(workflow_id).versions.push((Some(status), reason, changes));
    }

    /// A new version that leaves the workflow's status as it is; [`History::fill_status`] says
    /// which status that is before the flush.
    pub fn version_same_status(&mut self, workflow_id: &str, reason: &'static str, changes: Changes) {
        self.entry(workflow_id).versions.push((None, reason, changes));
    }

    /// The workflow's status, for versions that left it unchanged.
    pub fn fill_status(&mut self, workflow_id: &str, status: WorkflowStatus) {
        for v in &mut self.entry(workflow_id).versions {
            v.0.get_or_insert(status);
        }
    }

    /// The status after the workflow's latest version (it ended the workflow).
    pub fn set_last_status(&mut self, workflow_id: &str, status: WorkflowStatus) {
        if let Some(v) = self.entry(workflow_id).versions.last_mut() {
            v.0 = Some(status);
        }
    }

    /// Events of a workflow, in order.
    pub fn events(&mut self, workflow_id: &str, events: Vec<NewEvent>) {
        self.entry(workflow_id).events.push(Cow::Owned(events));
    }

    /// Events of a workflow, in order, borrowed until the flush.
    pub fn borrowed_events(&mut self, workflow_id: &str, events: &'e [NewEvent]) {
        self.entry(workflow_id).events.push(Cow::Borrowed(events));
    }

    /// Number the versions and events and write them (events only when `with_events`). Every
    /// `snapshot_every` versions a workflow also gets a full snapshot, so reading any version
    /// replays a bounded number of changes and history stays linear in size.
    /// `rows` holds the transaction's other rows; they are written with these.
    pub async fn flush<T: WriteTx>(self, tx: &mut T, mut rows: NewRows, with_events: bool) -> Result<Flushed> {
        let now = now_us();
        let mut flushed = Flushed { events: 0, versions: Vec::new() };
        for (workflow_id, p) in self.workflows {
            let k = p.versions.len() as i64;
            let m = if with_events { p.events.iter().map(|list| list.len() as i64).sum() } else { 0 };
            if k == 0 && m == 0 {
                continue;
            }
            let numbered = tx.number_history(&workflow_id, k, m, now).await?;
            let (last, every) = (numbered.version, numbered.snapshot_every);
            let first = last - k + 1;
            let last_status = p.versions.last().map(|v| v.0.unwrap_or(WorkflowStatus::Running));
            for (i, (status, reason, changes)) in p.versions.into_iter().enumerate() {
                rows.versions.push(VersionRow {
                    workflow_id: workflow_id.clone(),
                    version: first + i as i64,
                    at: now,
                    status: status.unwrap_or(WorkflowStatus::Running),
                    reason,
                    changes: serde_json::to_string(&changes)?,
                });
            }
            if let Some(status) = last_status {
                if every > 0 && last / every > (first - 1) / every {
                    write_snapshot(tx, &workflow_id, last, status).await?;
                }
                flushed.versions.push((workflow_id.clone(), last));
            }
            if m > 0 {
                let events: Vec<&NewEvent> = p.events.iter().flat_map(|list| list.iter()).collect();
                rows.blocks.extend(blocks::encode(&workflow_id, numbered.event_seq - m + 1, &events, now)?);
            }
        }
        flushed.events = rows.blocks.iter().map(|b| b.count as u64).sum();
        tx.insert(rows).await?;
        Ok(flushed)
    }
}

/// A change notice: which store sent it, whether running attempts were stopped, which workflow.
pub fn notice_payload(origin: &str, stopped: bool, workflow_id: &str) -> String {
    format!("{origin} {} {workflow_id}", if stopped { 's' } else { '-' })
}

/// Read a change notice: (origin, stopped, workflow id).
pub fn parse_notice(payload: &str) -> Option<(&str, bool, &str)> {
    let (origin, rest) = payload.split_once(' ')?;
    let (flag, workflow_id) = rest.split_once(' ')?;
    Some((origin, flag == "s", workflow_id))
}

/// The change notices telling every host sharing the database (on commit) that these workflows
/// changed, and whether the change stopped running attempts, so ready tasks start within
/// milliseconds on some host, event streams on any host see new events, and stopped attempts are
/// interrupted wherever they run. They go out with a transaction's rows ([`NewRows::notices`]).
pub fn notices(origin: &str, workflows: Vec<(&str, bool)>) -> Vec<String> {
    let mut merged: std::collections::BTreeMap<&str, bool> = Default::default();
    for (id, stopped) in workflows {
        *merged.entry(id).or_default() |= stopped;
    }
    merged.into_iter().map(|(id, s)| notice_payload(origin, s, id)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn notices_round_trip() {
        use super::{notice_payload, parse_notice};
        let p = notice_payload("abc", true, "wf 1");
        assert_eq!(parse_notice(&p), Some(("abc", true, "wf 1")));
        assert_eq!(parse_notice(&notice_payload("abc", false, "w")), Some(("abc", false, "w")));
        assert_eq!(parse_notice("garbage"), None);
    }
}

//! Limits of this host an operator changes while it runs: the host-wide cap on running tasks and a
//! cap per agent type (the log level lives in [`crate::telemetry`]).
//!
//! The host-wide cap is the slot semaphore's size; the per-agent-type caps narrow what a claim
//! asks for: a type at its cap is left out, and a claim that may take tasks of a capped type
//! takes no more than that type has room for.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

/// The limits in force on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Limits {
    /// Tasks this host runs at once, over all workflows.
    pub max_concurrent_tasks: usize,
    /// Tasks of an agent type this host runs at once (types not listed: no cap of their own).
    pub agent_type_concurrency: BTreeMap<String, usize>,
}

/// The caps and what runs under them.
pub(super) struct Caps {
    slots: Arc<Semaphore>,
    state: Mutex<State>,
}

struct State {
    max_concurrent_tasks: usize,
    per_type: BTreeMap<String, usize>,
    running: HashMap<String, usize>,
}

impl Caps {
    /// Caps over `slots`, a semaphore of `max` permits.
    pub(super) fn new(slots: Arc<Semaphore>, max: usize) -> Caps {
        let state = State { max_concurrent_tasks: max, per_type: BTreeMap::new(), running: HashMap::new() };
        Caps { slots, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The limits in force.
    pub(super) fn limits(&self) -> Limits {
        let s = self.lock();
        Limits { max_concurrent_tasks: s.max_concurrent_tasks, agent_type_concurrency: s.per_type.clone() }
    }

    /// Resize the host-wide cap. Slots in use when it shrinks are given up as their tasks end.
    pub(super) fn set_max(&self, max: usize) {
        let mut s = self.lock();
        let old = s.max_concurrent_tasks;
        s.max_concurrent_tasks = max;
        if max > old {
            self.slots.add_permits(max - old);
        } else if max < old {
            let owed = (old - max) - self.slots.forget_permits(old - max);
            if owed > 0 {
                let slots = self.slots.clone();
                tokio::spawn(async move {
                    if let Ok(p) = slots.acquire_many_owned(owed as u32).await {
                        p.forget();
                    }
                });
            }
        }
    }

    /// Set (`Some`) or remove (`None`) an agent type's cap.
    pub(super) fn set_agent_type(&self, agent_type: &str, cap: Option<usize>) {
        let mut s = self.lock();
        match cap {
            Some(n) => s.per_type.insert(agent_type.to_string(), n),
            None => s.per_type.remove(agent_type),
        };
    }

    /// A task of `agent_type` started here.
    pub(super) fn started(&self, agent_type: &str) {
        *self.lock().running.entry(agent_type.to_string()).or_insert(0) += 1;
    }

    /// A task of `agent_type` ended here (before its outcome is recorded, so the claim recorded
    /// with it sees the room it made).
    pub(super) fn ended(&self, agent_type: &str) {
        if let Some(n) = self.lock().running.get_mut(agent_type) {
            *n = n.saturating_sub(1);
        }
    }

    /// What a claim of up to `max` tasks of the `served` agent types may ask for under the caps.
    pub(super) fn narrow(&self, served: Option<Vec<String>>, max: usize) -> (Option<Arc<[String]>>, usize) {
        let s = self.lock();
        let Some(served) = served else { return (None, max) };
        let room = |t: &String| s.per_type.get(t).map(|cap| cap.saturating_sub(*s.running.get(t).unwrap_or(&0)));
        let open: Vec<String> = served.into_iter().filter(|t| room(t) != Some(0)).collect();
        let max = open.iter().filter_map(room).fold(max, usize::min);
        (Some(open.into()), max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> Option<Vec<String>> {
        Some(vec!["echo".into(), "fib".into(), "llm".into()])
    }

    #[tokio::test]
    async fn claims_leave_out_types_at_their_cap_and_take_no_more_than_the_room() {
        let caps = Caps::new(Arc::new(Semaphore::new(8)), 8);
        assert_eq!(caps.narrow(served(), 8), (Some(served().unwrap().into()), 8));
        caps.set_agent_type("llm", Some(2));
        caps.started("llm");
        let (types, max) = caps.narrow(served(), 8);
        assert_eq!((types.unwrap().len(), max), (3, 1), "one more llm task fits");
        caps.started("llm");
        let (types, max) = caps.narrow(served(), 8);
        assert_eq!((types.unwrap().to_vec(), max), (vec!["echo".to_string(), "fib".into()], 8));
        caps.ended("llm");
        assert_eq!(caps.narrow(served(), 8).1, 1);
        caps.set_agent_type("llm", None);
        assert_eq!(caps.narrow(served(), 8).1, 8);
        assert_eq!(caps.narrow(None, 5), (None, 5), "no served list: nothing to narrow");
    }

    #[tokio::test]
    async fn the_host_wide_cap_grows_and_shrinks_with_slots_in_use() {
        let slots = Arc::new(Semaphore::new(4));
        let caps = Caps::new(slots.clone(), 4);
        let held = slots.clone().acquire_many_owned(3).await.unwrap();
        caps.set_max(6);
        assert_eq!(slots.available_permits(), 3);
        caps.set_max(2);
        assert_eq!(slots.available_permits(), 0, "the free ones go at once");
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while slots.available_permits() != 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the rest go as tasks end");
        assert_eq!(caps.limits().max_concurrent_tasks, 2);
    }
}

//! The host-wide budget for plugin memory: the linear memories of all calls at once stay within
//! it. A call that grows its memory takes the growth from the budget and gives it all back when
//! it ends; when there is no room it waits (at most [`WAIT`]) for other calls to end, then fails
//! with a retryable `host_memory_exhausted` instead of pushing the host into the OOM killer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget is counted in WebAssembly pages.
const PAGE: usize = 64 << 10;
/// Longest a growing call waits for room.
pub const WAIT: Duration = Duration::from_secs(2);

/// The budget of a host. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    pages: Arc<Semaphore>,
    bytes: usize,
}

impl MemoryBudget {
    /// A budget of `bytes` (at least one page).
    pub fn new(bytes: usize) -> MemoryBudget {
        let pages = (bytes / PAGE).clamp(1, Semaphore::MAX_PERMITS);
        MemoryBudget { pages: Arc::new(Semaphore::new(pages)), bytes: pages * PAGE }
    }

    /// This machine's memory (4 GiB when it cannot be read). Linear memory is counted at its
    /// size, most of which plugins never touch: agents waiting on the network use far less than
    /// they reserve, so the default does not hold back more than the machine could give.
    pub fn for_this_machine() -> MemoryBudget {
        MemoryBudget::new(physical_memory().unwrap_or(4 << 30))
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What one call holds of the budget.
#[derive(Debug)]
pub(crate) struct Held {
    budget: MemoryBudget,
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    pub fn new(budget: MemoryBudget) -> Held {
        Held { budget, permit: None }
    }

    /// Hold enough for a linear memory of `bytes`; `false` when no room came within [`WAIT`].
    pub async fn grow_to(&mut self, bytes: usize) -> bool {
        let held = self.permit.as_ref().map_or(0, |p| p.num_permits());
        // A memory larger than the whole budget may still run alone.
        let wanted = bytes.div_ceil(PAGE).min(self.budget.bytes / PAGE);
        if wanted <= held {
            return true;
        }
        let more = (wanted - held) as u32;
        let taken = tokio::time::timeout(WAIT, self.budget.pages.clone().acquire_many_owned(more)).await;
        match taken {
            Ok(Ok(permit)) => {
                match &mut self.permit {
                    Some(p) => p.merge(permit),
                    None => self.permit = Some(permit),
                }
                true
            }
            _ => false,
        }
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn physical_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn growth_waits_for_room_and_ends_give_it_back() {
        let budget = MemoryBudget::new(10 * PAGE);
        let mut a = Held::new(budget.clone());
        assert!(a.grow_to(6 * PAGE).await);
        assert!(a.grow_to(6 * PAGE - 1).await, "no more needed");
        let mut b = Held::new(budget.clone());
        let started = tokio::time::Instant::now();
        let release = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(a);
        };
        let (grown, ()) = tokio::join!(b.grow_to(8 * PAGE), release);
        assert!(grown && started.elapsed() >= Duration::from_millis(200));
        let mut c = Held::new(budget.clone());
        assert!(!c.grow_to(4 * PAGE).await, "no room within the wait");
        assert!(!Held::new(budget).grow_to(100 * PAGE).await, "the rest is held by b");
        drop(b);
    }

    #[test]
    fn this_machine_has_a_budget() {
        assert!(MemoryBudget::for_this_machine().bytes() >= PAGE);
    }
}

//! Budgets while attempts run: one ledger per workflow with a budget, shared by that workflow's
//! attempts running on this host, so concurrent attempts spend one budget, not one each.
//!
//! A ledger starts from the workflow's usage as its claim read it and adds every request and
//! token its attempts spend; a later claim's figure (which also holds other hosts' spending) is
//! taken when larger. On one host the count is exact; hosts sharing a workflow may together
//! overshoot by the requests they have in flight at the same moment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::plugins::EgressBudget;
use crate::workflow::{Budget, Exhausted, Usage};

/// The ledgers of the workflows with running attempts here, by workflow id.
#[derive(Debug, Default)]
pub(super) struct Ledgers {
    by_workflow: Mutex<HashMap<String, Arc<Ledger>>>,
}

#[derive(Debug)]
struct Ledger {
    state: Mutex<(Budget, Usage)>,
}

impl Ledgers {
    /// The budget handle of one attempt of `workflow_id`, whose claim read `budget` and `used`.
    /// Refusing a request cancels the attempt through `cancel`.
    pub fn attempt(
        self: &Arc<Self>,
        workflow_id: &str,
        budget: Budget,
        used: Usage,
        cancel: CancellationToken,
    ) -> Arc<AttemptBudget> {
        let mut map = self.by_workflow.lock().unwrap_or_else(|e| e.into_inner());
        let ledger = map
            .entry(workflow_id.to_string())
            .or_insert_with(|| Arc::new(Ledger { state: Mutex::new((budget, used)) }))
            .clone();
        {
            let mut state = ledger.state.lock().unwrap_or_else(|e| e.into_inner());
            *state = (budget, state.1.max(used));
        }
        Arc::new(AttemptBudget {
            ledgers: self.clone(),
            workflow_id: workflow_id.to_string(),
            ledger,
            cancel,
            exhausted: OnceLock::new(),
        })
    }
}

/// One attempt's view of its workflow's ledger.
#[derive(Debug)]
pub(super) struct AttemptBudget {
    ledgers: Arc<Ledgers>,
    workflow_id: String,
    ledger: Arc<Ledger>,
    cancel: CancellationToken,
    exhausted: OnceLock<Exhausted>,
}

impl AttemptBudget {
    /// The limit that refused one of this attempt's requests, if one did.
    pub fn exhausted(&self) -> Option<Exhausted> {
        self.exhausted.get().cloned()
    }
}

impl EgressBudget for AttemptBudget {
    fn admit(&self) -> Result<(), String> {
        let mut state = self.ledger.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.0.admit(state.1) {
            Ok(()) => {
                state.1.egress_requests += 1;
                Ok(())
            }
            Err(e) => {
                let reason = format!("budget_exhausted: {e}");
                let _ = self.exhausted.set(e);
                // The attempt stops here; it runs again when the workflow is resumed.
                self.cancel.cancel();
                Err(reason)
            }
        }
    }

    fn spend_tokens(&self, tokens: u64) {
        let mut state = self.ledger.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1.llm_tokens += tokens;
    }
}

impl Drop for AttemptBudget {
    fn drop(&mut self) {
        let mut map = self.ledgers.by_workflow.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and this one: no other attempt of the workflow runs here.
        if Arc::strong_count(&self.ledger) == 2 {
            map.remove(&self.workflow_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(requests: u64) -> Budget {
        Budget { max_egress_requests: Some(requests), ..Default::default() }
    }

    #[test]
    fn concurrent_attempts_share_one_budget() {
        let ledgers = Arc::new(Ledgers::default());
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let first = ledgers.attempt("w", budget(3), Usage::default(), a.clone());
        let second = ledgers.attempt("w", budget(3), Usage::default(), b.clone());
        assert!(first.admit().is_ok());
        assert!(second.admit().is_ok());
        assert!(first.admit().is_ok());
        let refused = second.admit().unwrap_err();
        assert!(refused.starts_with("budget_exhausted: "), "{refused}");
        assert_eq!(second.exhausted().map(|e| e.used), Some(3));
        assert!(b.is_cancelled() && !a.is_cancelled());
        assert!(first.exhausted().is_none());
    }

    #[test]
    fn a_ledger_lives_while_its_attempts_run_and_takes_the_larger_usage() {
        let ledgers = Arc::new(Ledgers::default());
        let first = ledgers.attempt("w", budget(10), Usage::default(), CancellationToken::new());
        first.spend_tokens(5);
        // A later claim saw 4 requests (another host's) and fewer tokens than counted here.
        let used = Usage { egress_requests: 4, llm_tokens: 1 };
        let second = ledgers.attempt("w", budget(5), used, CancellationToken::new());
        assert!(second.admit().is_ok(), "4 of 5 used");
        assert!(first.admit().is_err(), "the later claim's budget holds for both");
        drop((first, second));
        assert!(ledgers.by_workflow.lock().unwrap().is_empty());
        let again = ledgers.attempt("w", budget(5), Usage::default(), CancellationToken::new());
        assert!(again.admit().is_ok(), "a new ledger starts from the claim's figure");
    }
}

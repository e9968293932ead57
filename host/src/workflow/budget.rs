//! Workflow budgets: limits on what a workflow's agents may spend on outbound requests and
//! language-model tokens, and the rule that admits or refuses the next request (pure, no I/O).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a workflow may spend, over all its tasks and attempts. A missing limit is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Language-model tokens (prompt + completion, as the model APIs report them in `usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_llm_tokens: Option<u64>,
    /// Outbound HTTP requests sent (requests the allow-list refused are not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_egress_requests: Option<u64>,
}

/// Tokens a language-model API reported using (`usage` of an OpenAI- or Anthropic-style response).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl LlmUsage {
    /// Prompt and completion tokens together, as budgets count them.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// What a workflow has spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub egress_requests: u64,
    pub llm_tokens: u64,
}

impl Usage {
    /// Whether nothing was spent.
    pub fn is_zero(&self) -> bool {
        self.egress_requests == 0 && self.llm_tokens == 0
    }

    /// Add what `other` spent.
    pub fn add(&mut self, other: Usage) {
        self.egress_requests += other.egress_requests;
        self.llm_tokens += other.llm_tokens;
    }

    /// The larger of each figure.
    pub fn max(self, other: Usage) -> Usage {
        Usage {
            egress_requests: self.egress_requests.max(other.egress_requests),
            llm_tokens: self.llm_tokens.max(other.llm_tokens),
        }
    }
}

/// A budget that refused a request: which limit, its value, and what was spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Exhausted {
    /// `max_llm_tokens` or `max_egress_requests`.
    pub budget: String,
    pub limit: u64,
    pub used: u64,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the workflow's budget `{}` = {} is spent ({} used): raise it with PUT /v1/workflows/{{id}}/budget, \
             then resume the workflow",
            self.budget, self.limit, self.used
        )
    }
}

impl Budget {
    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.max_llm_tokens.is_none() && self.max_egress_requests.is_none()
    }

    /// Admit one more request after `used`, or say which limit it would exceed. Tokens are only
    /// known after a response, so a request is refused once the tokens used reach the limit.
    pub fn admit(&self, used: Usage) -> Result<(), Exhausted> {
        let over = |budget: &str, limit: Option<u64>, used: u64| {
            limit.filter(|l| used >= *l).map(|limit| Exhausted { budget: budget.into(), limit, used })
        };
        match over("max_egress_requests", self.max_egress_requests, used.egress_requests)
            .or_else(|| over("max_llm_tokens", self.max_llm_tokens, used.llm_tokens))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(egress_requests: u64, llm_tokens: u64) -> Usage {
        Usage { egress_requests, llm_tokens }
    }

    #[test]
    fn requests_are_admitted_up_to_the_limit() {
        let b = Budget { max_egress_requests: Some(2), ..Default::default() };
        assert!(b.admit(used(0, 0)).is_ok());
        assert!(b.admit(used(1, 1_000_000)).is_ok());
        let e = b.admit(used(2, 0)).unwrap_err();
        assert_eq!((e.budget.as_str(), e.limit, e.used), ("max_egress_requests", 2, 2));
    }

    #[test]
    fn tokens_refuse_once_reached() {
        let b = Budget { max_llm_tokens: Some(100), ..Default::default() };
        assert!(b.admit(used(50, 99)).is_ok());
        let e = b.admit(used(0, 130)).unwrap_err();
        assert_eq!((e.budget.as_str(), e.used), ("max_llm_tokens", 130));
        assert!(e.to_string().contains("`max_llm_tokens` = 100"), "{e}");
    }

    #[test]
    fn no_limit_admits_everything() {
        assert!(Budget::default().is_unlimited());
        assert!(Budget::default().admit(used(u64::MAX, u64::MAX)).is_ok());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_str::<Budget>(r#"{"max_tokens": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_tokens`"), "{e}");
    }
}

//! Rate limits per token on submissions and control calls: a token bucket per (token, kind) on
//! each host, refilled at `rate` per second up to `burst`. A request past it is a 429 with
//! `Retry-After`. Requests without a token (an open loopback host) are not limited.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::error::{ApiError, ErrorCode};
use crate::auth::Permission;

/// A rate: `per_s` requests per second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_s: f64,
    pub burst: f64,
}

/// The buckets of one host.
pub struct RateLimits {
    submissions: Option<Rate>,
    controls: Option<Rate>,
    buckets: Mutex<HashMap<(String, bool), Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Take one request at `now`, or say how long until one may pass.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate.per_s;
        self.tokens = (self.tokens + refill).min(rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_s.max(1e-9)))
    }
}

impl RateLimits {
    /// Limits on submissions and on controls (`None`: unlimited).
    pub fn new(submissions: Option<Rate>, controls: Option<Rate>) -> RateLimits {
        RateLimits { submissions, controls, buckets: Mutex::new(HashMap::new()) }
    }

    /// Let one request needing `permission` by `token_id` pass, or refuse it with a 429.
    pub fn check(&self, token_id: &str, permission: Permission) -> Result<(), ApiError> {
        let (rate, what, controls) = match permission {
            Permission::Submit => (self.submissions, "submissions", false),
            Permission::Operate => (self.controls, "control calls", true),
            _ => return Ok(()),
        };
        let Some(rate) = rate else { return Ok(()) };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry((token_id.to_string(), controls)).or_insert(Bucket { tokens: rate.burst, at: now });
        bucket.take(rate, now).map_err(|wait| {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::new(ErrorCode::RateLimited,
                format!(
                    "this token sent more {what} than this host accepts ({} per second, {} at once): retry in {seconds} s",
                    rate.per_s, rate.burst
                ),
            )
            .details(json!({ "retry_after_s": seconds, "per_s": rate.per_s, "burst": rate.burst }))
            .retry_after(seconds)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn a_bucket_lets_a_burst_pass_then_the_rate() {
        let rate = Rate { per_s: 2.0, burst: 3.0 };
        let t0 = Instant::now();
        let mut b = Bucket { tokens: rate.burst, at: t0 };
        for _ in 0..3 {
            assert!(b.take(rate, t0).is_ok());
        }
        let wait = b.take(rate, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(b.take(rate, t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(rate, t0 + Duration::from_millis(500)).is_err());
        assert!(b.take(rate, t0 + Duration::from_secs(60)).is_ok(), "refilled, up to the burst");
    }

    #[test]
    fn limits_are_per_token_and_per_kind() {
        let limits = RateLimits::new(Some(Rate { per_s: 0.001, burst: 1.0 }), None);
        assert!(limits.check("a", Permission::Submit).is_ok());
        let err = limits.check("a", Permission::Submit).unwrap_err();
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(err.retry_after_s.unwrap() >= 1);
        assert!(limits.check("b", Permission::Submit).is_ok());
        assert!(limits.check("a", Permission::Operate).is_ok(), "controls are unlimited here");
        assert!(limits.check("a", Permission::Read).is_ok());
    }
}

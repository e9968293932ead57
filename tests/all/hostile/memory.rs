//! The host-wide plugin memory budget: calls that together would exceed it wait for room, and a
//! call that finds none in time fails retryably instead of growing the host without bound.

use std::time::{Duration, Instant};

use hyphae::plugins::{CallOptions, MemoryBudget, Runtime};
use serde_json::json;

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_share_the_host_memory_budget() {
    let dir = support::plugins_dir(&["testkit"]);
    let mut cfg = support::config(dir.path());
    cfg.memory_budget = MemoryBudget::new(100 << 20);
    let rt = Runtime::start(cfg).await.unwrap();
    let alloc = |hold_ms: u64| support::task("testkit", json!({"action": "alloc", "mib": 50, "hold_ms": hold_ms}));

    // Two calls of 50+ MiB do not fit in 100 MiB at once: the second waits for the first.
    let started = Instant::now();
    let (a, b) = tokio::join!(rt.execute(alloc(600), CallOptions::default()), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rt.execute(alloc(0), CallOptions::default()).await
    });
    assert!(a.result.is_ok(), "{:?}", a.result);
    assert!(b.result.is_ok(), "{:?}", b.result);
    assert!(started.elapsed() >= Duration::from_millis(600), "the second call waited for room");

    // No room within the wait: a retryable failure that says what to do.
    let (a, b) = tokio::join!(rt.execute(alloc(4000), CallOptions::default()), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rt.execute(alloc(0), CallOptions::default()).await
    });
    assert!(a.result.is_ok(), "{:?}", a.result);
    let f = b.result.unwrap_err();
    assert_eq!((f.error_type.as_str(), f.retryable), ("host_memory_exhausted", true), "{f:?}");
    assert!(f.message.contains("plugin_memory_budget_mib"), "{}", f.message);

    // Everything was given back.
    let c = rt.execute(alloc(0), CallOptions::default()).await;
    assert!(c.result.is_ok(), "{:?}", c.result);
}

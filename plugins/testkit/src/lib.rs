//! `testkit`: an executor whose behaviour the host's tests choose through the input.
//!
//! `{"action": "sleep", "ms": 200}` waits on the WASI monotonic clock (no CPU burnt);
//! `fail_times` (`times`) fails with retryable `flaky` while the attempt is `<= times`;
//! `fatal` / `error` return a fatal / retryable error (`error_type`, `message` optional);
//! `panic` (`message`) panics; `loop` spins forever; `alloc` (`mib`) allocates and touches memory;
//! `output` (`mib`) returns about that much JSON; `echo` returns everything the task was given;
//! `progress` (`steps`) reports progress and logs at every level. Anything else: fatal
//! `invalid_input`.

use hyphae_plugin_sdk::Value;
use hyphae_plugin_sdk::{export_executor, json, log, progress, Executor, TaskContext, TaskError};
use serde::Deserialize;

wit_bindgen::generate!({ path: "wit", world: "hyphae:testkit/imports", generate_all });

use wasi::clocks::monotonic_clock;

const MIB: usize = 1024 * 1024;

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Action {
    Sleep { ms: u64 },
    FailTimes { times: u32 },
    Fatal { error_type: Option<String>, message: Option<String> },
    Error { error_type: Option<String>, message: Option<String> },
    Panic { message: Option<String> },
    Loop,
    Alloc { mib: usize, hold_ms: Option<u64> },
    Output { mib: usize },
    Echo,
    Progress { steps: Option<u8> },
}

struct Testkit;

impl Executor for Testkit {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        let text = |s: Option<String>, default: &str| s.unwrap_or_else(|| default.to_string());
        match ctx.input()? {
            Action::Sleep { ms } => {
                let start = monotonic_clock::now();
                monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
                let elapsed_ms = (monotonic_clock::now() - start) / 1_000_000;
                Ok(json!({ "slept_ms": ms, "elapsed_ms": elapsed_ms }))
            }
            Action::FailTimes { times } if ctx.attempt <= times => {
                Err(TaskError::retryable("flaky", format!("attempt {} fails (failing {times} times)", ctx.attempt)))
            }
            Action::FailTimes { .. } => Ok(json!({ "attempt": ctx.attempt })),
            Action::Fatal { error_type, message } => {
                Err(TaskError::fatal(text(error_type, "fatal_test"), text(message, "testkit: fatal error on request")))
            }
            Action::Error { error_type, message } => Err(TaskError::retryable(
                text(error_type, "test_error"),
                text(message, "testkit: retryable error on request"),
            )
            .with_detail(json!({ "attempt": ctx.attempt }))),
            Action::Panic { message } => panic!("{}", text(message, "testkit: panic on request")),
            Action::Loop => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Action::Alloc { mib, hold_ms } => {
                let mut block: Vec<u8> = Vec::new();
                if let Err(e) = block.try_reserve_exact(mib.saturating_mul(MIB)) {
                    panic!("testkit: cannot allocate {mib} MiB: {e}");
                }
                block.resize(mib * MIB, 1); // touches every byte
                let sum: usize = block.iter().step_by(4096).map(|&b| b as usize).sum();
                if let Some(ms) = hold_ms {
                    monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
                }
                Ok(json!({ "allocated_mib": mib, "pages_touched": sum }))
            }
            Action::Output { mib } => Ok(json!({ "mib": mib, "data": "x".repeat(mib * MIB) })),
            Action::Echo => Ok(json!({
                "input": ctx.input,
                "variables": ctx.variables,
                "context": ctx.context,
                "metadata": ctx.metadata,
                "previous_results": ctx.previous_results,
                "handoffs": ctx.handoffs,
                "attempt": ctx.attempt,
                "task_id": ctx.task_id,
                "workflow_id": ctx.workflow_id,
                "agent": ctx.agent,
            })),
            Action::Progress { steps } => {
                let steps = steps.unwrap_or(4).max(1);
                for step in 0..=steps {
                    let percent = (step as u32 * 100 / steps as u32) as u8;
                    progress(percent, &format!("step {step} of {steps}"));
                }
                log::trace!("testkit: trace line");
                log::debug!("testkit: debug line");
                log::info!("testkit: info line");
                log::warn!("testkit: warn line");
                log::error!("testkit: error line");
                Ok(json!({ "steps": steps }))
            }
        }
    }
}

export_executor!(Testkit);

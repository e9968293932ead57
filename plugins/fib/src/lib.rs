//! `fib`: naive recursive Fibonacci, a CPU-bound task of tunable cost.

use hyphae_plugin_sdk::{export_executor, json, Executor, TaskContext, TaskError, Value};
use serde::Deserialize;

/// `{"n": 30}`; `fib(93)` is the largest that fits in a `u64`.
#[derive(Deserialize)]
struct Input {
    n: u32,
}

struct Fib;

impl Executor for Fib {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        let Input { n } = ctx.input()?;
        if n > 93 {
            return Err(TaskError::invalid_input(format!("n = {n}: at most 93")));
        }
        Ok(json!({ "n": n, "value": fib(n) }))
    }
}

fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

export_executor!(Fib);

#[cfg(test)]
mod tests {
    #[test]
    fn fib() {
        assert_eq!([0, 1, 1, 2, 3, 5, 55], [0, 1, 2, 3, 4, 5, 10].map(super::fib));
    }
}

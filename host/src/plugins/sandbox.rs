//! The engine's view of the runtime.

use futures::future::BoxFuture;

use super::{CallOptions, Execution, Runtime, Sandbox, TaskContext, Validation};

impl Sandbox for Runtime {
    fn has_executor(&self, agent_type: &str) -> bool {
        self.registry().has_executor(agent_type)
    }

    fn served(&self) -> Option<std::collections::BTreeMap<String, String>> {
        Some(self.registry().served())
    }

    fn manifest_timeout(&self, agent_type: &str) -> Option<std::time::Duration> {
        Runtime::manifest_timeout(self, agent_type)
    }

    fn execute(&self, ctx: TaskContext, opts: CallOptions) -> BoxFuture<'_, Execution> {
        Box::pin(Runtime::execute(self, ctx, opts))
    }

    fn validate<'a>(&'a self, agent_type: &'a str, handoff: &'a str, opts: CallOptions) -> BoxFuture<'a, Validation> {
        Box::pin(Runtime::validate(self, agent_type, handoff, opts))
    }
}

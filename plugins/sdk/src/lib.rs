//! Rust guest SDK for Hyphae plugins.
//!
//! A plugin is a WebAssembly component that performs the tasks of one agent type (an
//! [`Executor`]), accepts or rejects handoffs into its agent type (a [`Validator`]), or both.
//! Writing one takes a struct, a trait impl and an export macro; the SDK parses the JSON that
//! crosses the WIT boundary (`wit/plugin.wit`) once, with serde.
//!
//! ```
//! use hyphae_plugin_sdk::{export_executor, json, Executor, TaskContext, TaskError, Value};
//! use serde::Deserialize;
//!
//! /// `{"n": 30}`
//! #[derive(Deserialize)]
//! struct Input {
//!     n: u32,
//! }
//!
//! struct Fib;
//!
//! impl Executor for Fib {
//!     fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
//!         let Input { n } = ctx.input()?; // bad input: fatal `invalid_input`
//!         if n > 93 {
//!             return Err(TaskError::invalid_input(format!("n = {n}: at most 93")));
//!         }
//!         Ok(json!({ "n": n, "value": fib(n) }))
//!     }
//! }
//!
//! fn fib(n: u32) -> u64 {
//!     if n < 2 {
//!         n as u64
//!     } else {
//!         fib(n - 1) + fib(n - 2)
//!     }
//! }
//!
//! export_executor!(Fib);
//! ```
//!
//! Its `Cargo.toml` declares `crate-type = ["cdylib"]` and depends on `hyphae-plugin-sdk` and
//! `serde`.
//!
//! Build the crate as a `cdylib` for `wasm32-unknown-unknown` and turn the module into a component
//! (`plugins/build.sh` does both). [`export_validator!`] and [`export_agent!`] work the same way
//! for [`Validator`] and for a type implementing both traits. [`Executor::describe`] has a default:
//! version and description come from the plugin crate's `Cargo.toml`, and the agent type is left
//! to the file name.
//!
//! Beyond `log` and `progress`, executors get what their agent type's manifest (`NAME.toml`
//! beside `NAME.wasm`) grants: [`config`] values, [`secret`] placeholders, outbound [`http`] to
//! `allowed_outbound_hosts`, and on top of those an OpenAI-compatible [`llm`] client.
//!
//! A panic is written to the host log at error level (`panicked at src/lib.rs:3:5: message`)
//! and then aborts the instance (a trap), which fails the task attempt.

extern crate self as hyphae_plugin_sdk;

#[doc(hidden)]
pub mod bindings;
pub mod config;
pub mod http;
pub mod llm;
pub mod log;
pub mod secret;
mod types;

#[doc(hidden)]
#[path = "rt.rs"]
pub mod __private;

pub use serde_json::{self, json, Value};
pub use types::*;

/// Performs the tasks of an agent type.
pub trait Executor {
    /// Describes the plugin. Empty fields are filled in from the crate's `Cargo.toml`.
    fn describe() -> Info {
        Info::default()
    }

    /// Performs one attempt of a task; the returned JSON is the task's output.
    fn execute(ctx: TaskContext) -> Result<Value, TaskError>;
}

/// Accepts or rejects handoff messages whose target is this plugin's agent type.
pub trait Validator {
    /// Describes the plugin (for [`export_agent!`], [`Executor::describe`] is used instead).
    fn describe() -> Info {
        Info::default()
    }

    /// `Ok(())` accepts the handoff; `Err` rejects it with the issues found.
    fn validate(handoff: Value) -> Result<(), Vec<Issue>>;
}

/// Reports progress of the current task: `percent` (clamped to 100) and what is happening.
pub fn progress(percent: u8, note: &str) {
    let percent = percent.min(100);
    #[cfg(target_arch = "wasm32")]
    bindings::hyphae::plugin::host::progress(percent, note);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[progress {percent}%] {note}");
}

/// Exports `$plugin` (an [`Executor`]) as world `executor-plugin`.
#[macro_export]
macro_rules! export_executor {
    ($plugin:ty) => {
        $crate::__export_metadata!($plugin, $crate::Executor);
        $crate::__export_executor!($plugin);
        $crate::__export_world!(EXECUTOR_WORLD, "component-type:hyphae-sdk:executor-plugin");
    };
}

/// Exports `$plugin` (a [`Validator`]) as world `validator-plugin`.
#[macro_export]
macro_rules! export_validator {
    ($plugin:ty) => {
        $crate::__export_metadata!($plugin, $crate::Validator);
        $crate::__export_validator!($plugin);
        $crate::__export_world!(VALIDATOR_WORLD, "component-type:hyphae-sdk:validator-plugin");
    };
}

/// Exports `$plugin` (both an [`Executor`] and a [`Validator`]) as world `agent-plugin`.
#[macro_export]
macro_rules! export_agent {
    ($plugin:ty) => {
        $crate::__export_metadata!($plugin, $crate::Executor);
        $crate::__export_executor!($plugin);
        $crate::__export_validator!($plugin);
        $crate::__export_world!(AGENT_WORLD, "component-type:hyphae-sdk:agent-plugin");
    };
}

// The `__export_*` helpers below implement the generated `Guest` traits on private unit structs and
// invoke wit-bindgen's per-interface export glue. Exports exist only on wasm32: native builds (unit
// tests of plugin logic) just check that the plugin type implements the right trait.

#[doc(hidden)]
#[macro_export]
#[rustfmt::skip] // rustfmt mangles the `with_types_in` syntax of wit-bindgen's macros
macro_rules! __export_metadata {
    ($plugin:ty, $trait:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct HyphaeMetadata;
            impl $crate::__private::MetadataGuest for HyphaeMetadata {
                fn describe() -> $crate::__private::WitPluginInfo {
                    let info = <$plugin as $trait>::describe();
                    let version = env!("CARGO_PKG_VERSION");
                    $crate::__private::describe(info, version, env!("CARGO_PKG_DESCRIPTION"))
                }
            }
            $crate::__export_hyphae_plugin_metadata_0_1_0_cabi!(HyphaeMetadata with_types_in
                $crate::__private::bindings::exports::hyphae::plugin::metadata);
        };
    };
}

#[doc(hidden)]
#[macro_export]
#[rustfmt::skip]
macro_rules! __export_executor {
    ($plugin:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__private::assert_executor::<$plugin>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct HyphaeExecutor;
            impl $crate::__private::ExecutorGuest for HyphaeExecutor {
                fn execute(
                    ctx: $crate::__private::WitTaskContext,
                ) -> Result<String, $crate::__private::WitTaskError> {
                    $crate::__private::execute::<$plugin>(ctx)
                }
            }
            $crate::__export_hyphae_plugin_executor_0_1_0_cabi!(HyphaeExecutor with_types_in
                $crate::__private::bindings::exports::hyphae::plugin::executor);
        };
    };
}

#[doc(hidden)]
#[macro_export]
#[rustfmt::skip]
macro_rules! __export_validator {
    ($plugin:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__private::assert_validator::<$plugin>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct HyphaeValidator;
            impl $crate::__private::ValidatorGuest for HyphaeValidator {
                fn validate(handoff: String) -> Result<(), Vec<$crate::__private::WitIssue>> {
                    $crate::__private::validate::<$plugin>(handoff)
                }
            }
            $crate::__export_hyphae_plugin_validator_0_1_0_cabi!(HyphaeValidator with_types_in
                $crate::__private::bindings::exports::hyphae::plugin::validator);
        };
    };
}

/// Puts the world's component-type metadata into the plugin's module (see `build.rs`).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($world:ident, $section:literal) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(link_section = $section)]
            #[used]
            static WORLD: [u8; $crate::__private::$world.len()] =
                $crate::__private::world_bytes($crate::__private::$world);
        };
    };
}

//! Errors of the plugin runtime: what failed, and what the operator can do about it.

use std::path::PathBuf;

/// Why a plugin could not be loaded, installed or checked, or the runtime not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read or written.
    #[error("cannot access `{path}`: {reason}")]
    Io { path: PathBuf, reason: String },
    /// The bytes are not WebAssembly at all.
    #[error(
        "`{file}` is not a WebAssembly binary: build a WebAssembly component (wasm32-wasip2, \
         cargo component, componentize-py or jco) and copy the resulting .wasm file"
    )]
    NotWasm { file: String },
    /// A core module where a component is needed.
    #[error(
        "`{file}` is a core WebAssembly module, not a component: build it as a component \
         (wasm32-wasip2, cargo component, or `wasm-tools component new`)"
    )]
    CoreModule { file: String },
    /// The component binary is malformed or uses features the host does not support.
    #[error("`{file}` is not a valid component: {reason}")]
    Invalid { file: String, reason: String },
    /// A `NAME.validator.wasm` file whose component exports no validator.
    #[error(
        "`{file}` is named as a validator but does not export `hyphae:plugin/validator@0.1.x`: \
         rename it to drop `.validator`, or build it against the validator-plugin world"
    )]
    NotAValidator { file: String },
    /// The component exports neither an executor nor a validator.
    #[error(
        "`{file}` exports neither `hyphae:plugin/executor@0.1.x` nor \
         `hyphae:plugin/validator@0.1.x` (it exports: {exports}): build it against a world of \
         the `hyphae:plugin` WIT package (executor-plugin, validator-plugin or agent-plugin)"
    )]
    NoRoles { file: String, exports: String },
    /// An exported interface does not have the functions or types of the contract.
    #[error(
        "`{file}` exports `{interface}` with the wrong shape ({reason}): rebuild it against \
         a `hyphae:plugin@0.1.x` WIT package (this host speaks 0.1.0)"
    )]
    BadExport { file: String, interface: String, reason: String },
    /// The component imports something the host does not provide.
    #[error(
        "`{file}` imports `{import}`, which the host does not provide: plugins may import only \
         {allowed} (granting nothing beyond the agent type's manifest); remove that dependency \
         from the plugin"
    )]
    UnsupportedImport { file: String, import: String, allowed: String },
    /// The component imports host interfaces in a shape this host does not have.
    #[error(
        "`{file}` cannot be linked against the host's interfaces ({reason}): rebuild it against \
         `hyphae:plugin@0.1.x` and WASI 0.2"
    )]
    ImportMismatch { file: String, reason: String },
    /// The component could not be instantiated, or `describe` failed.
    #[error("`{file}` failed to start: {reason}")]
    Startup { file: String, reason: String },
    /// The plugin's self-declared agent type differs from the one it is installed as.
    #[error(
        "`{file}` declares agent type `{declared}` but is installed as `{expected}`: install it \
         under `{declared}` or change the agent type it reports from `describe`"
    )]
    AgentTypeMismatch { file: String, declared: String, expected: String },
    /// An agent type that cannot be used as a file name.
    #[error(
        "`{name}` is not a valid agent type: use letters, digits, `-` and `_` (at most 128 \
         characters)"
    )]
    InvalidAgentType { name: String },
    /// Installing needs a plugins directory.
    #[error("no plugins directory is configured: start the host with a plugins directory")]
    NoPluginsDir,
    /// Another file already serves the agent type.
    #[error("agent type `{agent_type}` is already served by `{other}`: remove one of the two files")]
    Conflict { agent_type: String, other: String },
    /// The agent type's manifest (`NAME.toml`) cannot be used.
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    /// The wasmtime engine could not be created.
    #[error("cannot start the WebAssembly engine: {reason}")]
    Engine { reason: String },
}

impl PluginError {
    pub(crate) fn io(path: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        PluginError::Io { path: path.into(), reason: err.to_string() }
    }
}

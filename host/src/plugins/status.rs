//! What the registry and `hyphae plugin check` report about plugins.

use std::path::PathBuf;

use serde::Serialize;

use super::{PluginError, Policy};

/// A role a component plays, by the contract interface it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Exports `hyphae:plugin/executor`.
    Executor,
    /// Exports `hyphae:plugin/validator`.
    Validator,
    /// Exports `hyphae:plugin/metadata`.
    Metadata,
}

/// The world of the `hyphae:plugin` package that a set of roles corresponds to.
pub fn world_of(roles: &[Role]) -> &'static str {
    match (roles.contains(&Role::Executor), roles.contains(&Role::Validator)) {
        (true, true) => "agent-plugin",
        (true, false) => "executor-plugin",
        (false, true) => "validator-plugin",
        (false, false) => "none",
    }
}

/// What a plugin says about itself through `metadata.describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    /// Agent type it declares, if any.
    pub agent_type: Option<String>,
    pub version: String,
    pub description: String,
}

/// Whether a plugin file is in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    Loaded,
    Failed,
}

/// One file of the plugins directory, as the registry sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// Agent type served (for `NAME.validator.wasm`: the type it validates for).
    pub agent_type: String,
    pub path: PathBuf,
    /// Roles in service from this file (a `NAME.validator.wasm` serves only as validator).
    pub roles: Vec<Role>,
    /// The `hyphae:plugin` world the roles correspond to.
    pub world: String,
    /// Content digest `sha256:<hex>`; empty when the file could not be read.
    pub digest: String,
    pub state: PluginState,
    /// What is wrong and what to do, when `state` is `failed`.
    pub error: Option<String>,
    /// Self-description, when the plugin exports `metadata`.
    pub info: Option<PluginInfo>,
    /// Whether the compiled code came from the on-disk cache (no compilation at load).
    pub from_cache: bool,
    /// What the version in service may do (from its manifest); absent when none is in service.
    pub policy: Option<Policy>,
}

/// What `check_file` found in a component file.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    pub path: PathBuf,
    /// Agent type it would serve: declared by the plugin, else the file name.
    pub agent_type: String,
    /// Content digest `sha256:<hex>`.
    pub digest: String,
    pub roles: Vec<Role>,
    pub world: String,
    pub info: Option<PluginInfo>,
    /// Names of the component's imports.
    pub imports: Vec<String>,
    /// Names of the component's exports.
    pub exports: Vec<String>,
    /// The policy of the manifest beside the file (`NAME.toml`), when there is one; secret names
    /// are not checked against a host configuration.
    pub policy: Option<Policy>,
    /// The problem that keeps the host from loading it, if any.
    #[serde(serialize_with = "problem_text")]
    pub problem: Option<PluginError>,
}

fn problem_text<S: serde::Serializer>(p: &Option<PluginError>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(err) => s.serialize_some(&err.to_string()),
        None => s.serialize_none(),
    }
}

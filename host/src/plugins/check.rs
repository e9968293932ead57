//! `check_file`: everything the host would find out loading a component, without a plugins dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::loader::{self, display_name};
use super::manifest;
use super::runtime::{RuntimeConfig, Shared};
use super::status::{world_of, PluginReport};
use super::PluginError;

/// Loads `path` the way the registry would (compile, link, instantiate, `describe`, with the
/// manifest `NAME.toml` beside it) and reports what it is. A file the host would refuse gives a report with `problem` set; only an unreadable
/// file or an engine that cannot start is an `Err`. With `cache_dir`, the compiled code is kept
/// there (as `hyphae plugin call` keeps it), so checking a large component once spares the next call.
pub async fn check_file(path: &Path, cache_dir: Option<PathBuf>) -> Result<PluginReport, PluginError> {
    let bytes = tokio::fs::read(path).await.map_err(|e| PluginError::io(path, &e))?;
    let config =
        RuntimeConfig { cache_dir, pooling: false, watch: false, max_instances: 1, ..RuntimeConfig::default() };
    let shared = Arc::new(Shared::new(config)?);
    let stem = display_name(path).strip_suffix(".wasm").map(str::to_string).unwrap_or_else(|| display_name(path));
    let validator_for = stem.strip_suffix(".validator").map(str::to_string);
    let digest = loader::digest_of(&bytes);
    let manifest = path.with_file_name(format!("{}.toml", validator_for.as_deref().unwrap_or(&stem)));
    let policy = match tokio::fs::read_to_string(&manifest).await {
        Ok(text) => Some(manifest::parse(&display_name(&manifest), &text, None)),
        Err(_) => None,
    };
    let mut report = PluginReport {
        path: path.to_path_buf(),
        agent_type: validator_for.clone().unwrap_or_else(|| stem.clone()),
        digest,
        roles: Vec::new(),
        world: world_of(&[]).to_string(),
        info: None,
        imports: Vec::new(),
        exports: Vec::new(),
        policy: policy.clone().and_then(Result::ok),
        problem: None,
    };
    if let Some(Err(err)) = policy {
        report.problem = Some(err.into());
    }
    let grants = Arc::new(report.policy.clone().unwrap_or_default());
    match loader::load(&shared, path, bytes, grants).await {
        Ok(plugin) => {
            if validator_for.is_none() {
                if let Some(declared) = plugin.info.as_ref().and_then(|i| i.agent_type.clone()) {
                    report.agent_type = declared;
                }
            } else if plugin.validator.is_none() {
                report.problem = Some(PluginError::NotAValidator { file: display_name(path) });
            }
            report.world = world_of(&plugin.roles).to_string();
            report.roles = plugin.roles.clone();
            report.info = plugin.info.clone();
            report.imports = plugin.imports.clone();
            report.exports = plugin.exports.clone();
        }
        Err((err, partial)) => {
            if let Some(p) = partial {
                report.imports = p.imports;
                report.exports = p.exports;
            }
            report.problem.get_or_insert(err);
        }
    }
    Ok(report)
}

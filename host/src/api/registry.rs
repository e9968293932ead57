//! The host's plugins, shared through the database, as the API's [`PluginAdmin`].

use axum::body::Bytes;
use futures::future::BoxFuture;
use serde_json::json;

use super::error::{ApiError, ApiResult, ErrorCode};
use super::plugins::{PluginAdmin, PluginView, PolicyView};
use crate::plugins::{PluginError, PluginState, PluginStatus};
use crate::shared_plugins::{InstallError, SharedPlugins};

impl From<PluginStatus> for PluginView {
    fn from(p: PluginStatus) -> PluginView {
        let roles = p.roles.iter().map(|r| serde_json::to_value(r).ok().and_then(|v| v.as_str().map(String::from)));
        PluginView {
            agent_type: p.agent_type,
            file: p.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            roles: roles.flatten().collect(),
            world: p.world,
            digest: p.digest,
            state: match p.state {
                PluginState::Loaded => "loaded",
                PluginState::Failed => "failed",
            }
            .into(),
            error: p.error,
            source: "directory".into(),
            version: p.info.as_ref().map(|i| i.version.clone()).filter(|v| !v.is_empty()),
            description: p.info.map(|i| i.description).filter(|d| !d.is_empty()),
            policy: p.policy.map(|policy| PolicyView {
                allowed_outbound_hosts: policy.allowed_outbound_hosts.iter().map(|h| h.to_string()).collect(),
                secrets: policy.secrets,
                config: policy.config,
                memory_limit_mib: policy.memory_limit_mib.unwrap_or_default(),
                timeout_s: policy.timeout_s,
                max_concurrency: policy.max_concurrency,
            }),
        }
    }
}

/// Why an install was refused, as an API error: the client's fault (4xx) unless the database
/// or the host could not store it.
fn refused(agent_type: &str, e: InstallError) -> ApiError {
    let e = match e {
        InstallError::Store(e) => return ApiError::from(e),
        InstallError::NotInstalled(_) => {
            return ApiError::new(ErrorCode::PluginNotFound, e.to_string()).details(json!({ "agent_type": agent_type }))
        }
        InstallError::Plugin(e) => e,
    };
    let code = match &e {
        PluginError::InvalidAgentType { .. } => ErrorCode::InvalidAgentType,
        PluginError::NoPluginsDir => ErrorCode::NoPluginsDir,
        PluginError::Conflict { .. } => ErrorCode::PluginConflict,
        PluginError::Io { .. } | PluginError::Engine { .. } => {
            return ApiError::internal("cannot install the plugin", &e);
        }
        _ => ErrorCode::PluginRefused,
    };
    ApiError::new(code, e.to_string()).details(json!({ "agent_type": agent_type }))
}

impl PluginAdmin for SharedPlugins {
    fn list(&self) -> Vec<PluginView> {
        self.registry().list().into_iter().map(|p| self.view(p)).collect()
    }

    fn loaded(&self) -> bool {
        self.registry().ready()
    }

    fn install(&self, agent_type: String, bytes: Bytes, by: String) -> BoxFuture<'_, ApiResult<PluginView>> {
        Box::pin(async move {
            let installed = SharedPlugins::install(self, &agent_type, &bytes, &by).await;
            installed.map(|p| self.view(p)).map_err(|e| refused(&agent_type, e))
        })
    }

    fn install_manifest(
        &self,
        agent_type: String,
        text: String,
        by: String,
    ) -> BoxFuture<'_, ApiResult<Vec<PluginView>>> {
        Box::pin(async move {
            let files = SharedPlugins::install_manifest(self, &agent_type, &text, &by).await;
            let files = files.map_err(|e| refused(&agent_type, e))?;
            Ok(files.into_iter().map(|p| self.view(p)).collect())
        })
    }

    fn remove(&self, agent_type: String, by: String) -> BoxFuture<'_, ApiResult<String>> {
        Box::pin(
            async move { SharedPlugins::remove(self, &agent_type, &by).await.map_err(|e| refused(&agent_type, e)) },
        )
    }
}

impl SharedPlugins {
    /// `p` as the API shows it, with where it came from.
    fn view(&self, p: PluginStatus) -> PluginView {
        let mut view = PluginView::from(p);
        if self.is_installed(&view.file, &view.digest) {
            view.source = "installed".into();
        }
        view
    }
}

//! HTTP API (axum) under `/v1`, health, metrics and OpenAPI.
//!
//! [`router`] builds the whole service from an [`AppState`]; routes are declared once, with their
//! OpenAPI description, so `/openapi.json` cannot drift from what is served.

mod auth;
pub mod connections;
mod error;
mod events;
mod extract;
mod limits;
mod ops;
mod plugins;
mod registry;
mod report;
mod runbook;
mod settings;
mod slots;
mod stream;
mod tails;
pub mod tls;
mod tokens;
mod workflows;

use std::sync::{Arc, OnceLock};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use error::{ApiError, ApiResult, ErrorCode, Problem, PROBLEM_JSON};
pub use limits::{Rate, RateLimits};
pub use plugins::{PluginAdmin, PluginView};
pub use slots::StreamSlots;
pub use tails::Tails;

use crate::auth::AuthMode;
use crate::config::Config;
use crate::engine::Engine;
use crate::telemetry::Metrics;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The engine (and through it, the store).
    pub engine: Engine,
    /// The plugin registry: list and install plugins.
    pub plugins: Arc<dyn PluginAdmin>,
    /// Metrics rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Host configuration (body limits, heartbeat threshold ...).
    pub config: Arc<Config>,
    /// Event streams open now, in all and per client.
    pub streams: Arc<StreamSlots>,
    /// The workflows' tails their event streams share.
    pub tails: Arc<Tails>,
    /// Whether requests must carry a token (from the listening address and configuration).
    pub auth_mode: AuthMode,
    /// Per-token rate limits of submissions and controls.
    pub limits: Arc<RateLimits>,
}

impl AppState {
    /// The state of a host serving `engine` and `plugins` with `config`.
    pub fn new(engine: Engine, plugins: Arc<dyn PluginAdmin>, metrics: Arc<Metrics>, config: Config) -> AppState {
        AppState {
            streams: Arc::new(StreamSlots::new(config.max_event_streams, config.max_event_streams_per_client)),
            tails: Tails::new(engine.clone()),
            auth_mode: AuthMode::for_listener(config.listen, config.insecure_no_auth),
            limits: Arc::new(RateLimits::new(
                Some(config.submission_rate).filter(|r| r.per_s > 0.0),
                Some(config.control_rate).filter(|r| r.per_s > 0.0),
            )),
            engine,
            plugins,
            metrics,
            config: Arc::new(config),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Hyphae", description = "Multi-agent workflows on sandboxed WebAssembly plugins"),
    tags(
        (name = "workflows", description = "Submit, inspect and control workflows"),
        (name = "events", description = "Coordination events, timelines and statistics"),
        (name = "plugins", description = "Executor and validator plugins"),
        (name = "operations", description = "Health, readiness, metrics and workers"),
        (name = "access", description = "API tokens and the audit log"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The `bearer` security scheme: `Authorization: Bearer TOKEN`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(
            "A token made with `hyphae token create --role ROLE` (or POST /v1/tokens). A host listening on \
             loopback only accepts requests without one until a token exists.",
        ));
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme.build()));
    }
}

/// Every route with its OpenAPI description. Body limits come from `config`.
fn routes(config: &Config) -> OpenApiRouter<AppState> {
    let json_limit = DefaultBodyLimit::max(config.max_body_bytes);
    let plugin_limit = DefaultBodyLimit::max(config.max_plugin_bytes);
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(workflows::submit, workflows::list).layer(json_limit))
        .routes(routes!(workflows::get))
        .routes(routes!(workflows::tasks))
        .routes(routes!(workflows::task))
        .routes(routes!(workflows::pause))
        .routes(routes!(workflows::resume))
        .routes(routes!(workflows::cancel))
        .routes(routes!(workflows::rollback).layer(DefaultBodyLimit::max(64 << 10)))
        .routes(routes!(workflows::budget).layer(DefaultBodyLimit::max(64 << 10)))
        .routes(routes!(workflows::versions))
        .routes(routes!(workflows::version))
        .routes(routes!(events::workflow_events))
        .routes(routes!(stream::event_stream))
        .routes(routes!(events::timeline))
        .routes(routes!(events::handoffs))
        .routes(routes!(events::agent_events))
        .routes(routes!(events::stats))
        .routes(routes!(events::retention))
        .routes(routes!(ops::workers))
        .routes(routes!(runbook::failures))
        .routes(routes!(runbook::stuck))
        .routes(routes!(runbook::reset))
        .routes(routes!(runbook::agent_types))
        .routes(routes!(runbook::outcomes))
        .routes(routes!(report::report))
        .routes(routes!(settings::get, settings::change).layer(DefaultBodyLimit::max(64 << 10)))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::install, plugins::get, plugins::remove).layer(plugin_limit))
        .routes(routes!(plugins::install_manifest))
        .routes(routes!(tokens::create, tokens::list).layer(DefaultBodyLimit::max(64 << 10)))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::audit))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
}

/// The OpenAPI document of this API, generated from the route declarations.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = routes(&Config::default()).split_for_parts().1;
        add_common_responses(&mut doc);
        doc
    })
}

/// The error responses every route may give, added where a route does not declare its own: 400
/// for a malformed path, query or body; 413 and 415 for a body; 500 (generic, with a correlation
/// id); 503 when the database cannot be reached.
fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        ResponseBuilder::new().description(description).content(PROBLEM_JSON, content).build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten();
        for op in operations {
            let has_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some();
            problems_as_problem_json(&mut op.responses);
            let mut add = |status: &str, description: &str| {
                op.responses.responses.entry(status.to_string()).or_insert_with(|| error(description).into());
            };
            if has_input {
                add("400", "Malformed path, query or body");
            }
            if op.request_body.is_some() {
                add("413", "Body too large");
                add("415", "Body of the wrong content type");
            }
            add("500", "The host failed: a generic message and `details.correlation_id`, also in its log");
            if path.starts_with("/v1/") || path == "/metrics" {
                add("401", "No token, or a token unknown or revoked: send `Authorization: Bearer TOKEN`");
                add("403", "The token's role may not do this: the message names the roles that may");
                if op.operation_id.as_deref().is_some_and(|id| LIMITED.contains(&id)) {
                    add("429", "This token sent more of these requests than the host accepts: retry after `Retry-After` seconds");
                }
                add("503", "The database cannot be reached now: retry later");
            }
        }
    }
}

/// Declare the error responses (those whose body is a `Problem`) as `application/problem+json`,
/// the media type they are served with.
fn problems_as_problem_json(responses: &mut utoipa::openapi::Responses) {
    use utoipa::openapi::RefOr;
    for response in responses.responses.values_mut() {
        let RefOr::T(response) = response else { continue };
        let is_problem = |c: &utoipa::openapi::Content| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
        if let Some(content) = response.content.get("application/json").filter(|c| is_problem(c)).cloned() {
            response.content.shift_remove("application/json");
            response.content.insert(PROBLEM_JSON.to_string(), content);
        }
    }
}

/// The operations under a per-token rate limit (submissions and controls).
const LIMITED: &[&str] = &[
    "submitWorkflow",
    "pauseWorkflow",
    "resumeWorkflow",
    "cancelWorkflow",
    "rollbackWorkflow",
    "setWorkflowBudget",
    "resetTask",
    "changeSettings",
];

/// The complete HTTP service.
pub fn router(state: AppState) -> Router {
    let (router, _) = routes(&state.config).split_for_parts();
    router
        .merge(crate::console::routes())
        .fallback(|| async {
            ApiError::new(ErrorCode::RouteNotFound, "no such route: see GET /openapi.json for the routes of this API")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method: see GET /openapi.json")
        })
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::telemetry::http::track))
        .with_state(state)
        .layer(CatchPanicLayer::custom(ops::panic_response))
        .layer(TraceLayer::new_for_http())
}

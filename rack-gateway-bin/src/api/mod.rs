//! The admin JSON API under `/api/v1` (audit and app env endpoints now; users, tokens and
//! settings later).
//!
//! Callers authenticate like on the proxy (`Authorization: Bearer <token>` or Basic) and every
//! endpoint checks its permission with the same RBAC as the proxy. Each call is itself audited.

mod audit;
mod caller;
mod env;
mod error;
mod settings;

use std::sync::Arc;

use axum::routing::{get, put};
use axum::Router;
use rack_gateway_core::audit::Keyring;
use rack_gateway_core::identity::IdentityResolver;
use rack_gateway_core::redact::SecretRules;
use rack_gateway_core::store::Store;
use rack_gateway_layers::audit::AuditWriter;
use rack_gateway_layers::forward::RackForward;
use rack_gateway_layers::redact::EnvPolicy;

pub use caller::Caller;
pub use error::ApiError;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Credential resolution, shared with the proxy.
    pub resolver: Arc<IdentityResolver>,
    /// Where the API's own audit records go.
    pub writer: AuditWriter,
    /// Keys to verify the chain with.
    pub keyring: Keyring,
    /// Anchor claims source for verification (None: anchoring is off).
    pub anchors: Option<Arc<crate::anchors::AnchorVerifier>>,
    /// The rack, for the env API (the proxy's forwarder).
    pub rack: RackForward,
    /// Which env names are secret (CONVOX_SECRET_ENV_VARS), as on the proxy.
    pub secrets: SecretRules,
    /// Per-app protected and secret env names: the same policy as the proxy's.
    pub env_policy: Arc<dyn EnvPolicy>,
    /// The settings of this process (reloaded on every change).
    pub settings: Arc<crate::settings::SettingsCache>,
}

/// The API routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/audit-logs", get(audit::list))
        .route("/api/v1/audit-logs/export", get(audit::export))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route("/api/v1/settings", get(settings::list_global))
        .route(
            "/api/v1/settings/{group}",
            put(settings::put_global_group).delete(settings::delete_global_group),
        )
        .route("/api/v1/apps/{app}/settings", get(settings::list_app))
        .route(
            "/api/v1/apps/{app}/settings/{segment}",
            put(settings::put_app).delete(settings::delete_app),
        )
        .route("/api/v1/apps/{app}/env", get(env::read).put(env::update))
        .with_state(state)
}

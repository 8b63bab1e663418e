//! The admin JSON API under `/api/v1`: audit, settings, app env, the signed-in principal
//! (`/me`) and sessions (users and tokens later).
//!
//! The API sits behind the same layers as the rack proxy, outermost first: audit (every call
//! leaves a record, refused, failed or abandoned), rescue, authenticate (`Authorization: Bearer
//! <token>` or Basic with an API token or CLI session token, or a browser's `session_token`
//! cookie, which must bring its CSRF token on unsafe methods), and authorize against the API's own route table ([`routes`]), which
//! gives each endpoint its permission and audit action. Refusals are JSON `{"error": reason}`.
//! Handlers add what only they know (see [`Caller`]).

mod audit;
mod caller;
mod env;
mod error;
mod me;
pub mod routes;
mod sessions;
mod settings;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post, put};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use rack_gateway_core::audit::Keyring;
use rack_gateway_core::identity::IdentityResolver;
use rack_gateway_core::redact::SecretRules;
use rack_gateway_core::routes::RouteTable;
use rack_gateway_core::store::Store;
use rack_gateway_layers::audit::{AuditConfig, AuditLayer, AuditWriter};
use rack_gateway_layers::authn::{AuthenticateLayer, CsrfGuard};
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::body::{self, Body, GatewayReason};
use rack_gateway_layers::forward::RackForward;
use rack_gateway_layers::redact::{BufferBudget, EnvPolicy};
use rack_gateway_layers::rescue::RescueLayer;
use rack_gateway_layers::BoxError;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use caller::Caller;
pub use error::ApiError;
pub use routes::{api_table, API_PREFIX};

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
    /// How calls are described in audit records (trusted proxies, secret names).
    pub audit: AuditConfig,
    /// The bound on env bytes buffered, shared with the proxy's redaction layer.
    pub budget: BufferBudget,
    /// Issues and checks the CSRF tokens of browser sessions.
    pub csrf: CsrfGuard,
    /// How the session cookie is set and cleared.
    pub cookies: crate::signin::cookies::CookiePolicy,
}

/// The API as one service: the layers, then the handlers.
pub type ApiService<B> = BoxCloneSyncService<Request<B>, Response<Body>, Infallible>;

/// Builds the API service once, at start-up, over its route table ([`routes::api_table`]).
pub fn service<B>(state: ApiState, table: Arc<RouteTable>) -> ApiService<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let authorize = AuthorizeLayer::new(table).prefix(API_PREFIX);
    // API records keep the whole path (`/api/v1/...`), so they are told apart from the proxy's.
    let audit = AuditLayer::new(
        state.writer.clone(),
        state.audit.clone().with_prefix("").without_query(),
    );
    // The browser's session cookie is accepted here (never on the rack proxy), with CSRF checks.
    let authenticate =
        AuthenticateLayer::new(Arc::clone(&state.resolver)).with_session_cookie(state.csrf.clone());
    let handlers = router(state);
    let service = ServiceBuilder::new()
        // One box, at the edge, for the one body type the server writes.
        .map_response(|response: Response<_>| json_refusal(response.map(body::boxed)))
        .layer(audit)
        .layer(RescueLayer::new())
        .layer(authenticate)
        .layer(authorize)
        // Inside the audit layer, so that what these refuse is recorded too.
        .map_response(with_reason)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            HANDLER_TIMEOUT,
        ))
        .service(handlers);
    BoxCloneSyncService::new(service)
}

/// Largest API request body (413 beyond it).
const MAX_BODY: usize = 1024 * 1024;
/// How long a handler may take to answer (504 after it).
const HANDLER_TIMEOUT: Duration = Duration::from_secs(60);

/// An error status that tower-http or axum made (413, 504, …) carries no reason of the
/// gateway's: give it its status text, so that the audit record says why.
pub(crate) fn with_reason<B>(mut response: Response<B>) -> Response<B> {
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && GatewayReason::of(&response).is_none()
    {
        let reason = status.canonical_reason().unwrap_or("refused").to_owned();
        response.extensions_mut().insert(GatewayReason(reason));
    }
    response
}

/// Refusals made by the layers are one line of text (what the Convox CLI prints); the JSON
/// API answers `{"error": reason}` instead, with the same status and headers.
fn json_refusal(response: Response<Body>) -> Response<Body> {
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"));
    let Some(reason) = GatewayReason::of(&response).filter(|_| is_text) else {
        return response;
    };
    let json = serde_json::json!({ "error": reason }).to_string();
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body::full(json))
}

/// The handlers (behind the layers of [`service`]).
fn router(state: ApiState) -> Router {
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
        .route("/api/v1/me", get(me::show))
        .route("/api/v1/auth/web/logout", post(sessions::logout))
        .route("/api/v1/sessions", get(sessions::list_mine))
        .route("/api/v1/sessions/{id}", delete(sessions::revoke_mine))
        .route(
            "/api/v1/users/{email}/sessions",
            get(sessions::list_for_user),
        )
        .route(
            "/api/v1/users/{email}/sessions/revoke_all",
            post(sessions::revoke_all_for_user),
        )
        .route(
            "/api/v1/users/{email}/sessions/{id}/revoke",
            post(sessions::revoke_for_user),
        )
        .with_state(state)
}

//! Human sign-in: the endpoints under `/api/v1/auth/` that are reached without a credential.
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /api/v1/auth/web/login?returnTo=/path` | starts a browser sign-in: 302 to the provider |
//! | `GET /api/v1/auth/web/callback` | ends it: the `session_token` cookie, 302 to `returnTo` |
//! | `POST /api/v1/auth/cli/start` | starts a `rack-gateway login`: the URL to open |
//! | `GET /api/v1/auth/cli/callback` | the browser's half of it: who signed in, or why not |
//! | `POST /api/v1/auth/cli/complete` | the CLI's half: polls, then collects its session token |
//! | `GET /api/v1/auth/dev/sign-in?token=` | `rack-gateway dev` only: the one-time admin link |
//!
//! Signing out, `/api/v1/me` and the session lists need a session and live in [`crate::api`].
//!
//! A sign-in's `state` is random, stored only as a hash, usable once and for ten minutes; its
//! nonce and PKCE verifier are derived from it ([`secrets`]). A browser sign-in is also bound to
//! the browser that started it (the `rgw_login` cookie, [`cookies`]), so a callback URL cannot
//! be replayed into someone else's browser. Every call is audited without its query string
//! (codes and states are secrets): `auth.login.start`, `auth.login` (signed in, or refused with
//! the reason), `auth.login.complete` (the CLI collected its session).
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use rack_gateway_bin::signin::{cookies::CookiePolicy, secrets::LoginKey, SignIn};
//! # fn example(
//! #     store: Arc<dyn rack_gateway_core::store::Store>,
//! #     resolver: Arc<rack_gateway_core::identity::IdentityResolver>,
//! #     writer: rack_gateway_layers::audit::AuditWriter,
//! # ) {
//! let sign_in = SignIn::new(
//!     store,
//!     resolver,
//!     LoginKey::from_app_secret(b"APP_SECRET_KEY, at least 32 bytes long"),
//!     CookiePolicy { secure: true },
//! );
//! let service = rack_gateway_bin::signin::service::<hyper::body::Incoming>(
//!     sign_in,
//!     writer,
//!     rack_gateway_layers::audit::AuditConfig::new(""),
//! );
//! # let _ = service;
//! # }
//! ```

mod account;
mod callback;
mod cli;
pub mod cookies;
mod dev;
mod query;
mod refusal;
pub mod return_to;
pub mod secrets;
mod session;
pub mod sweeper;
mod web;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use rack_gateway_core::identity::IdentityResolver;
use rack_gateway_core::rbac::Outcome;
use rack_gateway_core::store::Store;
use rack_gateway_layers::audit::{AuditConfig, AuditLayer, AuditWriter};
use rack_gateway_layers::body::{self, Body};
use rack_gateway_layers::decision::Decision;
use rack_gateway_layers::draft::AuditDraft;
use rack_gateway_layers::rescue::RescueLayer;
use rack_gateway_layers::BoxError;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::{OidcClient, SignInConfig};
use cookies::CookiePolicy;
pub use dev::DevLink;
use secrets::LoginKey;

/// Where the sign-in endpoints live.
pub const AUTH_PREFIX: &str = "/api/v1/auth/";
/// Signing out needs the session: it is served by the API, not here.
pub const WEB_LOGOUT: &str = "/api/v1/auth/web/logout";

/// Whether `path` is one of the sign-in endpoints (served without a credential).
pub fn serves(path: &str) -> bool {
    path.starts_with(AUTH_PREFIX) && path != WEB_LOGOUT
}

/// What the sign-in endpoints need, assembled once at start-up.
pub struct SignIn {
    store: Arc<dyn Store>,
    resolver: Arc<IdentityResolver>,
    provider: Option<Provider>,
    key: LoginKey,
    cookies: CookiePolicy,
    dev: Option<DevLink>,
}

/// The handlers' state.
type Shared = Arc<SignIn>;

/// The identity provider and how the gateway is registered with it.
struct Provider {
    client: Arc<OidcClient>,
    config: SignInConfig,
}

impl SignIn {
    /// Sign-in with no identity provider yet: every sign-in is refused as not configured
    /// (the dev link still works when added).
    pub fn new(
        store: Arc<dyn Store>,
        resolver: Arc<IdentityResolver>,
        key: LoginKey,
        cookies: CookiePolicy,
    ) -> Self {
        SignIn {
            store,
            resolver,
            provider: None,
            key,
            cookies,
            dev: None,
        }
    }

    /// Signs people in through this provider.
    pub fn with_provider(mut self, client: Arc<OidcClient>, config: SignInConfig) -> Self {
        self.provider = Some(Provider { client, config });
        self
    }

    /// Adds the one-time dev admin link (`rack-gateway dev` only).
    pub fn with_dev_link(mut self, link: DevLink) -> Self {
        self.dev = Some(link);
        self
    }
}

/// The sign-in endpoints as one service: audit (without query strings), rescue, a body limit
/// and a timeout, then the handlers.
pub fn service<B>(
    sign_in: SignIn,
    writer: AuditWriter,
    audit: AuditConfig,
) -> BoxCloneSyncService<Request<B>, Response<Body>, Infallible>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let service = ServiceBuilder::new()
        .map_response(|response: Response<_>| response.map(body::boxed))
        .layer(AuditLayer::new(
            writer,
            audit.with_prefix("").without_query(),
        ))
        .layer(RescueLayer::new())
        .map_response(crate::api::with_reason)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            HANDLER_TIMEOUT,
        ))
        .service(router(sign_in));
    BoxCloneSyncService::new(service)
}

/// Sign-in requests are small JSON objects or nothing.
const MAX_BODY: usize = 16 * 1024;
/// The provider's token endpoint gets this long (and the whole call a little more).
const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// Notes the request as allowed without a credential (sign-in endpoints are public), with its
/// audit action: the record then says allow unless the handler refuses with a reason.
fn public(draft: &AuditDraft, action: &str, path: &str) {
    draft.set_decision(&Decision {
        outcome: Outcome::Allow,
        reason: "sign-in endpoint (no credential needed)".to_owned(),
        route: None,
        rack_path: path.to_owned(),
    });
    draft.set_action(action);
}

/// The provider, or the refusal every sign-in gets without one.
fn provider(sign_in: &SignIn) -> Result<&Provider, refusal::Refused> {
    sign_in.provider.as_ref().ok_or_else(|| {
        refusal::Refused::page(
            StatusCode::NOT_FOUND,
            "sign-in with Google is not configured (GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)",
        )
    })
}

fn router(sign_in: SignIn) -> Router {
    let mut router = Router::new()
        .route("/api/v1/auth/web/login", get(web::login))
        .route("/api/v1/auth/web/callback", get(web::callback))
        .route("/api/v1/auth/cli/start", post(cli::start))
        .route("/api/v1/auth/cli/callback", get(cli::callback))
        .route("/api/v1/auth/cli/complete", post(cli::complete));
    // The dev link's route exists only when there is a dev link (never in `serve`).
    if sign_in.dev.is_some() {
        router = router.route(dev::PATH, get(dev::sign_in));
    }
    router
        .fallback(|| async { refusal::Refused::json(StatusCode::NOT_FOUND, "not found") })
        .with_state(Arc::new(sign_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_is_not_a_sign_in_endpoint() {
        assert!(serves("/api/v1/auth/web/login"));
        assert!(serves("/api/v1/auth/cli/complete"));
        assert!(serves("/api/v1/auth/dev/sign-in"));
        assert!(!serves(WEB_LOGOUT));
        assert!(!serves("/api/v1/auth"));
        assert!(!serves("/api/v1/me"));
    }
}

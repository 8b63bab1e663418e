//! Authentication: turns the `Authorization` header into a [`Principal`] in the request
//! extensions, or refuses the request with 401 and a one-line reason.
//!
//! Accepted credentials, as the Convox CLI and SDK send them:
//! `Authorization: Basic base64(convox:<token>)` (the username is ignored) or
//! `Authorization: Bearer <token>`. Browser cookies are refused on the rack proxy.
//!
//! ```no_run
//! # async fn demo(resolver: std::sync::Arc<rack_gateway_core::identity::IdentityResolver>) {
//! use rack_gateway_layers::authn::AuthenticateLayer;
//! use tower::ServiceBuilder;
//!
//! let stack = ServiceBuilder::new()
//!     .layer(AuthenticateLayer::new(resolver))
//!     .service_fn(|req: http::Request<rack_gateway_layers::Body>| async move {
//!         let who = req.extensions().get::<std::sync::Arc<rack_gateway_core::identity::Principal>>();
//!         Ok::<_, rack_gateway_layers::BoxError>(http::Response::new(rack_gateway_layers::body::full(
//!             who.map(|p| p.label()).unwrap_or_default(),
//!         )))
//!     });
//! # let _ = stack;
//! # }
//! ```
//!
//! [`Principal`]: rack_gateway_core::identity::Principal

mod credential;
mod csrf;
mod future;
mod layer;

pub use credential::{
    parse_authorization, presented_credential, Credential, CredentialError, Presented,
    SESSION_COOKIE,
};
pub use csrf::{CsrfGuard, CsrfRefusal, CSRF_HEADER};
pub use future::ResponseFuture;
pub use layer::{principal_of, Authenticate, AuthenticateLayer};

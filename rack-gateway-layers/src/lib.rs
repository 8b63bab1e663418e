//! Tower layers that put a service — a Convox rack, or any HTTP service of your own — behind
//! authentication, per-route authorization, a tamper-evident audit trail and secret redaction.
//!
//! Each concern is a module with an `XLayer` (cheap `Clone` configuration), the `X<S>` service
//! and its `ResponseFuture`, behind a cargo feature of the same name (all on by default):
//!
//! | feature | module | what it does |
//! |---|---|---|
//! | `audit` | [`audit`] | one record per request (refused, failed or abandoned too), durable intents for writes, group commit |
//! | `authn` | [`authn`] | `Authorization: Basic`/`Bearer` → a principal, or 401 |
//! | `authz` | [`authz`] | any route table ([`rack_gateway_core::routes::RouteTable`]) + RBAC → allow, 400, 403 or 404 |
//! | `redact` | [`redact`] | Convox env masking per caller, safe release env merges (needs `forward`) |
//! | `forward` | [`forward`] | the streaming HTTP and websocket client to a Convox rack (hyper client, rustls) |
//!
//! [`rescue`] (errors → 5xx) and the neutral modules the layers share — [`body`], [`error`],
//! [`draft`] (the audit draft layers fill in), [`decision`], [`peer`], [`relay`], [`upgrade`],
//! [`upstream`] — are always there.
//!
//! A refusal is an `Ok` response (401/403/404 with a one-line reason); only infrastructure
//! failures are errors, and [`rescue`] turns those into 502/503/504 responses at the edge.
//! Every layer is generic over the inner service's response body: refusals and masked responses
//! travel in a [`body::GatewayBody`] next to it, without boxing.
//!
//! The request path, outermost first, as the gateway binary stacks it:
//!
//! ```text
//! AuditLayer -> RescueLayer -> AuthenticateLayer -> AuthorizeLayer -> RedactLayer
//!   -> AuditIntentLayer -> RackForward
//! ```
//!
//! [`AuditLayer`](audit::AuditLayer) is outermost so that refusals, failures and abandoned
//! requests are recorded too; [`rescue`] sits inside it so that it records the final status.
#![forbid(unsafe_code)]

#[cfg(feature = "audit")]
pub mod audit;
#[cfg(feature = "authn")]
pub mod authn;
#[cfg(feature = "authz")]
pub mod authz;
pub mod body;
pub mod decision;
pub mod draft;
pub mod error;
#[cfg(feature = "forward")]
pub mod forward;
pub mod peer;
#[cfg(feature = "redact")]
pub mod redact;
pub mod relay;
pub mod rescue;
pub mod upgrade;
pub mod upstream;

pub use body::{Body, GatewayBody};
pub use error::BoxError;

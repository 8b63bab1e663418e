//! Tower layers that put a Convox rack behind authentication, authorization and auditing.
//!
//! Each concern is a module with an `XLayer` (cheap `Clone` configuration), the `X<S>` service
//! and its `ResponseFuture`. A refusal is an `Ok` response (401/403/404 with a one-line reason);
//! only infrastructure failures are errors, and [`rescue`] turns those into 502/503/504
//! responses at the edge.
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
//! Layers that must agree on what a request is share neutral modules ([`upgrade`]: what counts
//! as a websocket).
#![forbid(unsafe_code)]

pub mod audit;
pub mod authn;
pub mod authz;
pub mod body;
pub mod error;
pub mod forward;
pub mod redact;
pub mod rescue;
pub mod upgrade;

pub use body::Body;
pub use error::BoxError;

//! Tower layers that put a Convox rack behind authentication, authorization and auditing.
//!
//! Each concern is a module with an `XLayer` (cheap `Clone` configuration), the `X<S>` service
//! and its `ResponseFuture`. A refusal is an `Ok` response (401/403/404 with a one-line reason);
//! only infrastructure failures are errors, and [`rescue`] turns those into 502/503/504
//! responses at the edge.
//!
//! The request path, outermost first:
//!
//! ```text
//! rescue -> AuthenticateLayer -> AuthorizeLayer -> RackForward
//! ```
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

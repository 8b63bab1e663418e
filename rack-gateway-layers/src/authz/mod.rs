//! Authorization: the Convox route allow-list and the permission check for every proxied
//! request, using [`rack_gateway_core::rbac::explain`].
//!
//! The layer strips the proxy prefix (`/api/v1/rack-proxy`), classifies the rest against the
//! allow-list, and either refuses (400 ambiguous path, 404 unknown route, 403 missing
//! permission or disabled by policy — each an `Ok` response with a one-line reason) or passes
//! the request on with a [`RackPath`](crate::forward::RackPath) and the [`Decision`] in its
//! extensions.
//!
//! ```
//! use rack_gateway_core::rbac::Policy;
//! use rack_gateway_layers::authz::AuthorizeLayer;
//!
//! let (layer, policy) = AuthorizeLayer::new("/api/v1/rack-proxy", Policy::default());
//! // Later, when settings change:
//! policy.send_replace(Policy { allow_destructive_actions: true });
//! # let _ = layer;
//! ```

mod decision;
mod future;
mod layer;

pub use decision::Decision;
pub use future::ResponseFuture;
pub use layer::{Authorize, AuthorizeLayer};

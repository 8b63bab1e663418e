//! Authorization: a route table and the permission check for every request, using
//! [`rack_gateway_core::rbac::explain_in`].
//!
//! The layer strips its prefix (the gateway serves the Convox table under
//! `/api/v1/rack-proxy`), classifies the rest against its table, and either refuses (400
//! ambiguous path, 404 unknown route, 403 missing permission or disabled by policy — each an
//! `Ok` response with a one-line reason) or passes the request on with a
//! [`RackPath`](crate::upstream::RackPath) and the [`Decision`](crate::decision::Decision) in
//! its extensions. Any table works: the Convox allow-list, or a service's own.
//!
//! ```
//! use std::sync::Arc;
//!
//! use rack_gateway_core::routes::{Route, RouteMethod, RouteTable};
//! use rack_gateway_layers::authz::AuthorizeLayer;
//!
//! let table = RouteTable::builder()
//!     .route(Route::new(RouteMethod::Get, "/orders/{id}", "shop:order:read", "order.read"))
//!     .build()
//!     .unwrap();
//! let layer = AuthorizeLayer::new(Arc::new(table)).prefix("/api");
//! // The Convox allow-list, following live policy changes:
//! let (policy, updates) = tokio::sync::watch::channel(Default::default());
//! let convox = AuthorizeLayer::new(RouteTable::convox()).prefix("/api/v1/rack-proxy").policy(updates);
//! # let _ = (layer, convox, policy);
//! ```

mod future;
mod layer;

pub use future::ResponseFuture;
pub use layer::{Authorize, AuthorizeLayer};

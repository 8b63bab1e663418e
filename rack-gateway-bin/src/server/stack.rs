//! The proxy stack: rescue → authenticate → authorize → forward to the rack.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use rack_gateway_core::identity::IdentityResolver;
use rack_gateway_core::rbac::Policy;
use rack_gateway_layers::authn::AuthenticateLayer;
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::forward::RackForward;
use rack_gateway_layers::rescue::RescueLayer;
use rack_gateway_layers::Body;
use tokio::sync::watch;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;

use super::dispatch::PROXY_PREFIX;

/// Builds the proxy stack once, at start-up.
pub fn proxy_stack(
    resolver: Arc<IdentityResolver>,
    policy: watch::Receiver<Policy>,
    forward: RackForward,
) -> BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible> {
    let service = ServiceBuilder::new()
        .layer(RescueLayer::new())
        .layer(AuthenticateLayer::new(resolver))
        .layer(AuthorizeLayer::with_policy(PROXY_PREFIX, policy))
        .service(forward);
    BoxCloneSyncService::new(service)
}

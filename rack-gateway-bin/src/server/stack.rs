//! The proxy stack: audit → rescue → authenticate → authorize → redact → audit intent → forward.
//! (The JSON API's stack is [`crate::api::service`].)

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use rack_gateway_core::identity::IdentityResolver;
use rack_gateway_core::rbac::Policy;
use rack_gateway_core::redact::SecretRules;
use rack_gateway_core::routes::RouteTable;
use rack_gateway_layers::audit::{AuditConfig, AuditIntentLayer, AuditLayer, AuditWriter};
use rack_gateway_layers::authn::AuthenticateLayer;
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::forward::RackForward;
use rack_gateway_layers::redact::{BufferBudget, EnvPolicy, RedactLayer};
use rack_gateway_layers::rescue::RescueLayer;
use rack_gateway_layers::Body;
use tokio::sync::watch;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;

use super::dispatch::PROXY_PREFIX;

/// What the proxy stack is built from.
pub struct StackParts {
    /// Credential resolution.
    pub resolver: Arc<IdentityResolver>,
    /// Live policy switches.
    pub policy: watch::Receiver<Policy>,
    /// The rack.
    pub forward: RackForward,
    /// The audit writer.
    pub writer: AuditWriter,
    /// How requests are described in audit records.
    pub audit: AuditConfig,
    /// Which env names are secrets (CONVOX_SECRET_ENV_VARS).
    pub secrets: SecretRules,
    /// Per-app protected and secret env names.
    pub env_policy: Arc<dyn EnvPolicy>,
    /// The bound on env bytes buffered, shared with the env API.
    pub budget: BufferBudget,
}

/// Builds the proxy stack once, at start-up. The audit layer is outermost so that refusals
/// are recorded too; rescue sits inside it so that it sees the final status of every request.
pub fn proxy_stack(
    parts: StackParts,
) -> BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible> {
    let service = ServiceBuilder::new()
        // One box, at the edge, for the one body type the server writes.
        .map_response(|response: Response<_>| response.map(rack_gateway_layers::body::boxed))
        .layer(AuditLayer::new(
            parts.writer.clone(),
            parts.audit.with_prefix(PROXY_PREFIX),
        ))
        .layer(RescueLayer::new())
        .layer(AuthenticateLayer::new(parts.resolver))
        .layer(
            AuthorizeLayer::new(RouteTable::convox())
                .prefix(PROXY_PREFIX)
                .policy(parts.policy),
        )
        .layer(
            RedactLayer::new(parts.secrets, parts.env_policy, parts.forward.clone())
                .buffer_budget(parts.budget),
        )
        .layer(AuditIntentLayer::new(parts.writer))
        .service(parts.forward);
    BoxCloneSyncService::new(service)
}

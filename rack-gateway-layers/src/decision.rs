//! What the authorization layer decided, for the layers around it (audit, redaction, intents,
//! metrics): one type they all read, so none of them depends on another.

use rack_gateway_core::rbac::Outcome;
use rack_gateway_core::routes::RouteMatch;

/// The decision for one request, placed in the request extensions when it is allowed and
/// reported to the outer layers either way.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Allow, deny, not found or bad request.
    pub outcome: Outcome,
    /// Why, in one line.
    pub reason: String,
    /// The matched route, when the path is in the allow-list.
    pub route: Option<RouteMatch>,
    /// The Convox path (prefix removed), without the query string.
    pub rack_path: String,
}

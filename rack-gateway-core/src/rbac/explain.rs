//! The decision for one request: route allow-list, then permission, then policy.
//!
//! Order: a malformed or ambiguous path is 400, a request outside the allow-list is 404 (before
//! any permission check), a missing permission is 403, and a destructive route is 403 "disabled
//! by policy" for a caller who holds the permission. MFA is not part of the decision: a caller
//! who lacks the permission is denied before any step-up is asked for.

use super::access::{authorize, Access};
use crate::routes::{RouteError, RouteMatch, RouteTable};

/// Gateway-wide policy switches that take part in the decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// When false (the default), destructive routes (`DELETE /apps/{name}`) are refused for everyone.
    pub allow_destructive_actions: bool,
}

/// What happens to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forward it.
    Allow,
    /// The caller lacks the permission, or policy forbids the action (403).
    Deny,
    /// The route is outside the allow-list (404).
    NotFound,
    /// The path is ambiguous or malformed (400).
    BadRequest,
}

/// The decision with its HTTP status and a one-line reason the Convox CLI can print.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// What happens.
    pub outcome: Outcome,
    /// 200 for allow, else the status of the refusal.
    pub status: u16,
    /// Why, in one line.
    pub reason: String,
    /// The matched route, when the path is in the allow-list.
    pub route: Option<RouteMatch>,
}

impl Verdict {
    /// Whether the request may be forwarded.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// Whether this denial may still be lifted by an approved deploy approval request: the
    /// route is approval-gated and `access` (the one the verdict was made for) holds
    /// [`DEPLOY_WITH_APPROVAL`].
    pub fn approval_may_allow(&self, access: &Access<'_>) -> bool {
        self.outcome == Outcome::Deny
            && self
                .route
                .as_ref()
                .is_some_and(|matched| matched.route.approval_gated)
            && authorize(access, DEPLOY_WITH_APPROVAL).is_ok()
    }

    fn refuse(outcome: Outcome, status: u16, reason: String, route: Option<RouteMatch>) -> Self {
        Verdict {
            outcome,
            status,
            reason,
            route,
        }
    }
}

/// The permission that lets a token reach approval-gated routes under an approved request.
pub const DEPLOY_WITH_APPROVAL: &str = "convox:deploy:deploy_with_approval";

/// Longest path echoed back in a 404 reason.
const SHOWN_PATH_MAX: usize = 200;

/// The method as shown in a reason: itself if it is a short HTTP token, else a placeholder.
fn shown_method(method: &str) -> &str {
    let is_token = !method.is_empty()
        && method.len() <= 16
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if is_token {
        method
    } else {
        "<invalid method>"
    }
}

/// The path as shown in a reason: it passed normalisation (printable ASCII), but is capped.
fn shown_path(path: &str) -> String {
    match path.get(..SHOWN_PATH_MAX) {
        Some(head) if head.len() < path.len() => format!("{head}..."),
        _ => path.to_owned(),
    }
}

/// May `access` do `method path` (a websocket upgrade when `websocket`), and why.
///
/// `path` is the Convox API path with the proxy prefix already removed, as received
/// (percent-encoded, without the query string).
pub fn explain(
    access: &Access<'_>,
    policy: &Policy,
    method: &str,
    websocket: bool,
    path: &str,
) -> Verdict {
    explain_in(
        RouteTable::global(),
        access,
        policy,
        method,
        websocket,
        path,
    )
}

/// [`explain`] against another route table (the gateway's own JSON API has one).
///
/// A row whose permission is empty admits any authenticated caller (its handler checks
/// whatever else it needs); it is refused only to a caller without a credential.
pub fn explain_in(
    table: &RouteTable,
    access: &Access<'_>,
    policy: &Policy,
    method: &str,
    websocket: bool,
    path: &str,
) -> Verdict {
    let matched = match table.classify(method, websocket, path) {
        Ok(matched) => matched,
        Err(RouteError::BadPath(why)) => {
            return Verdict::refuse(
                Outcome::BadRequest,
                400,
                format!("bad request path: {why}"),
                None,
            )
        }
        Err(RouteError::NotFound) => {
            let shown = if websocket {
                format!("SOCKET ({})", shown_method(method))
            } else {
                shown_method(method).to_owned()
            };
            return Verdict::refuse(
                Outcome::NotFound,
                404,
                format!(
                    "route not allowed by the gateway: {shown} {}",
                    shown_path(path)
                ),
                None,
            );
        }
    };
    let route = std::sync::Arc::clone(&matched.route);
    if !route.requires_permission() {
        return match access {
            Access::None => Verdict::refuse(
                Outcome::Deny,
                403,
                "permission denied: authentication required".to_owned(),
                Some(matched),
            ),
            _ => Verdict {
                outcome: Outcome::Allow,
                status: 200,
                reason: "any authenticated caller".to_owned(),
                route: Some(matched),
            },
        };
    }
    let grant = match authorize(access, &route.permission) {
        Ok(grant) => grant,
        Err(denial) => {
            // A cicd token (or the cicd role, as shown by `rbac explain`) reaches gated routes
            // only through an approved deploy approval request, which is checked elsewhere.
            let via_approval =
                route.approval_gated && authorize(access, DEPLOY_WITH_APPROVAL).is_ok();
            let reason = if via_approval {
                format!(
                    "permission denied: {} required; with {DEPLOY_WITH_APPROVAL} only through an approved deploy approval request for app {}",
                    route.permission,
                    matched.app.as_deref().unwrap_or("-")
                )
            } else {
                format!("permission denied: {}", denial.0)
            };
            return Verdict::refuse(Outcome::Deny, 403, reason, Some(matched));
        }
    };
    if route.destructive && !policy.allow_destructive_actions {
        return Verdict::refuse(
            Outcome::Deny,
            403,
            "Destructive rack actions are disabled by policy (allow_destructive_actions is false)"
                .to_owned(),
            Some(matched),
        );
    }
    Verdict {
        outcome: Outcome::Allow,
        status: 200,
        reason: grant.0,
        route: Some(matched),
    }
}

//! The decision for one request: route allow-list, then permission, then policy.

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

    fn refuse(outcome: Outcome, status: u16, reason: String, route: Option<RouteMatch>) -> Self {
        Verdict {
            outcome,
            status,
            reason,
            route,
        }
    }
}

const DEPLOY_WITH_APPROVAL: &str = "convox:deploy:deploy_with_approval";

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
    let matched = match RouteTable::global().classify(method, websocket, path) {
        Ok(matched) => matched,
        Err(RouteError::BadPath(why)) => {
            return Verdict::refuse(Outcome::BadRequest, 400, format!("bad request path: {why}"), None)
        }
        Err(RouteError::NotFound) => {
            let shown = if websocket { "SOCKET" } else { method };
            return Verdict::refuse(
                Outcome::NotFound,
                404,
                format!("route not allowed by the gateway: {shown} {path}"),
                None,
            );
        }
    };
    let route = matched.route;
    let grant = match authorize(access, route.permission) {
        Ok(grant) => grant,
        Err(denial) => {
            let gated_for_token = route.approval_gated
                && matches!(access, Access::Permissions(_))
                && authorize(access, DEPLOY_WITH_APPROVAL).is_ok();
            let reason = if gated_for_token {
                format!(
                    "permission denied: {} requires an approved deploy approval request",
                    route.permission
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

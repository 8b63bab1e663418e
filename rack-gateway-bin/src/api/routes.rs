//! The JSON API's route table: every endpoint with its permission, MFA level and audit action,
//! as data, checked by the same `AuthorizeLayer` as the proxy (reference §2.6, where most of
//! these were only declared; here each is enforced).
//!
//! An empty permission admits any authenticated caller; the handler then checks what depends
//! on the request (the settings group, `?secrets=true`). Paths are relative to `/api/v1`.

use std::sync::LazyLock;

use rack_gateway_core::routes::MfaLevel::{Always, None as NoMfa, StepUp};
use rack_gateway_core::routes::RouteMethod::{Delete, Get, Put};
use rack_gateway_core::routes::{MfaLevel, RackRoute, RouteMethod, RouteTable};

/// Where the JSON API lives.
pub const API_PREFIX: &str = "/api/v1";

const AUDIT_READ: &str = "gateway:audit_log:read";
/// Any authenticated caller; the handler decides the rest.
const AUTHENTICATED: &str = "";

const fn row(
    method: RouteMethod,
    pattern: &'static str,
    permission: &'static str,
    mfa: MfaLevel,
    action: &'static str,
) -> RackRoute {
    RackRoute {
        method,
        pattern,
        permission,
        mfa,
        approval_gated: false,
        action,
        destructive: false,
        mutating: matches!(method, RouteMethod::Post | Put | Delete),
    }
}

/// Every JSON API endpoint (health is outside the API and needs no credential).
#[rustfmt::skip]
pub static API_ROUTES: &[RackRoute] = &[
    row(Get, "/audit-logs", AUDIT_READ, NoMfa, "audit.list"),
    row(Get, "/audit-logs/export", AUDIT_READ, NoMfa, "audit.export"),
    row(Get, "/audit/verify", AUDIT_READ, NoMfa, "audit.verify"),
    row(Get, "/settings", AUTHENTICATED, NoMfa, "setting.list"),
    row(Put, "/settings/{group}", AUTHENTICATED, Always, "setting.update"),
    row(Delete, "/settings/{group}", AUTHENTICATED, Always, "setting.delete"),
    row(Get, "/apps/{app}/settings", AUTHENTICATED, NoMfa, "setting.list"),
    row(Put, "/apps/{app}/settings/{segment}", AUTHENTICATED, StepUp, "setting.update"),
    row(Delete, "/apps/{app}/settings/{segment}", AUTHENTICATED, StepUp, "setting.delete"),
    // convox:env:read (and convox:secret:read for ?secrets=true) and convox:env:set, checked
    // by the handler so that refusals keep the reference's wording.
    row(Get, "/apps/{app}/env", AUTHENTICATED, NoMfa, "env.read"),
    row(Put, "/apps/{app}/env", AUTHENTICATED, StepUp, "env.update"),
];

/// [`API_ROUTES`], compiled once.
pub fn api_table() -> &'static RouteTable {
    static TABLE: LazyLock<RouteTable> = LazyLock::new(|| RouteTable::compile(API_ROUTES));
    &TABLE
}

#[cfg(test)]
mod tests {
    use super::*;
    use rack_gateway_core::rbac::{explain_in, Access, Outcome, Policy, Role};

    fn decide(role: Role, method: &str, path: &str) -> Outcome {
        explain_in(
            api_table(),
            &Access::Roles(&[role]),
            &Policy::default(),
            method,
            false,
            path,
        )
        .outcome
    }

    #[test]
    fn every_row_is_reachable_and_authorized() {
        for route in API_ROUTES {
            let path = route
                .pattern
                .replace("{group}", "allow-destructive-actions")
                .replace("{app}", "web")
                .replace("{segment}", "protected-env-vars");
            let method = route.method.as_str();
            let verdict = explain_in(
                api_table(),
                &Access::Roles(&[Role::Admin]),
                &Policy::default(),
                method,
                false,
                &path,
            );
            assert_eq!(
                verdict.outcome,
                Outcome::Allow,
                "{method} {path}: {}",
                verdict.reason
            );
            assert_eq!(verdict.route.map(|m| m.route.action), Some(route.action));
            let anonymous = explain_in(
                api_table(),
                &Access::None,
                &Policy::default(),
                method,
                false,
                &path,
            );
            assert_eq!(anonymous.outcome, Outcome::Deny, "{method} {path}");
        }
    }

    #[test]
    fn viewers_may_not_read_the_audit_log_and_unknown_routes_are_404() {
        assert_eq!(decide(Role::Viewer, "GET", "/audit-logs"), Outcome::Deny);
        assert_eq!(decide(Role::Auditor, "GET", "/audit-logs"), Outcome::Allow);
        assert_eq!(
            decide(Role::Admin, "GET", "/nothing-here"),
            Outcome::NotFound
        );
        assert_eq!(
            decide(Role::Admin, "POST", "/audit-logs"),
            Outcome::NotFound
        );
        assert_eq!(
            decide(Role::Admin, "GET", "/apps/a%2Fb/env"),
            Outcome::BadRequest
        );
    }
}

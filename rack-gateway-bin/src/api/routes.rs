//! The JSON API's route table: every endpoint with its permission, MFA level and audit action,
//! as data (`routes.toml`), checked by the same `AuthorizeLayer` as the proxy (reference §2.6,
//! where most of these were only declared; here each is enforced).
//!
//! A row without a permission admits any authenticated caller; the handler then checks what
//! depends on the request (the settings group, `?secrets=true`). Paths are relative to
//! `/api/v1`.

use std::sync::Arc;

use rack_gateway_core::rbac::RoleSet;
use rack_gateway_core::routes::{RouteFileError, RouteTable};

/// Where the JSON API lives.
pub const API_PREFIX: &str = "/api/v1";

/// The table, as shipped.
const ROUTES: &str = include_str!("routes.toml");

/// The API's route table, checked against the gateway's roles (built once, at start-up).
pub fn api_table() -> Result<Arc<RouteTable>, RouteFileError> {
    let table = RouteTable::builder()
        .toml(ROUTES)?
        .check_permissions(RoleSet::convox())
        .build()?;
    Ok(Arc::new(table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rack_gateway_core::rbac::{explain_in, Access, Outcome, Policy, Role};

    fn decide(role: Role, method: &str, path: &str) -> Outcome {
        let table = api_table().expect("valid");
        explain_in(
            &table,
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
        let table = api_table().expect("the shipped table is valid");
        for route in table.routes() {
            let path = route
                .pattern
                .replace("{group}", "allow-destructive-actions")
                .replace("{app}", "web")
                .replace("{segment}", "protected-env-vars")
                .replace("{email}", "ann@example.com")
                .replace("{id}", "0b9f6b4e-54f1-4f65-a0e3-0d2e8f0e8f4e");
            let method = route.method.as_str();
            let verdict = explain_in(
                &table,
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
            assert_eq!(
                verdict.route.map(|m| m.route.action.clone()),
                Some(route.action.clone())
            );
            let anonymous = explain_in(
                &table,
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

//! `rack-gateway rbac explain`.

use rack_gateway_core::rbac::{explain, Access, Permission, Policy, Role};

use crate::cli::RbacCommand;
use crate::failure::Failure;
use crate::server::PROXY_PREFIX;

/// Prints the decision and its reason; exits 0 when allowed, 1 when refused.
pub fn run(command: RbacCommand) -> Result<(), Failure> {
    let RbacCommand::Explain {
        role,
        permission,
        websocket,
        allow_destructive,
        method,
        path,
    } = command;
    let roles = role
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let permissions = permission
        .iter()
        .map(|p| Permission::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let access = if permissions.is_empty() {
        Access::Roles(&roles)
    } else {
        Access::Permissions(&permissions)
    };
    let path = path.strip_prefix(PROXY_PREFIX).unwrap_or(&path);
    let (path, _query) = path.split_once('?').unwrap_or((path, ""));
    let policy = Policy {
        allow_destructive_actions: allow_destructive,
    };
    let method = method.to_ascii_uppercase();
    let verdict = explain(&access, &policy, &method, websocket, path);
    let word = if verdict.is_allowed() {
        "allow"
    } else {
        "deny"
    };
    println!("{word} ({}): {}", verdict.status, verdict.reason);
    if let Some(matched) = &verdict.route {
        let route = &matched.route;
        println!(
            "route: {} {} -> {} (action {}, mfa {:?}, approval-gated {}, mutating {}, destructive {})",
            route.method.as_str(),
            route.pattern,
            route.permission,
            route.action,
            route.mfa,
            route.approval_gated,
            route.mutating,
            route.destructive
        );
    }
    if verdict.is_allowed() {
        Ok(())
    } else {
        Err(Failure::Failed(anyhow::anyhow!("{word}")))
    }
}

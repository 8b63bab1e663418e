//! Building a route table from rows, checked so that a mistake stops start-up instead of
//! opening or closing a route by accident.
//!
//! ```
//! use rack_gateway_core::routes::{MfaLevel, Route, RouteMethod, RouteTable};
//!
//! let table = RouteTable::builder()
//!     .route(Route::new(RouteMethod::Get, "/orders/{id}", "shop:order:read", "order.read"))
//!     .route(Route::new(RouteMethod::Post, "/orders", "shop:order:create", "order.create").mfa(MfaLevel::StepUp))
//!     .build()
//!     .unwrap();
//! assert_eq!(table.classify("GET", false, "/orders/42").unwrap().param("id"), Some("42"));
//! ```

use std::fmt;
use std::sync::Arc;

use super::path::check_path;
use super::table::{compile_pattern, CompiledRoute, Segment};
use super::{Route, RouteTable};
use crate::rbac::{Permission, RoleSet};

/// Collects rows; [`build`](Self::build) checks and compiles them.
#[derive(Debug, Default)]
pub struct RouteTableBuilder {
    rows: Vec<Route>,
    known: Option<RoleSet>,
}

/// What is wrong with a row.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteProblem {
    /// The pattern is malformed.
    Pattern(String),
    /// The permission is not one concrete `<scope>:<resource>:<action>`.
    Permission(String),
    /// No role grants the permission and it was not declared.
    UnknownPermission(String),
    /// The action is empty or not one word.
    Action,
    /// An earlier row has the same method and an identical pattern.
    Duplicate {
        /// Index of the earlier row.
        earlier: usize,
    },
    /// An earlier row matches every path this one matches, so this one is never reached.
    Shadowed {
        /// Index of the earlier row.
        earlier: usize,
        /// Its pattern.
        by: String,
    },
}

/// A row that would make the table wrong; start-up should stop with this message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("route {index} ({method} {pattern}): {problem}")]
pub struct RouteTableError {
    /// Index of the row (from 0, in the order given).
    pub index: usize,
    /// Its method.
    pub method: &'static str,
    /// Its pattern.
    pub pattern: String,
    /// What is wrong.
    pub problem: RouteProblem,
}

impl fmt::Display for RouteProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteProblem::Pattern(why) => write!(f, "bad pattern: {why}"),
            RouteProblem::Permission(why) => write!(f, "bad permission: {why}"),
            RouteProblem::UnknownPermission(permission) => write!(
                f,
                "unknown permission {permission:?} (no role grants it and it is not declared)"
            ),
            RouteProblem::Action => {
                f.write_str("the action must be one non-empty word such as `order.read`")
            }
            RouteProblem::Duplicate { earlier } => write!(f, "duplicate of route {earlier}"),
            RouteProblem::Shadowed { earlier, by } => {
                write!(
                    f,
                    "never reached: route {earlier} ({by}) matches every path it matches"
                )
            }
        }
    }
}

impl RouteTableBuilder {
    /// Adds a row (rows match in the order added).
    pub fn route(mut self, route: impl Into<Route>) -> Self {
        self.rows.push(route.into());
        self
    }

    /// Adds rows.
    pub fn routes<R: Into<Route>>(mut self, routes: impl IntoIterator<Item = R>) -> Self {
        self.rows.extend(routes.into_iter().map(Into::into));
        self
    }

    /// Refuses permissions that `roles` does not know (no role grants them, none declared).
    pub fn check_permissions(mut self, roles: &RoleSet) -> Self {
        self.known = Some(roles.clone());
        self
    }

    /// Checks every row (pattern, permission, action, duplicates, shadowing) and compiles.
    pub fn build(self) -> Result<RouteTable, RouteTableError> {
        let mut compiled: Vec<CompiledRoute> = Vec::with_capacity(self.rows.len());
        for (index, route) in self.rows.into_iter().enumerate() {
            let refuse = |problem| RouteTableError {
                index,
                method: route.method.as_str(),
                pattern: route.pattern.to_string(),
                problem,
            };
            check_pattern(&route.pattern).map_err(|why| refuse(RouteProblem::Pattern(why)))?;
            check_permission(&route.permission, self.known.as_ref()).map_err(refuse)?;
            if route.action.is_empty()
                || route
                    .action
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(refuse(RouteProblem::Action));
            }
            let segments = compile_pattern(&route.pattern);
            for (earlier, other) in compiled.iter().enumerate() {
                if other.route.method != route.method || other.segments.len() != segments.len() {
                    continue;
                }
                let covered = other
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| covers(a, b));
                if !covered {
                    continue;
                }
                let same = other
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| same_shape(a, b));
                return Err(refuse(if same {
                    RouteProblem::Duplicate { earlier }
                } else {
                    RouteProblem::Shadowed {
                        earlier,
                        by: other.route.pattern.to_string(),
                    }
                }));
            }
            compiled.push(CompiledRoute {
                route: Arc::new(route),
                segments,
            });
        }
        Ok(RouteTable { routes: compiled })
    }
}

fn check_permission(permission: &str, known: Option<&RoleSet>) -> Result<(), RouteProblem> {
    if permission.is_empty() {
        return Ok(());
    }
    let parsed =
        Permission::parse(permission).map_err(|e| RouteProblem::Permission(e.to_string()))?;
    if parsed.as_str().contains('*') {
        return Err(RouteProblem::Permission(format!(
            "{permission:?}: a route needs one permission, not a wildcard"
        )));
    }
    match known {
        Some(roles) if !roles.knows(permission) => {
            Err(RouteProblem::UnknownPermission(permission.to_owned()))
        }
        _ => Ok(()),
    }
}

/// Whether `pattern` is `/seg/seg/...` with literal segments a request path may hold and
/// parameters `{name}` or `{name}suffix` (names unique, `[a-z_][a-z0-9_]*`).
fn check_pattern(pattern: &str) -> Result<(), String> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err("it must start with /".into());
    };
    if rest.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = Vec::new();
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err("empty segment (// or a trailing /)".into());
        }
        match segment.strip_prefix('{') {
            Some(inner) => {
                let (name, suffix) = inner
                    .split_once('}')
                    .ok_or_else(|| format!("unclosed parameter in {segment:?}"))?;
                let valid_name = name
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid_name {
                    return Err(format!("parameter name {name:?} must be [a-z_][a-z0-9_]*"));
                }
                if names.contains(&name) {
                    return Err(format!("parameter {name:?} appears twice"));
                }
                names.push(name);
                if suffix.contains(['{', '}']) || check_path(&format!("/{suffix}")).is_err() {
                    return Err(format!("bad suffix {suffix:?} after {{{name}}}"));
                }
            }
            None => {
                if segment.contains(['{', '}']) || check_path(&format!("/{segment}")).is_err() {
                    return Err(format!("bad literal segment {segment:?}"));
                }
            }
        }
    }
    Ok(())
}

/// Whether every value `later` matches is matched by `earlier` too.
fn covers(earlier: &Segment, later: &Segment) -> bool {
    match (earlier, later) {
        (Segment::Literal(a), Segment::Literal(b)) => a == b,
        (Segment::Literal(_), _) => false,
        (Segment::Param(_), _) => true,
        (Segment::ParamWithSuffix(_, suffix), Segment::Literal(b)) => {
            b.len() > suffix.len() && b.ends_with(suffix.as_str())
        }
        (Segment::ParamWithSuffix(_, suffix), Segment::ParamWithSuffix(_, other)) => {
            other.ends_with(suffix.as_str())
        }
        (Segment::ParamWithSuffix(..), Segment::Param(_)) => false,
    }
}

/// Whether two segments are the same apart from parameter names.
fn same_shape(a: &Segment, b: &Segment) -> bool {
    match (a, b) {
        (Segment::Literal(a), Segment::Literal(b)) => a == b,
        (Segment::Param(_), Segment::Param(_)) => true,
        (Segment::ParamWithSuffix(_, a), Segment::ParamWithSuffix(_, b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteMethod::{Get, Post};

    fn build(rows: Vec<Route>) -> Result<RouteTable, RouteTableError> {
        RouteTable::builder().routes(rows).build()
    }

    #[test]
    fn duplicates_and_shadowed_rows_are_refused() {
        let duplicate = build(vec![
            Route::new(Get, "/orders/{id}", "shop:order:read", "order.read"),
            Route::new(Get, "/orders/{order}", "shop:order:read", "order.read"),
        ])
        .unwrap_err();
        assert_eq!(duplicate.problem, RouteProblem::Duplicate { earlier: 0 });
        let shadowed = build(vec![
            Route::new(Get, "/orders/{id}", "shop:order:read", "order.read"),
            Route::new(Get, "/orders/export.csv", "shop:order:read", "order.export"),
        ])
        .unwrap_err();
        assert!(matches!(
            shadowed.problem,
            RouteProblem::Shadowed { earlier: 0, .. }
        ));
        assert!(shadowed.to_string().contains("never reached"), "{shadowed}");
        // The specific row first is fine, as is another method.
        assert!(build(vec![
            Route::new(Get, "/orders/{id}.csv", "shop:order:read", "order.export"),
            Route::new(Get, "/orders/{id}", "shop:order:read", "order.read"),
            Route::new(Post, "/orders/{id}", "shop:order:update", "order.update"),
        ])
        .is_ok());
        // A suffix row after a plain one is shadowed; a longer suffix after a shorter one too.
        assert!(build(vec![
            Route::new(Get, "/f/{id}.tar.gz", "shop:file:read", "file.tgz"),
            Route::new(Get, "/f/{id}.gz", "shop:file:read", "file.gz"),
        ])
        .is_ok());
        assert!(build(vec![
            Route::new(Get, "/f/{id}.gz", "shop:file:read", "file.gz"),
            Route::new(Get, "/f/{id}.tar.gz", "shop:file:read", "file.tgz"),
        ])
        .is_err());
    }

    #[test]
    fn bad_patterns_permissions_and_actions_are_refused() {
        for pattern in [
            "orders",
            "/orders/",
            "/orders//x",
            "/o/{ID}",
            "/o/{a}/{a}",
            "/o/{a",
            "/o/%41",
            "/o/a b",
        ] {
            let error = build(vec![Route {
                pattern: pattern.to_owned().into(),
                ..Route::new(Get, "/", "shop:order:read", "order.read")
            }])
            .unwrap_err();
            assert!(
                matches!(error.problem, RouteProblem::Pattern(_)),
                "{pattern}: {error}"
            );
        }
        for permission in ["shop:order", "shop:*:read", "Shop:order:read"] {
            let error = build(vec![Route {
                permission: permission.to_owned().into(),
                ..Route::new(Get, "/o", "", "order.read")
            }])
            .unwrap_err();
            assert!(
                matches!(error.problem, RouteProblem::Permission(_)),
                "{permission}"
            );
        }
        assert!(build(vec![Route::new(Get, "/o", "shop:order:read", "")]).is_err());
        assert!(build(vec![Route::new(Get, "/o", "", "order.read")]).is_ok());
    }

    #[test]
    fn unknown_permissions_are_refused_against_a_role_set() {
        let roles = RoleSet::builder()
            .role("clerk", ["shop:order:read"])
            .declare(["shop:order:delete"])
            .build()
            .unwrap();
        let table = |permission: &'static str| {
            RouteTable::builder()
                .route(Route::new(Get, "/o", permission, "order.x"))
                .check_permissions(&roles)
                .build()
        };
        assert!(table("shop:order:read").is_ok());
        assert!(table("shop:order:delete").is_ok());
        let error = table("shop:ordr:read").unwrap_err();
        assert_eq!(
            error.problem,
            RouteProblem::UnknownPermission("shop:ordr:read".into())
        );
    }

    #[test]
    fn the_convox_table_builds() {
        assert!(RouteTable::builder()
            .routes(crate::routes::CONVOX_ROUTES)
            .check_permissions(RoleSet::convox())
            .build()
            .is_ok());
        assert_eq!(
            RouteTable::global().routes().count(),
            crate::routes::CONVOX_ROUTES.len()
        );
    }
}

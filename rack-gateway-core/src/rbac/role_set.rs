//! Named roles as data: the gateway's own ([`RoleSet::convox`]), or a service's, built in code
//! or read from TOML/JSON.
//!
//! A role set says which permissions each role grants (for issuing tokens from a role, say) and
//! which permissions exist at all, so that a route table naming a permission nobody can hold is
//! refused at start-up ([`RouteTableBuilder::check_permissions`]).
//!
//! ```
//! use rack_gateway_core::rbac::RoleSet;
//!
//! let roles = RoleSet::from_toml(r#"
//!     declare = ["shop:order:delete"]
//!     [role.clerk]
//!     permissions = ["shop:order:read"]
//!     [role.manager]
//!     inherits = ["clerk"]
//!     permissions = ["shop:order:refund"]
//! "#).unwrap();
//! assert!(roles.grants("manager", "shop:order:read"));
//! assert!(roles.knows("shop:order:delete"));
//! assert!(!roles.knows("shop:order:ship"));
//! ```
//!
//! [`RouteTableBuilder::check_permissions`]: crate::routes::RouteTableBuilder::check_permissions

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use serde::Deserialize;

use super::permission::covers;
use super::{Permission, Role};

/// A set of named roles. Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleSet {
    inner: Arc<Roles>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Roles {
    /// Role name → its flattened permission patterns (own and inherited).
    roles: BTreeMap<String, Vec<Permission>>,
    /// Every concrete permission a role lists or the set declares.
    known: BTreeSet<String>,
}

/// Why a role set is invalid; start-up should stop with this message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoleSetError {
    /// A permission is malformed.
    #[error("role {role:?}: {error}")]
    Permission {
        /// The role (or `declare`).
        role: String,
        /// What is wrong.
        error: super::PermissionError,
    },
    /// A role inherits from a role that does not exist, or from itself through others.
    #[error("role {role:?} inherits from {parent:?}, which {problem}")]
    Inherits {
        /// The role.
        role: String,
        /// Its parent.
        parent: String,
        /// `does not exist` or `inherits from it in turn`.
        problem: &'static str,
    },
    /// The role name is empty or not `[a-z0-9_-]+`.
    #[error("role name {0:?} must be lower-case letters, digits, `_` and `-`")]
    Name(String),
    /// The TOML or JSON could not be read.
    #[error("role set: {0}")]
    Format(String),
}

/// Collects roles; [`build`](Self::build) checks and flattens them.
#[derive(Debug, Default)]
pub struct RoleSetBuilder {
    roles: BTreeMap<String, RoleSpec>,
    declared: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    #[serde(default)]
    inherits: Vec<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    #[serde(default)]
    declare: Vec<String>,
    #[serde(default)]
    role: BTreeMap<String, RoleSpec>,
}

/// Permissions that no built-in role lists explicitly (admin holds them through `*`) but that
/// the Convox route table and the gateway's own API use.
const ADMIN_ONLY: &[&str] = &[
    "convox:app:create",
    "convox:app:delete",
    "convox:build:update",
    "convox:rack:update",
    "convox:secret:read",
    "convox:secret:set",
    "gateway:user:create",
    "gateway:user:delete",
    "gateway:user:read",
    "gateway:user:update",
];

static CONVOX: LazyLock<RoleSet> = LazyLock::new(|| {
    let mut builder = RoleSet::builder().declare(ADMIN_ONLY.iter().copied());
    for role in Role::ALL {
        builder = builder.role(role.name(), role.permissions().iter().copied());
    }
    builder.build().unwrap_or_else(|error| {
        // A test builds this set; an empty one (nothing known) fails every table check closed.
        tracing::error!(%error, "the built-in role set is invalid");
        RoleSet::default()
    })
});

impl RoleSet {
    /// Starts a role set.
    pub fn builder() -> RoleSetBuilder {
        RoleSetBuilder::default()
    }

    /// The gateway's roles (viewer, ops, deployer, cicd, admin, auditor) and the permissions
    /// the Convox route table and the gateway's API use.
    pub fn convox() -> &'static RoleSet {
        &CONVOX
    }

    /// A role set from TOML: `declare = [...]` and `[role.<name>]` tables with `permissions`
    /// and `inherits`.
    pub fn from_toml(text: &str) -> Result<RoleSet, RoleSetError> {
        let file: RoleFile =
            toml::from_str(text).map_err(|e| RoleSetError::Format(e.to_string()))?;
        Self::from_file(file)
    }

    /// A role set from JSON, the same shape as the TOML.
    pub fn from_json(text: &str) -> Result<RoleSet, RoleSetError> {
        let file: RoleFile =
            serde_json::from_str(text).map_err(|e| RoleSetError::Format(e.to_string()))?;
        Self::from_file(file)
    }

    fn from_file(file: RoleFile) -> Result<RoleSet, RoleSetError> {
        RoleSetBuilder {
            roles: file.role,
            declared: file.declare,
        }
        .build()
    }

    /// The names of the roles.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.roles.keys().map(String::as_str)
    }

    /// The flattened permission patterns of a role.
    pub fn permissions_of(&self, role: &str) -> Option<&[Permission]> {
        self.inner.roles.get(role).map(Vec::as_slice)
    }

    /// Whether `role` grants `wanted`.
    pub fn grants(&self, role: &str, wanted: &str) -> bool {
        self.permissions_of(role)
            .is_some_and(|held| held.iter().any(|p| covers(p.as_str(), wanted)))
    }

    /// Whether `permission` exists: some role lists it, or it was declared.
    pub fn knows(&self, permission: &str) -> bool {
        self.inner.known.contains(permission)
    }
}

impl RoleSetBuilder {
    /// Adds (or replaces) a role with these permission patterns.
    pub fn role<I, S>(mut self, name: &str, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let spec = self.roles.entry(name.to_owned()).or_default();
        spec.permissions = permissions.into_iter().map(Into::into).collect();
        self
    }

    /// Makes `role` inherit every permission of `parent`.
    pub fn inherits(mut self, role: &str, parent: &str) -> Self {
        self.roles
            .entry(role.to_owned())
            .or_default()
            .inherits
            .push(parent.to_owned());
        self
    }

    /// Declares permissions that exist although no role lists them (held through wildcards).
    pub fn declare<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declared
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Checks names, permissions and inheritance, and flattens every role.
    pub fn build(self) -> Result<RoleSet, RoleSetError> {
        let mut known = BTreeSet::new();
        let mut own: BTreeMap<String, Vec<Permission>> = BTreeMap::new();
        for (name, spec) in &self.roles {
            let valid_name = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_name {
                return Err(RoleSetError::Name(name.clone()));
            }
            let mut parsed = Vec::with_capacity(spec.permissions.len());
            for text in &spec.permissions {
                let permission =
                    Permission::parse(text).map_err(|error| RoleSetError::Permission {
                        role: name.clone(),
                        error,
                    })?;
                if !text.contains('*') {
                    known.insert(text.clone());
                }
                parsed.push(permission);
            }
            own.insert(name.clone(), parsed);
        }
        for text in &self.declared {
            Permission::parse(text).map_err(|error| RoleSetError::Permission {
                role: "declare".into(),
                error,
            })?;
            known.insert(text.clone());
        }
        let mut roles = BTreeMap::new();
        for name in self.roles.keys() {
            let mut flattened = Vec::new();
            let mut seen = BTreeSet::new();
            collect(&self.roles, &own, name, name, &mut seen, &mut flattened)?;
            roles.insert(name.clone(), flattened);
        }
        Ok(RoleSet {
            inner: Arc::new(Roles { roles, known }),
        })
    }
}

/// Adds the permissions of `name` and of everything it inherits to `out`.
fn collect(
    specs: &BTreeMap<String, RoleSpec>,
    own: &BTreeMap<String, Vec<Permission>>,
    root: &str,
    name: &str,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<Permission>,
) -> Result<(), RoleSetError> {
    if !seen.insert(name.to_owned()) {
        return Ok(());
    }
    for permission in own.get(name).into_iter().flatten() {
        if !out.contains(permission) {
            out.push(permission.clone());
        }
    }
    for parent in specs
        .get(name)
        .map(|s| s.inherits.as_slice())
        .unwrap_or_default()
    {
        if !specs.contains_key(parent) {
            return Err(RoleSetError::Inherits {
                role: name.to_owned(),
                parent: parent.clone(),
                problem: "does not exist",
            });
        }
        if parent == root {
            return Err(RoleSetError::Inherits {
                role: name.to_owned(),
                parent: parent.clone(),
                problem: "inherits from it in turn",
            });
        }
        collect(specs, own, root, parent, seen, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_roles_match_the_matrix() {
        let roles = RoleSet::convox();
        for role in Role::ALL {
            for permission in [
                "convox:app:list",
                "convox:env:set",
                "gateway:audit_log:read",
                "convox:app:delete",
            ] {
                assert_eq!(
                    roles.grants(role.name(), permission),
                    role.grants(permission),
                    "{role} {permission}"
                );
            }
        }
        assert!(roles.knows("convox:app:delete"));
        assert!(roles.knows("convox:process:exec"));
        assert!(!roles.knows("convox:proces:exec"));
    }

    #[test]
    fn inheritance_is_flattened_and_checked() {
        let roles = RoleSet::builder()
            .role("a", ["x:y:read"])
            .role("b", ["x:y:write"])
            .inherits("b", "a")
            .build()
            .unwrap();
        assert!(roles.grants("b", "x:y:read"));
        assert!(!roles.grants("a", "x:y:write"));
        assert!(matches!(
            RoleSet::builder()
                .role("a", ["x:y:z"])
                .inherits("a", "nope")
                .build(),
            Err(RoleSetError::Inherits { .. })
        ));
        assert!(matches!(
            RoleSet::builder()
                .role("a", ["x:y:z"])
                .role("b", ["x:y:z"])
                .inherits("a", "b")
                .inherits("b", "a")
                .build(),
            Err(RoleSetError::Inherits { .. })
        ));
        assert!(matches!(
            RoleSet::builder().role("Bad Name", ["x:y:z"]).build(),
            Err(RoleSetError::Name(_))
        ));
        assert!(matches!(
            RoleSet::builder().role("a", ["x:y"]).build(),
            Err(RoleSetError::Permission { .. })
        ));
    }

    #[test]
    fn json_reads_like_toml() {
        let roles =
            RoleSet::from_json(r#"{"role": {"clerk": {"permissions": ["shop:order:read"]}}}"#)
                .unwrap();
        assert_eq!(roles.names().collect::<Vec<_>>(), ["clerk"]);
        assert!(RoleSet::from_json(r#"{"roles": {}}"#).is_err());
    }
}

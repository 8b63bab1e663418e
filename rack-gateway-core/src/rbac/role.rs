//! The roles and their flattened permission matrix (reference §2.2, plus `auditor`).

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Serialize, Serializer};

use super::permission::covers;

/// A named bundle of permissions. Order of privilege: viewer < ops < deployer < admin;
/// `cicd` is for automation tokens and `auditor` reads the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads apps, processes, builds, logs, instances and the rack.
    Viewer,
    /// Viewer, plus restarts, runs and stops processes, reads env and release lists.
    Ops,
    /// Ops, plus builds, releases, promotions, env changes and scaling.
    Deployer,
    /// For CI tokens: reads, and deploys through approved deploy requests.
    Cicd,
    /// Everything.
    Admin,
    /// Reads the audit log and what a viewer reads; changes nothing.
    Auditor,
}

/// Read-only Convox access: the viewer role, and the base of ops, deployer and auditor.
const VIEWER: &[&str] = &[
    "convox:app:list",
    "convox:app:read",
    "convox:process:list",
    "convox:process:read",
    "convox:instance:list",
    "convox:instance:read",
    "convox:log:read",
    "convox:build:list",
    "convox:build:read",
    "convox:rack:read",
];

/// What ops adds to viewer.
const OPS_ADDS: &[&str] = &[
    "convox:app:restart",
    "convox:process:start",
    "convox:process:exec",
    "convox:process:terminate",
    "convox:release:list",
    "convox:env:read",
];

/// What deployer adds to ops.
const DEPLOYER_ADDS: &[&str] = &[
    "convox:build:create",
    "convox:object:create",
    "convox:release:create",
    "convox:release:read",
    "convox:release:promote",
    "convox:env:set",
    "convox:app:update",
    "gateway:deploy_approval_request:create",
    "gateway:deploy_approval_request:read",
];

/// What auditor adds to viewer.
const AUDITOR_ADDS: &[&str] = &["gateway:audit_log:read"];

/// For automation tokens; no parent.
const CICD: &[&str] = &[
    "convox:app:list",
    "convox:app:read",
    "convox:process:list",
    "convox:process:read",
    "convox:instance:list",
    "convox:instance:read",
    "convox:rack:read",
    "gateway:deploy_approval_request:create",
    "gateway:deploy_approval_request:read",
    "convox:deploy:deploy_with_approval",
];

const ADMIN: &[&str] = &["convox:*:*", "gateway:*:*"];

/// The flattened lists, in the order of [`Role::ALL`], built once from the parts above.
static FLATTENED: LazyLock<[Vec<&'static str>; 6]> = LazyLock::new(|| {
    let join = |parts: &[&[&'static str]]| parts.concat();
    [
        join(&[VIEWER]),
        join(&[VIEWER, OPS_ADDS]),
        join(&[VIEWER, OPS_ADDS, DEPLOYER_ADDS]),
        join(&[CICD]),
        join(&[ADMIN]),
        join(&[VIEWER, AUDITOR_ADDS]),
    ]
});

/// Why a role name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected viewer, ops, deployer, cicd, admin or auditor)")]
pub struct UnknownRole(pub String);

impl Role {
    /// Every role, in order of the matrix.
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Ops,
        Role::Deployer,
        Role::Cicd,
        Role::Admin,
        Role::Auditor,
    ];

    /// The role's name as stored and typed: `viewer`, `ops`, …
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Ops => "ops",
            Role::Deployer => "deployer",
            Role::Cicd => "cicd",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Ops => "Operations",
            Role::Deployer => "Deployer",
            Role::Cicd => "CI/CD",
            Role::Admin => "Admin",
            Role::Auditor => "Auditor",
        }
    }

    /// The flattened permission list (admin's is `convox:*:*` and `gateway:*:*`).
    pub fn permissions(self) -> &'static [&'static str] {
        // The variants are declared in the order of `Role::ALL`, which FLATTENED follows.
        &FLATTENED[self as usize]
    }

    /// Whether people may hold this role (`cicd` is for tokens only).
    pub fn assignable_to_humans(self) -> bool {
        self != Role::Cicd
    }

    /// Whether the role grants `wanted`. Admin grants every permission in every scope.
    pub fn grants(self, wanted: &str) -> bool {
        self == Role::Admin || self.permissions().iter().any(|held| covers(held, wanted))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flattened_lists_follow_role_all() {
        for (index, role) in Role::ALL.into_iter().enumerate() {
            assert_eq!(role as usize, index, "{role}");
        }
        assert!(Role::Ops.permissions().contains(&"convox:app:list"));
        assert!(Role::Deployer.permissions().contains(&"convox:env:read"));
        assert!(!Role::Viewer.permissions().contains(&"convox:env:read"));
    }

    #[test]
    fn roles_parse_from_their_names() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn every_listed_permission_is_well_formed() {
        for role in Role::ALL {
            for perm in role.permissions() {
                super::super::Permission::parse(perm).unwrap();
            }
        }
    }

    #[test]
    fn admin_grants_every_scope_and_auditor_changes_nothing() {
        assert!(Role::Admin.grants("security:secret:update"));
        assert!(Role::Auditor.grants("gateway:audit_log:read"));
        assert!(Role::Auditor
            .permissions()
            .iter()
            .all(|p| p.ends_with(":list") || p.ends_with(":read")));
    }
}

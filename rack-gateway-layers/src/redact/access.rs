//! What a caller may do with env values, from their one permission source.

use rack_gateway_core::rbac::{authorize, Access};
use rack_gateway_core::redact::Reveal;

/// Reading env values (masked for secrets).
pub const ENV_READ: &str = "convox:env:read";
/// Changing env values.
pub const ENV_SET: &str = "convox:env:set";
/// Reading secret values in clear.
pub const SECRET_READ: &str = "convox:secret:read";
/// Changing secret values.
pub const SECRET_SET: &str = "convox:secret:set";

/// The four env permissions of one caller, with the grant reasons (for audit records).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvAccess {
    /// Why `convox:env:read` was granted, if it was.
    pub env_read: Option<String>,
    /// Why `convox:env:set` was granted, if it was.
    pub env_set: Option<String>,
    /// Why `convox:secret:read` was granted, if it was.
    pub secret_read: Option<String>,
    /// Why `convox:secret:set` was granted, if it was.
    pub secret_set: Option<String>,
}

impl EnvAccess {
    /// Checks the four permissions against `access` (roles or a token's list, never both).
    pub fn of(access: &Access<'_>) -> Self {
        let grant = |wanted| authorize(access, wanted).ok().map(|grant| grant.0);
        EnvAccess {
            env_read: grant(ENV_READ),
            env_set: grant(ENV_SET),
            secret_read: grant(SECRET_READ),
            secret_set: grant(SECRET_SET),
        }
    }

    /// How much of an env this caller may see: everything with `convox:secret:read`, secrets
    /// masked with `convox:env:read`, every value masked otherwise.
    pub fn reveal(&self) -> Reveal {
        if self.secret_read.is_some() {
            Reveal::Everything
        } else if self.env_read.is_some() {
            Reveal::NonSecrets
        } else {
            Reveal::Nothing
        }
    }

    /// Whether the caller may read secret values (and secret-named rack/app parameters).
    pub fn reads_secrets(&self) -> bool {
        self.secret_read.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rack_gateway_core::rbac::{Permission, Role};

    #[test]
    fn roles_map_to_reveal_levels() {
        let of = |role| EnvAccess::of(&Access::Roles(&[role]));
        assert_eq!(of(Role::Viewer).reveal(), Reveal::Nothing);
        assert_eq!(of(Role::Ops).reveal(), Reveal::NonSecrets);
        assert_eq!(of(Role::Deployer).reveal(), Reveal::NonSecrets);
        assert!(of(Role::Deployer).env_set.is_some());
        assert!(of(Role::Deployer).secret_set.is_none());
        assert_eq!(of(Role::Admin).reveal(), Reveal::Everything);
        assert_eq!(EnvAccess::of(&Access::None).reveal(), Reveal::Nothing);
    }

    #[test]
    fn token_lists_are_used_as_is() {
        let perms = [Permission::parse("convox:secret:read").expect("valid")];
        let access = EnvAccess::of(&Access::Permissions(&perms));
        assert_eq!(access.reveal(), Reveal::Everything);
        assert!(access.env_set.is_none());
    }
}

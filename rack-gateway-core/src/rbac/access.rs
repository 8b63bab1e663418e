//! Whether a permission source grants one permission, and the reason either way.

use super::permission::{covers, is_concrete};
use super::{Permission, Role};

/// The one permission source a request acts with.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// A person's current roles.
    Roles(&'a [Role]),
    /// An API token's own permission list.
    Permissions(&'a [Permission]),
    /// No credential: nothing is granted.
    None,
}

/// Why a permission was granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant(pub String);

/// Why a permission was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial(pub String);

/// Decides whether `access` grants `wanted`, with a one-line reason.
pub fn authorize(access: &Access<'_>, wanted: &str) -> Result<Grant, Denial> {
    match access {
        Access::Roles(roles) => match roles.iter().find(|role| role.grants(wanted)) {
            Some(role) => Ok(Grant(format!("{wanted} granted by role {role}"))),
            None if roles.is_empty() => {
                Err(Denial(format!("{wanted} required; user has no roles")))
            }
            None => {
                let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
                Err(Denial(format!(
                    "{wanted} required; not granted by role {}",
                    names.join(", ")
                )))
            }
        },
        Access::Permissions(held) => {
            if !is_concrete(wanted) {
                return Err(Denial(format!("{wanted} is not a valid permission")));
            }
            match held.iter().find(|p| covers(p.as_str(), wanted)) {
                Some(p) => Ok(Grant(format!("{wanted} granted by token permission {p}"))),
                None => Err(Denial(format!(
                    "{wanted} required; not in the token's permissions"
                ))),
            }
        }
        Access::None => Err(Denial(format!("{wanted} required; no credential"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_token_lists_grant_with_reasons() {
        let ok = authorize(&Access::Roles(&[Role::Ops]), "convox:app:restart").unwrap();
        assert_eq!(ok.0, "convox:app:restart granted by role ops");
        let no = authorize(&Access::Roles(&[Role::Viewer]), "convox:app:restart").unwrap_err();
        assert!(no.0.contains("not granted by role viewer"), "{}", no.0);

        let perms = [Permission::parse("convox:app:*").unwrap()];
        assert!(authorize(&Access::Permissions(&perms), "convox:app:restart").is_ok());
        assert!(authorize(&Access::Permissions(&perms), "convox:build:create").is_err());
        assert!(authorize(&Access::None, "convox:app:list").is_err());
    }
}

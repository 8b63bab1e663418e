//! Input checks and value encodings shared by both store backends.
//!
//! Everything a caller hands the store is checked here first, so that bad input is refused as
//! [`StoreError::Invalid`] the same way by both backends, before any SQL runs.

use crate::identity::NewApiToken;
use crate::rbac::{Permission, Role};

use super::StoreError;

/// Longest email accepted (RFC 5321 path limit).
pub(crate) const EMAIL_MAX: usize = 254;
/// Longest user or token name accepted.
pub(crate) const NAME_MAX: usize = 150;
/// Most permission strings one token may carry.
pub(crate) const PERMISSIONS_MAX: usize = 64;
/// Longest permission string accepted.
const PERMISSION_MAX: usize = 128;
/// Longest role name, `created_by` or lock reason accepted.
const SHORT_TEXT_MAX: usize = 254;
/// Longest lock reason accepted.
const REASON_MAX: usize = 1000;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Refuses text that is too long or holds control characters (NUL included).
pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.chars().count() > max {
        return Err(invalid(field, format!("longer than {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Trims and lower-cases an email, refusing empty, over-long or malformed ones.
pub(crate) fn normalize_email(raw: &str) -> Result<String, StoreError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(invalid("email", "is empty"));
    }
    check_text("email", &email, EMAIL_MAX)?;
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if !well_formed {
        return Err(invalid("email", "expected local@domain"));
    }
    Ok(email)
}

/// The stored form of an email used as a lookup key, or `None` when no user can have it.
pub(crate) fn lookup_email(raw: &str) -> Option<String> {
    normalize_email(raw).ok()
}

/// Checks a user's display name (may be empty).
pub(crate) fn check_user_name(name: &str) -> Result<(), StoreError> {
    check_text("name", name, NAME_MAX)
}

/// Checks a lock reason.
pub(crate) fn check_reason(reason: &str) -> Result<(), StoreError> {
    check_text("locked_reason", reason, REASON_MAX)
}

/// Role names as stored: sorted, without duplicates.
pub(crate) fn role_names(roles: &[Role]) -> Vec<&'static str> {
    let mut roles = roles.to_vec();
    roles.sort_unstable();
    roles.dedup();
    roles.into_iter().map(Role::name).collect()
}

/// Decodes stored role names.
pub(crate) fn roles_from_names(names: Vec<String>) -> Result<Vec<Role>, StoreError> {
    names
        .iter()
        .map(|name| {
            name.parse::<Role>()
                .map_err(|e| StoreError::Corrupt(format!("user roles: {e}")))
        })
        .collect()
}

/// A [`NewApiToken`] that passed every check, in stored form.
#[derive(Debug)]
pub(crate) struct CheckedToken {
    /// Trimmed name.
    pub(crate) name: String,
    /// Lower-case hex hash.
    pub(crate) hash_hex: String,
    /// Permission strings, each well-formed.
    pub(crate) permissions: Vec<String>,
}

/// Checks a token before it is stored.
pub(crate) fn check_token(token: &NewApiToken) -> Result<CheckedToken, StoreError> {
    let name = token.name.trim().to_owned();
    if name.is_empty() {
        return Err(invalid("name", "is empty"));
    }
    check_text("name", &name, NAME_MAX)?;
    if token.permissions.len() > PERMISSIONS_MAX {
        return Err(invalid(
            "permissions",
            format!("more than {PERMISSIONS_MAX} entries"),
        ));
    }
    for permission in &token.permissions {
        check_text("permissions", permission, PERMISSION_MAX)?;
        Permission::parse(permission).map_err(|e| invalid("permissions", e.to_string()))?;
    }
    if let Some(role) = &token.role {
        check_text("role", role, SHORT_TEXT_MAX)?;
    }
    if let Some(created_by) = &token.created_by {
        check_text("created_by", created_by, SHORT_TEXT_MAX)?;
    }
    Ok(CheckedToken {
        name,
        hash_hex: token.hash.to_hex(),
        permissions: token.permissions.clone(),
    })
}

/// A `revoke_token` argument that could name a token, trimmed; `None` when none can match.
pub(crate) fn token_key(raw: &str) -> Option<&str> {
    let key = raw.trim();
    (!key.is_empty() && check_text("name", key, NAME_MAX).is_ok()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::TokenHash;

    #[test]
    fn emails_are_trimmed_lower_cased_and_bounded() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in ["", "   ", "no-at-sign", "@x", "x@", "a b@c", "a\0@b"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(EMAIL_MAX));
        assert!(matches!(
            normalize_email(&long),
            Err(StoreError::Invalid { field: "email", .. })
        ));
    }

    #[test]
    fn roles_are_sorted_and_deduplicated() {
        assert_eq!(
            role_names(&[Role::Admin, Role::Viewer, Role::Admin]),
            ["viewer", "admin"]
        );
        assert!(roles_from_names(vec!["root".into()]).is_err());
    }

    #[test]
    fn tokens_are_checked() {
        let mut token = NewApiToken {
            name: "  ci ".into(),
            hash: TokenHash::of("x"),
            owner_id: None,
            permissions: vec!["convox:app:list".into()],
            role: None,
            created_by: None,
            expires_at: None,
        };
        assert_eq!(check_token(&token).unwrap().name, "ci");
        token.permissions = vec!["not a permission".into()];
        assert!(check_token(&token).is_err());
        token.permissions = vec!["convox:app:list".into(); PERMISSIONS_MAX + 1];
        assert!(check_token(&token).is_err());
        token.permissions.clear();
        token.name = "x".repeat(NAME_MAX + 1);
        assert!(check_token(&token).is_err());
        assert_eq!(token_key(" ci "), Some("ci"));
        assert_eq!(token_key("a\0"), None);
    }
}

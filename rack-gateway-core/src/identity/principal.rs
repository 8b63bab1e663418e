//! The identity a request acts as.

use uuid::Uuid;

use super::SessionInfo;
use crate::rbac::{Access, Permission, Role};

/// Who a request acts as, once its credential has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A person, acting with their current roles.
    User(UserPrincipal),
    /// An API token, acting with its own permission list and never its owner's roles.
    ApiToken(TokenPrincipal),
    /// No credential was presented.
    Anonymous,
}

/// A signed-in person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPrincipal {
    /// Store identifier.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Current roles.
    pub roles: Vec<Role>,
    /// The session they signed in with; `None` when the principal came from elsewhere (an
    /// embedding service's own sign-in, a test).
    pub session: Option<SessionInfo>,
}

/// An API token in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPrincipal {
    /// Store identifier.
    pub id: i64,
    /// Public identifier.
    pub public_id: Uuid,
    /// Token name.
    pub name: String,
    /// Owner's email, if the token has an owner.
    pub owner_email: Option<String>,
    /// Owner's display name, if the token has an owner.
    pub owner_name: Option<String>,
    /// What the token may do.
    pub permissions: Vec<Permission>,
}

impl Principal {
    /// The single permission source this principal acts with.
    pub fn access(&self) -> Access<'_> {
        match self {
            Principal::User(user) => Access::Roles(&user.roles),
            Principal::ApiToken(token) => Access::Permissions(&token.permissions),
            Principal::Anonymous => Access::None,
        }
    }

    /// The email to report upstream and in audit records, if there is one.
    pub fn email(&self) -> Option<&str> {
        match self {
            Principal::User(user) => Some(&user.email),
            Principal::ApiToken(token) => token.owner_email.as_deref(),
            Principal::Anonymous => None,
        }
    }

    /// A short label for logs: the email, `token:<name>`, or `anonymous`.
    pub fn label(&self) -> String {
        match self {
            Principal::User(user) => user.email.clone(),
            Principal::ApiToken(token) => format!("token:{}", token.name),
            Principal::Anonymous => "anonymous".to_owned(),
        }
    }
}

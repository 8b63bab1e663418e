//! People who sign in to the gateway.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::rbac::Role;

/// A person known to the gateway, with the roles that say what they may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Store-assigned identifier.
    pub id: i64,
    /// Sign-in email, lower-cased.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Roles held; evaluated fresh on every request.
    pub roles: Vec<Role>,
    /// Set while an administrator has locked the account.
    pub locked_at: Option<DateTime<Utc>>,
    /// Why the account was locked.
    pub locked_reason: Option<String>,
    /// Suspended accounts are refused like locked ones.
    pub suspended: bool,
    /// When the user was added.
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
}

/// Whether a user may act at all, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserStatus {
    /// The user may act.
    Active,
    /// An administrator locked the account.
    Locked,
    /// The account is suspended.
    Suspended,
}

impl UserStatus {
    /// The one-line reason given when a credential is refused because of this status.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            UserStatus::Active => None,
            UserStatus::Locked => Some("user is locked"),
            UserStatus::Suspended => Some("user is suspended"),
        }
    }
}

impl User {
    /// Whether the user may act, and if not, why.
    pub fn status(&self) -> UserStatus {
        if self.suspended {
            UserStatus::Suspended
        } else if self.locked_at.is_some() {
            UserStatus::Locked
        } else {
            UserStatus::Active
        }
    }
}

/// A user to be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    /// Sign-in email; stores lower-case it.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Initial roles.
    pub roles: Vec<Role>,
}

//! Server-side sessions of people signed in through the browser or the CLI.
//!
//! A session is a row in the store found by the hash of its token ([`SessionSecret`]); it ends
//! when it is revoked (sign-out, an administrator, or the expiry sweeper) or when it outlives
//! its [`SessionLimits`]. Web and CLI sessions have limits of their own.
//!
//! ```
//! use rack_gateway_core::identity::{NewSession, SessionKind, SessionSecret};
//!
//! let secret = SessionSecret::generate();
//! let new = NewSession {
//!     user_id: 7,
//!     kind: SessionKind::Cli,
//!     hash: secret.hash(),
//!     ip: "192.0.2.10".parse().ok(),
//!     user_agent: Some("rack-gateway/0.1".into()),
//!     device_name: Some("laptop".into()),
//! };
//! assert_eq!(new.kind.as_str(), "cli");
//! assert_eq!("web".parse::<SessionKind>(), Ok(SessionKind::Web));
//! ```
//!
//! [`SessionSecret`]: super::SessionSecret
//! [`SessionLimits`]: super::SessionLimits

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TokenHash;

/// Where a session was started, which decides its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// A browser, holding the `session_token` cookie.
    Web,
    /// `rack-gateway login`, holding the token in its configuration file.
    Cli,
}

impl SessionKind {
    /// `web` or `cli`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Web => "web",
            SessionKind::Cli => "cli",
        }
    }
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is neither `web` nor `cli`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown session kind {0:?}: expected web or cli")]
pub struct UnknownSessionKind(pub String);

impl FromStr for SessionKind {
    type Err = UnknownSessionKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "web" => Ok(SessionKind::Web),
            "cli" => Ok(SessionKind::Cli),
            other => Err(UnknownSessionKind(other.to_owned())),
        }
    }
}

/// A stored session, without its token hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Store-assigned identifier.
    pub id: i64,
    /// Identifier shown to people (session lists) and used to revoke one session.
    pub public_id: Uuid,
    /// The signed-in user.
    pub user_id: i64,
    /// Web or CLI.
    pub kind: SessionKind,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Roughly when it was last used (recorded at most every 30 seconds).
    pub last_seen_at: DateTime<Utc>,
    /// Set once the session has ended; an ended session never authenticates again.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it ended (`logout`, `expired (idle)`, `expired (absolute)`, an administrator's text).
    pub revoked_reason: Option<String>,
    /// The client address it was started from.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent` when it started (at most 512 characters).
    pub user_agent: Option<String>,
    /// The name the CLI gave its device (at most 150 characters).
    pub device_name: Option<String>,
}

/// A session to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// The signed-in user.
    pub user_id: i64,
    /// Web or CLI.
    pub kind: SessionKind,
    /// Hash of the session token ([`SessionSecret::hash`](super::SessionSecret::hash)).
    pub hash: TokenHash,
    /// The client address.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`; stores keep its first 512 characters, control characters
    /// replaced by spaces (it is only shown to people).
    pub user_agent: Option<String>,
    /// The device name the CLI sent; refused when longer than 150 characters.
    pub device_name: Option<String>,
}

/// The session a [`UserPrincipal`](super::UserPrincipal) signed in with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Store identifier of the session.
    pub id: i64,
    /// Public identifier of the session.
    pub public_id: Uuid,
    /// Web or CLI.
    pub kind: SessionKind,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it ends unless used again: the earlier of its absolute limit and its idle limit
    /// counted from its last recorded use (so at most 30 seconds stale, never late).
    pub expires_at: DateTime<Utc>,
}

/// A session this process found past its limits and ended in the store (see
/// [`IdentityResolver::ended_sessions`](super::IdentityResolver::ended_sessions)); each ending
/// is announced by the one instance whose store write ended it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedSession {
    /// Store identifier of the session.
    pub id: i64,
    /// Public identifier of the session.
    pub public_id: Uuid,
    /// Whose session it was.
    pub user_id: i64,
    /// Web or CLI.
    pub kind: SessionKind,
    /// Which limit it passed.
    pub end: super::SessionEnd,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_lower_case_everywhere() {
        for kind in [SessionKind::Web, SessionKind::Cli] {
            assert_eq!(kind.as_str().parse::<SessionKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.as_str()));
            assert_eq!(serde_json::from_value::<SessionKind>(json).unwrap(), kind);
        }
        assert!("WEB".parse::<SessionKind>().is_err());
        assert!(serde_json::from_str::<SessionKind>("\"Cli\"").is_err());
    }
}

//! Sign-ins in progress: the OIDC `state` that travels through the identity provider, stored
//! until the browser comes back with it.
//!
//! The state is a secret in a URL, so only its SHA-256 ([`TokenHash`]) is stored. It can be
//! used once ([`LoginStateUse`]: a replay is told apart from an expiry for the audit trail) and
//! lives [`LOGIN_STATE_LIFETIME`]. A web sign-in is also bound to the browser that started it: the
//! hash of a random value in a cookie. A CLI sign-in ends in two steps: the browser's callback
//! records who signed in (or why not), and the CLI, polling with the state, takes that result
//! exactly once ([`CliLoginPoll`]).
//!
//! ```
//! use chrono::Utc;
//! use rack_gateway_core::identity::{LoginKind, NewLoginState, TokenHash, LOGIN_STATE_LIFETIME};
//!
//! let now = Utc::now();
//! let state = NewLoginState {
//!     state_hash: TokenHash::of("the state sent to the identity provider"),
//!     kind: LoginKind::Web,
//!     browser_hash: Some(TokenHash::of("the value of the browser's cookie")),
//!     return_to: Some("/app/rack".into()),
//!     device_name: None,
//!     expires_at: now + LOGIN_STATE_LIFETIME,
//! };
//! assert_eq!(state.kind.as_str(), "web");
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{SessionKind, TokenHash};

/// How long a sign-in may take, from its start to the identity provider's callback.
pub const LOGIN_STATE_LIFETIME: TimeDelta = TimeDelta::minutes(10);

/// Which flow a sign-in belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginKind {
    /// Browser sign-in, ending in a web session cookie.
    Web,
    /// `rack-gateway login`, ending in a CLI session handed to the polling CLI.
    Cli,
}

impl LoginKind {
    /// `web` or `cli`, as stored.
    pub fn as_str(self) -> &'static str {
        self.session_kind().as_str()
    }

    /// The kind of session this sign-in starts.
    pub fn session_kind(self) -> SessionKind {
        match self {
            LoginKind::Web => SessionKind::Web,
            LoginKind::Cli => SessionKind::Cli,
        }
    }
}

impl fmt::Display for LoginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoginKind {
    type Err = super::UnknownSessionKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.parse::<SessionKind>()? {
            SessionKind::Web => LoginKind::Web,
            SessionKind::Cli => LoginKind::Cli,
        })
    }
}

/// A sign-in to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLoginState {
    /// SHA-256 of the `state` parameter.
    pub state_hash: TokenHash,
    /// Web or CLI.
    pub kind: LoginKind,
    /// For web sign-ins: SHA-256 of the random value in the cookie of the browser that started it.
    pub browser_hash: Option<TokenHash>,
    /// Where to send the browser afterwards (checked by the caller; at most 2048 characters).
    pub return_to: Option<String>,
    /// For CLI sign-ins: the device name the CLI sent (at most 150 characters).
    pub device_name: Option<String>,
    /// When it can no longer be used: [`LOGIN_STATE_LIFETIME`] after it starts.
    pub expires_at: DateTime<Utc>,
}

/// A stored sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginState {
    /// SHA-256 of the `state` parameter.
    pub state_hash: TokenHash,
    /// Web or CLI.
    pub kind: LoginKind,
    /// SHA-256 of the starting browser's cookie value, for web sign-ins.
    pub browser_hash: Option<TokenHash>,
    /// Where to send the browser afterwards.
    pub return_to: Option<String>,
    /// The CLI's device name.
    pub device_name: Option<String>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it can no longer be used.
    pub expires_at: DateTime<Utc>,
    /// When the identity provider's callback used it.
    pub consumed_at: Option<DateTime<Utc>>,
    /// For CLI sign-ins: who signed in, once the callback succeeded.
    pub user_id: Option<i64>,
    /// For CLI sign-ins: why the callback refused, once it failed.
    pub error: Option<String>,
}

impl LoginState {
    /// Whether `cookie_value` is the value whose hash the starting browser's cookie had
    /// (compared in constant time; false when the sign-in is not bound to a browser).
    pub fn started_by(&self, cookie_value: &str) -> bool {
        self.browser_hash
            .is_some_and(|hash| hash.matches(&TokenHash::of(cookie_value)))
    }
}

/// What consuming a state found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginStateUse {
    /// First use within its lifetime; it is now consumed.
    Fresh(LoginState),
    /// It was consumed before: a replay (or a double submission).
    AlreadyUsed,
    /// It outlived [`LOGIN_STATE_LIFETIME`] unused.
    Expired,
    /// No sign-in of this kind has this state.
    Unknown,
}

/// What a polling CLI learns about its sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliLoginPoll {
    /// The browser has not finished yet.
    Pending,
    /// This user signed in; handed out once (the state is gone afterwards).
    SignedIn {
        /// Who signed in.
        user_id: i64,
        /// The device name the CLI sent when it started.
        device_name: Option<String>,
    },
    /// The sign-in was refused for this reason; handed out once.
    Refused(String),
    /// The sign-in outlived its lifetime without a result being taken.
    Expired,
    /// No CLI sign-in has this state (never started, or its result was already taken).
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_session_kinds() {
        for kind in [LoginKind::Web, LoginKind::Cli] {
            assert_eq!(kind.as_str(), kind.session_kind().as_str());
            assert_eq!(kind.as_str().parse::<LoginKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert!("browser".parse::<LoginKind>().is_err());
    }

    #[test]
    fn a_web_state_knows_its_browser() {
        let state = LoginState {
            state_hash: TokenHash::of("state"),
            kind: LoginKind::Web,
            browser_hash: Some(TokenHash::of("cookie")),
            return_to: None,
            device_name: None,
            created_at: Utc::now(),
            expires_at: Utc::now() + LOGIN_STATE_LIFETIME,
            consumed_at: None,
            user_id: None,
            error: None,
        };
        assert!(state.started_by("cookie"));
        assert!(!state.started_by("another cookie"));
        let unbound = LoginState {
            browser_hash: None,
            ..state
        };
        assert!(!unbound.started_by("cookie"));
    }
}

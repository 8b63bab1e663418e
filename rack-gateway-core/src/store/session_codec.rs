//! Input checks and value encodings for sessions and sign-ins, shared by both store backends.
//!
//! As in `codec.rs`, everything a caller hands the store is checked here first, so that both
//! backends refuse bad input the same way before any SQL runs.

use crate::identity::{
    LoginKind, NewLoginState, NewSession, SessionKind, TokenHash, UnknownSessionKind,
};

use super::codec::{check_text, invalid};
use super::StoreError;

/// Longest `User-Agent` kept (longer ones are cut, as in audit records).
pub(crate) const USER_AGENT_MAX: usize = 512;
/// Longest device name accepted.
pub(crate) const DEVICE_NAME_MAX: usize = 150;
/// Longest `return_to` accepted.
const RETURN_TO_MAX: usize = 2048;
/// Longest revocation reason or sign-in refusal accepted.
const REASON_MAX: usize = 1000;

/// A [`NewSession`] that passed every check, in stored form.
#[derive(Debug)]
pub(crate) struct CheckedSession {
    /// Lower-case hex hash.
    pub(crate) hash_hex: String,
    /// `web` or `cli`.
    pub(crate) kind: &'static str,
    /// The user agent, cleaned and cut.
    pub(crate) user_agent: Option<String>,
    /// The device name.
    pub(crate) device_name: Option<String>,
}

/// Checks a session before it is stored.
pub(crate) fn check_session(session: &NewSession) -> Result<CheckedSession, StoreError> {
    if let Some(device_name) = &session.device_name {
        check_text("device_name", device_name, DEVICE_NAME_MAX)?;
    }
    Ok(CheckedSession {
        hash_hex: session.hash.to_hex(),
        kind: session.kind.as_str(),
        user_agent: session.user_agent.as_deref().map(clean_user_agent),
        device_name: session.device_name.clone(),
    })
}

/// The stored form of a `User-Agent`: control characters become spaces and only the first
/// [`USER_AGENT_MAX`] characters are kept (it is shown to people, never trusted).
pub(crate) fn clean_user_agent(raw: &str) -> String {
    raw.chars()
        .take(USER_AGENT_MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Checks why a session is revoked: not empty, not too long, one line.
pub(crate) fn check_revoke_reason(reason: &str) -> Result<(), StoreError> {
    if reason.trim().is_empty() {
        return Err(invalid("revoked_reason", "is empty"));
    }
    check_text("revoked_reason", reason, REASON_MAX)
}

/// Checks a sign-in before it is stored.
pub(crate) fn check_login_state(state: &NewLoginState) -> Result<(), StoreError> {
    if let Some(return_to) = &state.return_to {
        check_text("return_to", return_to, RETURN_TO_MAX)?;
    }
    if let Some(device_name) = &state.device_name {
        check_text("device_name", device_name, DEVICE_NAME_MAX)?;
    }
    Ok(())
}

/// Checks the refusal recorded on a CLI sign-in.
pub(crate) fn check_login_error(error: &str) -> Result<(), StoreError> {
    if error.trim().is_empty() {
        return Err(invalid("error", "is empty"));
    }
    check_text("error", error, REASON_MAX)
}

/// Decodes a stored session kind.
pub(crate) fn session_kind(text: &str) -> Result<SessionKind, StoreError> {
    text.parse()
        .map_err(|e: UnknownSessionKind| StoreError::Corrupt(e.to_string()))
}

/// Decodes a stored sign-in kind.
pub(crate) fn login_kind(text: &str) -> Result<LoginKind, StoreError> {
    text.parse()
        .map_err(|e: UnknownSessionKind| StoreError::Corrupt(e.to_string()))
}

/// Decodes a stored hash.
pub(crate) fn hash(hex: &str, what: &str) -> Result<TokenHash, StoreError> {
    TokenHash::from_hex(hex.trim())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: not a SHA-256 in hex")))
}

/// Decodes a stored client address (SQLite keeps it as text).
#[cfg(feature = "sqlite")]
pub(crate) fn ip(text: &str) -> Result<std::net::IpAddr, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("session ip {text:?}: {e}")))
}

/// A missing user named by a session or a sign-in reads as such (the backends' foreign-key
/// mapping names token owners).
pub(crate) fn user_reference(error: StoreError) -> StoreError {
    match error {
        StoreError::Invalid {
            field: "owner_id",
            reason,
        } => StoreError::Invalid {
            field: "user_id",
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cleaned_and_cut() {
        assert_eq!(clean_user_agent("curl/8\t(x)\n"), "curl/8 (x) ");
        let long = "é".repeat(USER_AGENT_MAX + 10);
        assert_eq!(clean_user_agent(&long).chars().count(), USER_AGENT_MAX);
    }

    #[test]
    fn sessions_and_sign_ins_are_checked() {
        let mut session = NewSession {
            user_id: 1,
            kind: SessionKind::Cli,
            hash: TokenHash::of("rgs_x"),
            ip: None,
            user_agent: Some("a\u{0}b".into()),
            device_name: Some("laptop".into()),
        };
        let checked = check_session(&session).unwrap();
        assert_eq!(checked.kind, "cli");
        assert_eq!(checked.user_agent.as_deref(), Some("a b"));
        session.device_name = Some("d".repeat(DEVICE_NAME_MAX + 1));
        assert!(matches!(
            check_session(&session),
            Err(StoreError::Invalid {
                field: "device_name",
                ..
            })
        ));
        assert!(check_revoke_reason("").is_err());
        assert!(check_revoke_reason("two\nlines").is_err());
        assert!(check_revoke_reason("logout").is_ok());
        assert!(check_login_error(" ").is_err());
        let state = NewLoginState {
            state_hash: TokenHash::of("s"),
            kind: LoginKind::Web,
            browser_hash: None,
            return_to: Some("/app/\u{7}".into()),
            device_name: None,
            expires_at: chrono::Utc::now(),
        };
        assert!(check_login_state(&state).is_err());
    }

    #[test]
    fn stored_values_decode_or_are_corrupt() {
        assert_eq!(session_kind("web").unwrap(), SessionKind::Web);
        assert!(matches!(session_kind("tv"), Err(StoreError::Corrupt(_))));
        assert_eq!(login_kind("cli").unwrap(), LoginKind::Cli);
        let hash = TokenHash::of("x");
        assert_eq!(super::hash(&hash.to_hex(), "h").unwrap(), hash);
        assert!(super::hash("xyz", "h").is_err());
        assert!(matches!(
            user_reference(invalid("owner_id", "no such user")),
            StoreError::Invalid {
                field: "user_id",
                ..
            }
        ));
    }
}

//! Session tokens: what a signed-in browser holds in its `session_token` cookie and what
//! `rack-gateway login` stores for the CLI.
//!
//! A session token is `rgs_` followed by 32 random bytes in unpadded base64url (43 characters).
//! Like an API token it is shown once, when the session starts, and only its SHA-256
//! ([`TokenHash`]) is stored.
//!
//! ```
//! use rack_gateway_core::identity::{SessionSecret, TokenHash};
//!
//! let secret = SessionSecret::generate();
//! assert!(secret.expose().starts_with("rgs_"));
//! assert!(SessionSecret::is_well_formed(secret.expose()));
//! assert_eq!(secret.hash(), TokenHash::of(secret.expose()));
//! assert!(!format!("{secret:?}").contains(&secret.expose()[4..]));
//! ```

use std::fmt;

use super::token::{has_token_shape, random_token};
use super::{TokenHash, SESSION_TOKEN_PREFIX};

/// A plaintext session token. Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(String);

impl SessionSecret {
    /// Makes a new session token from 32 bytes of the operating system's randomness.
    pub fn generate() -> Self {
        SessionSecret(random_token(SESSION_TOKEN_PREFIX))
    }

    /// Accepts a presented credential if it has the shape of a session token.
    pub fn parse(presented: &str) -> Option<Self> {
        Self::is_well_formed(presented).then(|| SessionSecret(presented.to_owned()))
    }

    /// Whether `presented` has the shape of a session token (checked without allocating).
    pub fn is_well_formed(presented: &str) -> bool {
        has_token_shape(presented, SESSION_TOKEN_PREFIX)
    }

    /// The plaintext, for handing to the browser or the CLI once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the session is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(\"rgs_…\")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ApiTokenSecret;

    #[test]
    fn generated_tokens_have_the_shape_and_differ() {
        let a = SessionSecret::generate();
        let b = SessionSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 4 + 43);
        assert!(a.expose().starts_with(SESSION_TOKEN_PREFIX));
        assert_eq!(SessionSecret::parse(a.expose()), Some(a.clone()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = SessionSecret::generate();
        let shown = format!("{secret:?}");
        assert!(!shown.contains(&secret.expose()[4..]), "{shown}");
    }

    #[test]
    fn malformed_and_api_tokens_are_refused() {
        let api = ApiTokenSecret::generate();
        let padded = format!("rgs_{}=", "A".repeat(42));
        let long = format!("rgs_{}", "A".repeat(44));
        let bad_char = format!("rgs_{}/", "A".repeat(42));
        let non_ascii = format!("rgs_{}é", "A".repeat(41));
        for bad in [
            "",
            "rgs_",
            "rgs_short",
            api.expose(),
            &padded,
            &long,
            &bad_char,
            &non_ascii,
        ] {
            assert!(!SessionSecret::is_well_formed(bad), "{bad}");
            assert!(SessionSecret::parse(bad).is_none(), "{bad}");
        }
        // And a session token is not an API token.
        assert!(!ApiTokenSecret::is_well_formed(
            SessionSecret::generate().expose()
        ));
    }
}

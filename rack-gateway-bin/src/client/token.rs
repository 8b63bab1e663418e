//! The session token a gateway issues at sign-in: a secret that is stored, sent, and never shown.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A session token. `Debug` and `Display` are not derived so that it cannot end up in a message
/// by accident; [`SessionToken::expose`] is the one way to the text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionToken(String);

/// A token that could not travel in an `Authorization` header or a URL's user info.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session token is empty or holds spaces or control characters")]
pub struct UnusableToken;

impl SessionToken {
    /// The secret itself, for the `Authorization` header and the rack URL only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for SessionToken {
    type Err = UnusableToken;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Visible ASCII only: anything else cannot be a header value as it is.
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(SessionToken(text.to_owned()))
        } else {
            Err(UnusableToken)
        }
    }
}

impl TryFrom<String> for SessionToken {
    type Error = UnusableToken;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<SessionToken> for String {
    fn from(token: SessionToken) -> Self {
        token.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let token: SessionToken = "rgs_secret".parse().expect("token");
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn refuses_what_cannot_be_a_header_value() {
        for bad in ["", "rgs_a b", "rgs_a\nb", "rgs_é"] {
            assert_eq!(bad.parse::<SessionToken>(), Err(UnusableToken), "{bad:?}");
        }
    }
}

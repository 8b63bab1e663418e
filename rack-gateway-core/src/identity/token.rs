//! API tokens: generation, the stored hash, and the stored record.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::Serialize;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

/// Every API token starts with this prefix, so that it can be told apart from a session token.
pub const TOKEN_PREFIX: &str = "rgw_";

/// Every session token starts with this prefix, followed (like an API token) by 43 unpadded
/// base64url characters (see [`SessionSecret`](super::SessionSecret)).
pub const SESSION_TOKEN_PREFIX: &str = "rgs_";

const TOKEN_BYTES: usize = 32;
/// Unpadded base64url of 32 bytes.
const TOKEN_BODY_LEN: usize = 43;

/// A plaintext API token. Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenSecret(String);

impl ApiTokenSecret {
    /// Makes a new token from 32 bytes of the operating system's randomness.
    pub fn generate() -> Self {
        ApiTokenSecret(random_token(TOKEN_PREFIX))
    }

    /// Accepts a presented credential if it has the shape of an API token.
    pub fn parse(presented: &str) -> Option<Self> {
        Self::is_well_formed(presented).then(|| ApiTokenSecret(presented.to_owned()))
    }

    /// Whether `presented` has the shape of an API token (checked without allocating).
    pub fn is_well_formed(presented: &str) -> bool {
        has_token_shape(presented, TOKEN_PREFIX)
    }

    /// The plaintext, for showing to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// `prefix` followed by 32 random bytes in unpadded base64url.
pub(super) fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `presented` is `prefix` followed by 43 base64url characters (no allocation).
pub(super) fn has_token_shape(presented: &str, prefix: &str) -> bool {
    presented.strip_prefix(prefix).is_some_and(|body| {
        body.len() == TOKEN_BODY_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

impl fmt::Debug for ApiTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTokenSecret(\"rgw_…\")")
    }
}

/// SHA-256 of a token; the only form in which tokens are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        TokenHash(out)
    }

    /// Compares two hashes in constant time.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Lower-case hex, as stored.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses lower- or upper-case hex of 32 bytes.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok()?;
        }
        Some(TokenHash(out))
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// A stored API token, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Store-assigned identifier.
    pub id: i64,
    /// Identifier shown to people and accepted by `token revoke`.
    pub public_id: Uuid,
    /// Unique name among active tokens.
    pub name: String,
    /// The user the token belongs to; a token without an owner was made by an operator.
    pub owner_id: Option<i64>,
    /// The owner's email, when there is an owner.
    pub owner_email: Option<String>,
    /// Permission strings the token acts with, `*` segments allowed.
    pub permissions: Vec<String>,
    /// The role the permissions were expanded from, when one was named.
    pub role: Option<String>,
    /// Who created it (email, or `operator` for the shell).
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// After this instant the token is refused.
    pub expires_at: Option<DateTime<Utc>>,
    /// Roughly when it was last used (updated at most once per identity-cache fill).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once the token is revoked; revoked tokens never authenticate.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token has passed its expiry at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A token to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiToken {
    /// Unique name among active tokens.
    pub name: String,
    /// Hash of the secret.
    pub hash: TokenHash,
    /// Owning user, if any.
    pub owner_id: Option<i64>,
    /// Permission strings.
    pub permissions: Vec<String>,
    /// Role the permissions came from, if any.
    pub role: Option<String>,
    /// Who is creating it.
    pub created_by: Option<String>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = ApiTokenSecret::generate();
        let b = ApiTokenSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_PREFIX.len() + TOKEN_BODY_LEN);
        assert_eq!(ApiTokenSecret::parse(a.expose()), Some(a.clone()));
        assert!(!format!("{a:?}").contains(&a.expose()[4..]));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "rgw_",
            "rgw_short",
            "xyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(ApiTokenSecret::parse(bad).is_none(), "{bad}");
        }
        let with_bad_char = format!("rgw_{}+", "A".repeat(42));
        assert!(ApiTokenSecret::parse(&with_bad_char).is_none());
    }

    #[test]
    fn hash_hex_round_trips() {
        let hash = TokenHash::of("rgw_example");
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert!(TokenHash::from_hex("zz").is_none());
        // Known SHA-256 vector for "abc".
        assert_eq!(
            TokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! The secrets of one sign-in, all bound to its `state`.
//!
//! The state is random and travels through the browser; the nonce and the PKCE verifier are
//! derived from it with a key of the gateway's (HMAC, with a purpose label), so nothing secret is
//! stored for a sign-in in progress, and they cannot be guessed from the state without the key.
//! The browser sees the state and the verifier's challenge; the CLI alone is handed the verifier,
//! and must show it to collect its session — someone who only saw the sign-in URL cannot.
//!
//! ```
//! use rack_gateway_bin::signin::secrets::LoginKey;
//!
//! let key = LoginKey::from_app_secret(b"APP_SECRET_KEY bytes, at least 32 of them......");
//! let login = key.start();
//! assert_eq!(key.for_state(login.state()).verifier(), login.verifier());
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rack_gateway_core::identity::TokenHash;
use rand::RngCore as _;
use ring::hmac;
use subtle::ConstantTimeEq as _;

/// Derives the per-sign-in secrets; built once from APP_SECRET_KEY.
#[derive(Clone)]
pub struct LoginKey {
    key: hmac::Key,
}

impl std::fmt::Debug for LoginKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginKey(..)")
    }
}

/// One sign-in's state, nonce and PKCE verifier.
#[derive(Clone)]
pub struct LoginSecrets {
    state: String,
    nonce: String,
    verifier: String,
}

impl std::fmt::Debug for LoginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginSecrets(..)")
    }
}

impl LoginKey {
    /// The key for sign-ins, derived from APP_SECRET_KEY under its own label (so that it is
    /// unrelated to the other keys taken from the same secret).
    pub fn from_app_secret(app_secret: &[u8]) -> Self {
        LoginKey {
            key: hmac::Key::new(
                hmac::HMAC_SHA256,
                &derive(app_secret, "rack-gateway sign-in v1"),
            ),
        }
    }

    /// A new sign-in: a random state and what derives from it.
    pub fn start(&self) -> LoginSecrets {
        self.for_state(&random_token())
    }

    /// The secrets of the sign-in with this state.
    pub fn for_state(&self, state: &str) -> LoginSecrets {
        LoginSecrets {
            state: state.to_owned(),
            nonce: self.mac("nonce", state),
            verifier: self.mac("pkce", state),
        }
    }

    fn mac(&self, purpose: &str, state: &str) -> String {
        let tag = hmac::sign(&self.key, format!("{purpose}|{state}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }
}

impl LoginSecrets {
    /// The state (in the sign-in URL and the callback).
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The ID token's expected nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The PKCE verifier (43 characters, RFC 7636's unreserved alphabet).
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// How the state is stored: only its hash.
    pub fn state_hash(&self) -> TokenHash {
        TokenHash::of(&self.state)
    }

    /// Whether `presented` is this sign-in's verifier (constant time).
    pub fn verifier_matches(&self, presented: &str) -> bool {
        self.verifier.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// 32 random bytes, unpadded base64url (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key for one purpose, derived from the application secret.
pub fn derive(app_secret: &[u8], purpose: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret);
    let tag = hmac::sign(&key, purpose.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_bound_to_the_state_and_the_key() {
        let key = LoginKey::from_app_secret(b"0123456789abcdef0123456789abcdef");
        let login = key.start();
        assert_eq!(login.state().len(), 43);
        assert_eq!(login.verifier().len(), 43);
        assert!(login
            .verifier()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let again = key.for_state(login.state());
        assert!(again.verifier_matches(login.verifier()));
        assert_eq!(again.nonce(), login.nonce());
        assert_ne!(login.nonce(), login.verifier());
        let other_key = LoginKey::from_app_secret(b"another secret, 32 bytes long!!!");
        assert!(!other_key
            .for_state(login.state())
            .verifier_matches(login.verifier()));
        assert_ne!(key.start().state(), login.state());
        assert_ne!(derive(b"k", "a"), derive(b"k", "b"));
    }
}

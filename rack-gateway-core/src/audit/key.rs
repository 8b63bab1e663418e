//! HMAC keys of the chain, identified by a short fingerprint.

use std::fmt;

use ring::hmac;

use super::encode::hex;

/// One HMAC-SHA256 key, built once, with its id (first 16 hex chars of SHA-256 of the key).
#[derive(Clone)]
pub struct ChainKey {
    key: hmac::Key,
    id: String,
}

impl ChainKey {
    /// Builds the key from its secret bytes.
    pub fn new(secret: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, secret);
        ChainKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            id: hex(&digest.as_ref()[..8]),
        }
    }

    /// The key id stored in each row.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256 of `input`.
    pub fn mac(&self, input: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.key, input);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `mac` is the MAC of `input` under this key (constant time).
    pub fn verify(&self, input: &[u8], mac: &[u8; 32]) -> bool {
        hmac::verify(&self.key, input, mac).is_ok()
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainKey({})", self.id)
    }
}

/// The current key and the previous ones that still verify older rows.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: ChainKey,
    previous: Vec<ChainKey>,
}

impl Keyring {
    /// A keyring that signs with `current`.
    pub fn new(current: ChainKey, previous: Vec<ChainKey>) -> Self {
        Keyring { current, previous }
    }

    /// The signing key.
    pub fn current(&self) -> &ChainKey {
        &self.current
    }

    /// The key with this id, current or previous.
    pub fn by_id(&self, id: &str) -> Option<&ChainKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id() == id)
    }
}

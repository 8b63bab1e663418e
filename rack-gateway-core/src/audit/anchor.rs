//! Anchors: copies of the chain head kept in WORM storage (S3 Object Lock).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::encode::timestamp;

/// The anchor body format version.
pub const ANCHOR_VERSION: u32 = 1;

/// Where the previous anchor is, and what it said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorRef {
    /// Its object key.
    pub key: String,
    /// The seq it anchored.
    pub seq: u64,
    /// The MAC it anchored (hex).
    pub mac: String,
}

/// One anchor: the chain head at a moment, linked to the previous anchor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Body format version.
    pub version: u32,
    /// The chain (AUDIT_ANCHOR_CHAIN_ID).
    pub chain_id: String,
    /// Seq of the anchored row.
    pub seq: u64,
    /// MAC of the anchored row (hex).
    pub mac: String,
    /// Key id of the anchored row.
    pub key_id: String,
    /// recorded_at of the anchored row (RFC 3339, six fractional digits).
    pub recorded_at: String,
    /// When the anchor was written.
    pub anchored_at: String,
    /// The previous anchor, or `None` for the first.
    pub prev_anchor: Option<AnchorRef>,
}

impl Anchor {
    /// The object key: `<chain_id>/<YYYY>/<MM>/<DD>/<seq, 20 digits>.json` (date of anchoring).
    pub fn object_key(chain_id: &str, anchored_at: &DateTime<Utc>, seq: u64) -> String {
        format!(
            "{chain_id}/{}/{seq:020}.json",
            anchored_at.format("%Y/%m/%d")
        )
    }

    /// Builds the anchor for a head row.
    pub fn new(
        chain_id: &str,
        seq: u64,
        mac: &[u8; 32],
        key_id: &str,
        recorded_at: &DateTime<Utc>,
        anchored_at: &DateTime<Utc>,
        prev_anchor: Option<AnchorRef>,
    ) -> Self {
        Anchor {
            version: ANCHOR_VERSION,
            chain_id: chain_id.to_owned(),
            seq,
            mac: super::encode::hex(mac),
            key_id: key_id.to_owned(),
            recorded_at: timestamp(recorded_at),
            anchored_at: timestamp(anchored_at),
            prev_anchor,
        }
    }

    /// The JSON body written to the object store.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a body read back from the object store.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated_and_zero_padded_and_bodies_round_trip() {
        let at = DateTime::from_timestamp(1_767_323_045, 0).unwrap();
        assert_eq!(
            Anchor::object_key("prod", &at, 42),
            "prod/2026/01/02/00000000000000000042.json"
        );
        let anchor = Anchor::new("prod", 42, &[7; 32], "abcd", &at, &at, None);
        assert_eq!(Anchor::from_json(&anchor.to_json()).unwrap(), anchor);
    }
}

//! The tamper-evident audit trail: records, their canonical encoding, the HMAC chain,
//! verification and the anchor model.
//!
//! Every record carries `mac = HMAC-SHA256(key, "rgw-audit-v1" || seq || prev_mac || fields)`
//! (see [`encode`] for the exact bytes), so editing, deleting, reordering or re-MACing a row
//! breaks the chain at that row, and [`Verifier`] says where. Anchors ([`Anchor`]) copy the
//! chain head to WORM storage so that deleting the newest rows is caught too.
//!
//! ```
//! use chrono::Utc;
//! use rack_gateway_core::audit::{seal, AuditEvent, ChainHead, ChainKey, Keyring, Verifier};
//!
//! let key = ChainKey::new(b"an audit key of at least 32 bytes!!");
//! let records = seal(ChainHead::genesis(), &key, Utc::now(), vec![AuditEvent::system("audit.test", "example")]);
//! let mut verifier = Verifier::new(Keyring::new(key, vec![]), ChainHead::genesis());
//! for record in &records {
//!     verifier.check(record).unwrap();
//! }
//! ```

mod anchor;
pub mod encode;
mod event;
mod key;
mod seal;
mod verify;

pub use anchor::{Anchor, AnchorRef, ANCHOR_VERSION};
pub use event::{ActorKind, AuditDecision, AuditEvent, AuditRecord, Phase, USER_AGENT_MAX_CHARS};
pub use key::{ChainKey, Keyring};
pub use seal::{seal, ChainHead};
pub use verify::{Tamper, Verifier};

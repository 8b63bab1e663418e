//! The tamper-evident audit trail: records, their canonical encoding, the HMAC chain,
//! verification, the anchor model, and [`AuditSink`], where records are appended.
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
//!
//! Records reach storage through an [`AuditSink`], which seals each batch after the current head
//! and stores it under a lock that keeps concurrent appenders from interleaving. The gateway's
//! stores are sinks (their [`AuditStore`](crate::store::AuditStore) adds queries, retention and
//! anchors); a service can implement one over its own storage (see [`AuditSink`]).
//!
//! ```
//! use rack_gateway_core::audit::{AuditEvent, AuditSink, ChainKey};
//! use rack_gateway_core::store::StoreError;
//!
//! /// Records that the service started, in whatever storage `sink` is; returns the seq.
//! async fn record_start(sink: &dyn AuditSink, key: &ChainKey) -> Result<Option<u64>, StoreError> {
//!     let event = AuditEvent::system("service.start", "started");
//!     let records = sink.append_audit(key, vec![event]).await?;
//!     Ok(records.first().map(|record| record.seq))
//! }
//! ```

mod anchor;
pub mod encode;
mod event;
mod key;
mod seal;
mod sink;
mod verify;

pub use anchor::{Anchor, AnchorRef, ANCHOR_VERSION};
pub use event::{ActorKind, AuditDecision, AuditEvent, AuditRecord, Phase, USER_AGENT_MAX_CHARS};
pub use key::{ChainKey, Keyring};
pub use seal::{seal, ChainHead};
pub use sink::AuditSink;
pub use verify::{Tamper, Verifier};

//! Where the audit writer puts records: the one thing it needs from storage.
//!
//! The gateway's stores implement [`AuditSink`] as part of
//! [`AuditStore`](crate::store::AuditStore), which adds reading, retention and anchors. A
//! service embedding the layers can implement just this over its own storage. What matters is
//! that reading the head, sealing and storing happen as one step that no other appender (in
//! this process or another) can interleave with; otherwise two batches could claim the same seq.
//!
//! ```
//! use async_trait::async_trait;
//! use chrono::Utc;
//! use rack_gateway_core::audit::{seal, AuditEvent, AuditRecord, AuditSink, ChainHead, ChainKey};
//! use rack_gateway_core::store::StoreError;
//! use tokio::sync::Mutex;
//!
//! /// A chain kept in memory: the mutex is the chain lock.
//! #[derive(Default)]
//! struct InMemory(Mutex<Vec<AuditRecord>>);
//!
//! #[async_trait]
//! impl AuditSink for InMemory {
//!     async fn append_audit(
//!         &self,
//!         key: &ChainKey,
//!         events: Vec<AuditEvent>,
//!     ) -> Result<Vec<AuditRecord>, StoreError> {
//!         let mut chain = self.0.lock().await;
//!         let head = match chain.last() {
//!             Some(newest) => ChainHead { seq: newest.seq, mac: newest.mac },
//!             None => ChainHead::genesis(),
//!         };
//!         let sealed = seal(head, key, Utc::now(), events);
//!         chain.extend(sealed.iter().cloned());
//!         Ok(sealed)
//!     }
//!
//!     async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
//!         Ok(self.0.lock().await.last().cloned())
//!     }
//! }
//! ```

use async_trait::async_trait;

use super::{AuditEvent, AuditRecord, ChainKey};
use crate::store::StoreError;

/// An append-only home for the audit chain.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Seals `events` after the current head with [`seal`](super::seal) and stores them, all
    /// under a lock that serialises appenders (across processes, if several share the storage);
    /// returns the stored records. Either every record is stored or none is.
    ///
    /// An implementation may adjust events before sealing (the gateway's stores replace NUL
    /// characters, which PostgreSQL text cannot hold), as long as the records returned are
    /// exactly what was sealed and stored.
    async fn append_audit(
        &self,
        key: &ChainKey,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// The newest stored record, if any.
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError>;
}

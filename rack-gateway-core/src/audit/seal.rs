//! Joining events to the chain.

use chrono::{DateTime, Utc};

use super::encode::{mac_input, to_micros};
use super::{AuditEvent, AuditRecord, ChainKey};

/// The newest row of the chain (or where it starts): its seq and MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Seq of the newest row; 0 for an empty chain.
    pub seq: u64,
    /// MAC of the newest row; zeros for an empty chain.
    pub mac: [u8; 32],
}

impl ChainHead {
    /// The head of an empty chain.
    pub fn genesis() -> Self {
        ChainHead {
            seq: 0,
            mac: [0; 32],
        }
    }
}

/// Seals `events` after `head`, all recorded at `recorded_at` (truncated to microseconds).
pub fn seal(
    head: ChainHead,
    key: &ChainKey,
    recorded_at: DateTime<Utc>,
    events: Vec<AuditEvent>,
) -> Vec<AuditRecord> {
    let recorded_at = to_micros(recorded_at);
    let mut prev = head;
    events
        .into_iter()
        .map(|event| {
            let mut record = AuditRecord {
                seq: prev.seq + 1,
                recorded_at,
                event: event.normalized(),
                key_id: key.id().to_owned(),
                prev_mac: prev.mac,
                mac: [0; 32],
            };
            record.mac = key.mac(&mac_input(&record));
            prev = ChainHead {
                seq: record.seq,
                mac: record.mac,
            };
            record
        })
        .collect()
}

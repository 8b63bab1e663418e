//! Why an anchor could not be written or read.

use rack_gateway_core::store::StoreError;

/// A failure of the anchoring machinery (not a tampering finding: see
/// [`AnchorProblem`](super::AnchorProblem) for those).
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The anchoring variables are invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store failed (lease, head or anchor table).
    #[error("anchor store: {0}")]
    Store(#[from] StoreError),
    /// An S3 request failed (after the SDK's own retries).
    #[error("S3 {operation} s3://{bucket}/{key}: {message}")]
    S3 {
        /// The S3 operation, e.g. `PutObject`.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key (empty for bucket-level operations).
        key: String,
        /// The SDK's error with its sources (never contains credentials).
        message: String,
    },
    /// The anchor object does not exist.
    #[error("anchor object s3://{bucket}/{key} not found")]
    NotFound {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
    /// The object exists but is not an anchor body.
    #[error("anchor object s3://{bucket}/{key} is not a valid anchor: {reason}")]
    Malformed {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object already exists at the key and says something else.
    #[error("anchor object {key} already exists with a different head (seq {existing_seq})")]
    Conflict {
        /// The object key.
        key: String,
        /// The seq the existing object anchors.
        existing_seq: u64,
    },
    /// The database head is behind, or differs from, the newest recorded anchor: rows were
    /// removed or rewritten. The writer refuses to anchor such a chain.
    #[error("audit chain head (seq {head_seq}) contradicts the newest anchor {key} (seq {anchored_seq}): {what}")]
    HeadContradictsAnchor {
        /// The database head's seq.
        head_seq: u64,
        /// The newest anchor's seq.
        anchored_seq: u64,
        /// The newest anchor's key.
        key: String,
        /// What is wrong.
        what: &'static str,
    },
    /// Another writer recorded an anchor while this one was writing; this one's object is left
    /// unrecorded (harmless) and the next round starts from the new anchor.
    #[error("another writer recorded anchor {key} meanwhile; {orphan} left unrecorded")]
    LostRace {
        /// The anchor the other writer recorded.
        key: String,
        /// The object this writer put but did not record.
        orphan: String,
    },
}

impl AnchorError {
    /// A short label for the failures metric: `config`, `store`, `s3` or `chain`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnchorError::Config(_) => "config",
            AnchorError::Store(_) => "store",
            AnchorError::S3 { .. }
            | AnchorError::NotFound { .. }
            | AnchorError::Malformed { .. }
            | AnchorError::Conflict { .. } => "s3",
            AnchorError::HeadContradictsAnchor { .. } | AnchorError::LostRace { .. } => "chain",
        }
    }
}

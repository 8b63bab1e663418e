//! Store failures.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name or email is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// Input the store refuses (too long, malformed).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The store could not be reached or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded (a bug or tampering).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

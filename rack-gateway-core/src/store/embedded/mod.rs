//! Embedded store (placeholder until the implementation lands in this change).
#![allow(missing_docs)]
use super::*;

/// The embedded store.
pub struct EmbeddedStore;
impl EmbeddedStore {
    pub async fn open(_dir: &std::path::Path) -> Result<Self, StoreError> {
        Err(StoreError::Unavailable("not built yet".into()))
    }
}

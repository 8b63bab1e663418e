//! PostgreSQL store (placeholder until the implementation lands in this change).
#![allow(missing_docs)]
use super::*;
use crate::identity::*;
use crate::rbac::Role;

/// The production store.
pub struct PostgresStore;
impl PostgresStore {
    pub async fn connect(_url: &str, _max: usize) -> Result<Self, StoreError> {
        Err(StoreError::Unavailable("not built yet".into()))
    }
}

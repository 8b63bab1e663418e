//! Persistence: the [`Store`] trait and its two implementations.
//!
//! [`PostgresStore`] is the production store, shared by every gateway instance.
//! [`EmbeddedStore`] keeps everything in one SQLite file inside a directory and needs no
//! server; `rack-gateway dev` and single-instance trials use it. The same conformance suite
//! (`tests/store_conformance.rs`) runs against both.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rack_gateway_core::store::StoreError> {
//! use rack_gateway_core::store::{open, Store};
//!
//! let store = open(None, std::path::Path::new("./rack-gateway-data"), 16).await?;
//! store.migrate().await?;
//! store.ping().await?;
//! # Ok(()) }
//! ```

mod codec;
mod embedded;
mod error;
mod postgres;
mod schema;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use postgres::PostgresStore;

use crate::identity::{ApiToken, NewApiToken, NewUser, TokenHash, User};
use crate::rbac::Role;

/// What the identity change feed reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityEvent {
    /// A user or token changed somewhere (any instance): cached identities are stale.
    Changed,
    /// The feed lost its connection: changes may be missed until [`IdentityEvent::Resumed`].
    Disconnected,
    /// The feed is connected again (after [`IdentityEvent::Disconnected`]).
    Resumed,
}

/// Receives [`IdentityEvent`]s; closes when the store is dropped.
pub type IdentityWatch = tokio::sync::mpsc::Receiver<IdentityEvent>;

/// Everything the gateway persists. Implementations are cheap to share behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending schema migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Which backend this is: `postgres` or `embedded`.
    fn backend(&self) -> &'static str;

    /// Adds a user; [`StoreError::Conflict`] when the email exists.
    async fn insert_user(&self, user: &NewUser) -> Result<User, StoreError>;
    /// Makes sure a user exists with exactly these roles (bootstrap lists), creating it if needed.
    async fn ensure_user(&self, user: &NewUser) -> Result<User, StoreError>;
    /// Looks a user up by email (case-insensitive).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Looks a user up by id.
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// Every user, ordered by email.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Replaces a user's roles; false when there is no such user.
    async fn set_user_roles(&self, email: &str, roles: &[Role]) -> Result<bool, StoreError>;
    /// Locks (with a reason) or unlocks (`None`) a user; false when there is no such user.
    async fn set_user_lock(&self, email: &str, reason: Option<&str>) -> Result<bool, StoreError>;
    /// Suspends or reinstates a user; false when there is no such user.
    async fn set_user_suspended(&self, email: &str, suspended: bool) -> Result<bool, StoreError>;
    /// Deletes a user; their tokens stop working. False when there is no such user.
    async fn delete_user(&self, email: &str) -> Result<bool, StoreError>;

    /// Stores a token; [`StoreError::Conflict`] when an active token has the name.
    async fn insert_token(&self, token: &NewApiToken) -> Result<ApiToken, StoreError>;
    /// The active (not revoked) token with this hash.
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError>;
    /// Active tokens, ordered by name.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes the active token with this name or public id; false when none matched.
    async fn revoke_token(&self, name_or_public_id: &str) -> Result<bool, StoreError>;
    /// Records that a token was used; does not count as an identity change.
    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Subscribes to identity changes made by any process sharing this store.
    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError>;
}

/// Opens PostgreSQL when `database_url` is given, else the embedded store in `data_dir`.
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
    max_connections: usize,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) => Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        )),
        None => Ok(Arc::new(EmbeddedStore::open(data_dir).await?)),
    }
}

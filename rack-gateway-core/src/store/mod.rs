//! Persistence: the [`Store`] trait and its two implementations.
//!
//! [`Store`] is everything the gateway persists. It is built from narrower traits, so that code
//! needing less asks for less: [`IdentitySource`] (what the identity resolver reads),
//! [`AuditSink`] (what the audit writer appends to), [`AuditStore`] (the sink plus reading,
//! retention, anchors and leases) and [`SettingsStore`].
//!
//! With the `postgres` feature, [`PostgresStore`] is the production store, shared by every
//! gateway instance. With the `sqlite` feature, [`EmbeddedStore`] keeps everything in one SQLite
//! file inside a directory and needs no server; `rack-gateway dev` and single-instance trials
//! use it. [`open`] picks one from the configuration. The same conformance suites
//! (`tests/store_conformance.rs`, `tests/store_audit.rs`, `tests/store_settings.rs`) run against
//! both. Without either feature this module holds only the traits and their types.
//!
//! ```
//! use rack_gateway_core::store::{Store, StoreError};
//!
//! /// Start-up check that works with any backend.
//! async fn check(store: &dyn Store) -> Result<(), StoreError> {
//!     store.migrate().await?;
//!     store.ping().await
//! }
//! ```

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod audit_codec;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod codec;
#[cfg(feature = "sqlite")]
mod embedded;
mod error;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod open;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod schema;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod session_codec;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod settings_codec;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[cfg(feature = "sqlite")]
pub use embedded::EmbeddedStore;
pub use error::StoreError;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use open::open;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;

use crate::audit::{Anchor, AuditDecision, AuditRecord, AuditSink, ChainHead};
use crate::identity::{
    ApiToken, CliLoginPoll, IdentitySource, LoginKind, LoginStateUse, NewApiToken, NewLoginState,
    NewSession, NewUser, Session, SessionLimits, TokenHash, User,
};
use crate::rbac::Role;

/// What the identity change feed reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityEvent {
    /// A user, token, session or setting changed somewhere (any instance): caches are stale.
    Changed,
    /// The feed lost its connection: changes may be missed until [`IdentityEvent::Resumed`].
    Disconnected,
    /// The feed is connected again (after [`IdentityEvent::Disconnected`]).
    Resumed,
}

/// Receives [`IdentityEvent`]s; closes when the store is dropped.
pub type IdentityWatch = tokio::sync::mpsc::Receiver<IdentityEvent>;

/// Which audit rows to read, and in which order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Actor email or token name, exact match.
    pub actor: Option<String>,
    /// Action, exact match (e.g. `app.list`).
    pub action: Option<String>,
    /// Decision.
    pub decision: Option<AuditDecision>,
    /// HTTP status.
    pub status: Option<u16>,
    /// recorded_at at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// recorded_at before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Keyset cursor: only rows with seq below it (newest first) or above it (oldest first).
    pub cursor: Option<u64>,
    /// Oldest first when true (exports); newest first otherwise (listings).
    pub oldest_first: bool,
}

/// What a retention run removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Rows deleted.
    pub deleted: u64,
    /// The checkpoint after the run (seq and MAC of the last deleted row), if any rows were ever pruned.
    pub checkpoint: Option<ChainHead>,
}

/// The audit trail's storage: the append-only chain ([`AuditSink`]), its checkpoint, anchors
/// and leases.
///
/// Both stores append in one transaction under a lock that serialises appenders across
/// processes, after making events storable (NUL characters, which PostgreSQL text cannot hold,
/// become U+FFFD), so the records returned are exactly what was hashed and stored.
#[async_trait]
pub trait AuditStore: AuditSink {
    /// Where the stored chain starts: the retention checkpoint, or genesis.
    async fn audit_start(&self) -> Result<ChainHead, StoreError>;
    /// Rows with `seq >= from_seq`, oldest first, at most `limit`.
    async fn audit_range(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Rows matching `filter`, at most `limit`.
    async fn audit_query(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Deletes rows with `seq <= up_to_seq` recorded before `before`, moving the checkpoint to
    /// the last deleted row, in one transaction (the only DELETE the table allows).
    async fn prune_audit(
        &self,
        up_to_seq: u64,
        before: DateTime<Utc>,
    ) -> Result<PruneOutcome, StoreError>;
    /// Remembers an anchor written to the object store under `object_key`.
    async fn record_anchor(&self, object_key: &str, anchor: &Anchor) -> Result<(), StoreError>;
    /// The newest anchor recorded, with its object key.
    async fn latest_anchor(&self) -> Result<Option<(String, Anchor)>, StoreError>;
    /// Every anchor recorded, oldest first, with its object key.
    async fn list_anchors(&self) -> Result<Vec<(String, Anchor)>, StoreError>;
    /// Takes or renews the lease `name` for `holder` for `ttl`; false when another holder has it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// One stored setting (see [`crate::settings`] for what the keys mean).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSetting {
    /// The app, or `None` for a global setting.
    pub app: Option<String>,
    /// The key.
    pub key: String,
    /// The value as given (the settings layer checks it before storing).
    pub value: serde_json::Value,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// Who wrote it last (an email or a token name).
    pub updated_by: Option<String>,
}

/// The settings table: global rows (`app` is `None`) and per-app rows, one per (app, key).
///
/// Every change counts as an identity change: it is announced on the identity feed
/// ([`IdentitySource::watch_identity`]) so that settings caches in every process reload at once.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Every stored setting: global ones first, then by app; by key within each.
    async fn list_settings(&self) -> Result<Vec<StoredSetting>, StoreError>;
    /// Inserts or replaces `values` (key, value) of `app` (`None`: global) in one transaction,
    /// recording `updated_by`; returns the rows as stored, in the order given.
    async fn put_settings(
        &self,
        app: Option<&str>,
        values: &[(String, serde_json::Value)],
        updated_by: Option<&str>,
    ) -> Result<Vec<StoredSetting>, StoreError>;
    /// Deletes the rows of `keys` of `app` in one transaction; returns how many existed.
    async fn delete_settings(&self, app: Option<&str>, keys: &[String]) -> Result<u64, StoreError>;

    /// Inserts or replaces one setting.
    async fn put_setting(
        &self,
        app: Option<&str>,
        key: &str,
        value: &serde_json::Value,
        updated_by: Option<&str>,
    ) -> Result<StoredSetting, StoreError> {
        let mut rows = self
            .put_settings(app, &[(key.to_owned(), value.clone())], updated_by)
            .await?;
        rows.pop()
            .ok_or_else(|| StoreError::Unavailable("upsert returned no row".into()))
    }

    /// Deletes one setting; false when it was not stored.
    async fn delete_setting(&self, app: Option<&str>, key: &str) -> Result<bool, StoreError> {
        Ok(self.delete_settings(app, &[key.to_owned()]).await? > 0)
    }
}

/// Everything the gateway persists. Implementations are cheap to share behind an `Arc`.
///
/// Their [`IdentitySource::watch_identity`] reports changes to users, tokens, sessions and
/// settings made by any process sharing the store (not recorded uses, nor sign-ins in
/// progress).
#[async_trait]
pub trait Store: IdentitySource + AuditStore + SettingsStore + 'static {
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
    /// Active tokens, ordered by name.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes the active token with this name or public id; false when none matched.
    async fn revoke_token(&self, name_or_public_id: &str) -> Result<bool, StoreError>;

    /// Starts a session (only its token's hash is stored); [`StoreError::Invalid`] when the
    /// user does not exist, [`StoreError::Conflict`] when the hash is taken.
    async fn insert_session(&self, session: &NewSession) -> Result<Session, StoreError>;
    /// The session with this public id, ended or not.
    async fn session_by_public_id(
        &self,
        public_id: uuid::Uuid,
    ) -> Result<Option<Session>, StoreError>;
    /// The user's sessions that have not been revoked, newest first (some may be past their
    /// limits until the sweeper ends them).
    async fn list_sessions(&self, user_id: i64) -> Result<Vec<Session>, StoreError>;
    /// Ends the session with this public id, recording `reason`; false when there is none or
    /// it had ended already.
    async fn revoke_session(&self, public_id: uuid::Uuid, reason: &str)
        -> Result<bool, StoreError>;
    /// Ends every session of the user that has not ended, recording `reason`; how many.
    async fn revoke_user_sessions(&self, user_id: i64, reason: &str) -> Result<u64, StoreError>;
    /// Ends every session past its idle or absolute limit at `now` (reason `expired (idle)` or
    /// `expired (absolute)`, whichever limit it reached first) and returns them, oldest first,
    /// for the audit trail.
    async fn expire_sessions(
        &self,
        limits: &SessionLimits,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError>;

    /// Stores a sign-in in progress; [`StoreError::Conflict`] when the state hash is taken.
    async fn insert_login_state(&self, state: &NewLoginState) -> Result<(), StoreError>;
    /// Uses the sign-in of `kind` with this state hash, once: atomically marks it consumed and
    /// returns it when it is unused and unexpired at `now`, else says why not.
    async fn consume_login_state(
        &self,
        state_hash: &TokenHash,
        kind: LoginKind,
        now: DateTime<Utc>,
    ) -> Result<LoginStateUse, StoreError>;
    /// Records the outcome of a consumed CLI sign-in: the user who signed in, or why it was
    /// refused. False when there is no such consumed CLI sign-in or it has an outcome already.
    async fn finish_cli_login(
        &self,
        state_hash: &TokenHash,
        outcome: Result<i64, String>,
    ) -> Result<bool, StoreError>;
    /// What the polling CLI learns at `now`; an outcome is handed out once (the sign-in is
    /// deleted as it is taken).
    async fn take_cli_login(
        &self,
        state_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<CliLoginPoll, StoreError>;
    /// Deletes the sign-ins that expired by `now`, used or not; how many.
    async fn delete_expired_login_states(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

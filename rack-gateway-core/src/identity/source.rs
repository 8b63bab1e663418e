//! What the [`IdentityResolver`](super::IdentityResolver) needs from storage, and nothing more.
//!
//! The gateway's stores implement [`IdentitySource`] as part of
//! [`Store`](crate::store::Store); a service embedding the layers can implement it over its own
//! user and token tables instead. Only the two lookups are required: sessions, the record of
//! use and the change feed have defaults for a source without sessions and without changes.
//!
//! ```
//! use std::collections::HashMap;
//!
//! use async_trait::async_trait;
//! use rack_gateway_core::identity::{ApiToken, IdentitySource, TokenHash, User};
//! use rack_gateway_core::store::StoreError;
//!
//! /// Tokens and users fixed at start-up (so the default, quiet change feed is enough).
//! struct Fixed {
//!     tokens: HashMap<TokenHash, ApiToken>,
//!     users: HashMap<i64, User>,
//! }
//!
//! #[async_trait]
//! impl IdentitySource for Fixed {
//!     async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
//!         Ok(self.tokens.get(hash).cloned())
//!     }
//!
//!     async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
//!         Ok(self.users.get(&id).cloned())
//!     }
//! }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{ApiToken, Session, TokenHash, User};
use crate::store::{IdentityEvent, IdentityWatch, StoreError};

/// Where credentials are looked up: tokens by hash, their owners by id, and a feed of changes.
#[async_trait]
pub trait IdentitySource: Send + Sync {
    /// The active (not revoked) token with this hash.
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError>;

    /// Looks a user up by id.
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError>;

    /// Records that a token was used; does not count as an identity change.
    ///
    /// The default records nothing. The resolver calls it in the background and only logs a
    /// failure, so it never delays or refuses a request.
    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let _ = (id, at);
        Ok(())
    }

    /// The session with this hash, whether it has ended or not (so that an ended session is
    /// refused with its reason).
    ///
    /// The default knows no sessions: every session token is refused.
    async fn session_by_hash(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let _ = hash;
        Ok(None)
    }

    /// Records that a session was used at `at` (moves `last_seen_at` forward, never back);
    /// does not count as an identity change.
    ///
    /// The resolver calls it in the background at most every 30 seconds per session and only
    /// logs a failure. The default records nothing.
    async fn touch_session(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let _ = (id, at);
        Ok(())
    }

    /// Ends a session that has not ended yet (sets `revoked_at` and `revoked_reason`); false
    /// when it had ended already or does not exist.
    ///
    /// The resolver calls it in the background when it finds a session past its limits, with
    /// the reason `expired (idle)` or `expired (absolute)`, so that the session shows as ended.
    /// The default records nothing.
    async fn end_session(&self, id: i64, reason: &str) -> Result<bool, StoreError> {
        let _ = (id, reason);
        Ok(false)
    }

    /// Subscribes to changes of users, tokens and sessions made by any process sharing this
    /// source.
    ///
    /// Send [`IdentityEvent::Changed`] after every change that can make a cached answer wrong
    /// (a revocation, a deletion, a lock, new roles, a new token or session; not a recorded
    /// use). The resolver empties its cache
    /// on each event, and stops caching for good if the feed closes.
    ///
    /// The default is a quiet feed: it stays open and never reports anything. With it a change
    /// reaches the resolver only when cached entries expire, so a revoked token keeps working for
    /// up to [`ResolverConfig::ttl`](super::ResolverConfig::ttl) and a new one is refused for up
    /// to [`ResolverConfig::negative_ttl`](super::ResolverConfig::negative_ttl). Override it
    /// whenever revocation must take effect sooner.
    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError> {
        Ok(quiet_feed())
    }
}

/// Any shared source (a concrete type, `dyn IdentitySource`, or a wider trait object such as
/// `dyn Store`) as one sized [`IdentitySource`], so that the resolver can accept them all.
pub(super) struct SharedSource<S: ?Sized>(pub(super) Arc<S>);

// Every method forwards, the provided ones too: their defaults must not hide the source's own.
#[async_trait]
impl<S: IdentitySource + ?Sized> IdentitySource for SharedSource<S> {
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        self.0.token_by_hash(hash).await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.0.user_by_id(id).await
    }

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.0.touch_token(id, at).await
    }

    async fn session_by_hash(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.0.session_by_hash(hash).await
    }

    async fn touch_session(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.0.touch_session(id, at).await
    }

    async fn end_session(&self, id: i64, reason: &str) -> Result<bool, StoreError> {
        self.0.end_session(id, reason).await
    }

    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError> {
        self.0.watch_identity().await
    }
}

/// A feed that stays open until its receiver is dropped and never reports anything.
fn quiet_feed() -> IdentityWatch {
    let (sender, receiver) = tokio::sync::mpsc::channel::<IdentityEvent>(1);
    // Holding the sender keeps the feed open: a closed feed would turn the cache off.
    tokio::spawn(async move { sender.closed().await });
    receiver
}

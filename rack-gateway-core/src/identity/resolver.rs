//! From a presented credential to a [`Principal`], with a short-lived cache.
//!
//! The resolver reads an [`IdentitySource`]: the gateway's stores, or an embedder's own tables.
//! Lookups are cached for a short TTL. Every change to users or tokens, on any instance,
//! arrives through the source's identity feed and empties the cache, so a revocation takes
//! effect within the feed's latency (well under a second). While the feed is disconnected,
//! cached entries still expire after the TTL, which bounds how stale they can get; when the feed
//! resumes the cache is emptied, since changes may have been missed. Keeping entries through a
//! disconnection is deliberate: the usual cause is the database being down, when no revocation
//! can be committed anyway, and reads keep working meanwhile (their audit records are queued).
//!
//! Refusals (an unknown token, an expired one, one whose owner is locked…) are remembered too,
//! for a shorter TTL ([`ResolverConfig::negative_ttl`]), and forgotten on every feed event: a
//! token created a moment ago is accepted as soon as its creation is heard of, never refused
//! for longer because of an older refusal. The cache is sharded by token hash (see `cache.rs`).
//!
//! A flood of distinct well-formed tokens misses every cache. Store lookups are therefore
//! limited to [`ResolverConfig::max_concurrent_lookups`] at a time, so such a flood cannot take
//! the whole database pool; past the limit a lookup waits its turn (first come, first served)
//! for at most [`ResolverConfig::lookup_wait`] and then fails as a store error (503), never as
//! a refusal. Legitimate tokens mostly hit the cache and are not slowed by the flood.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::cache::IdentityCache;
use super::source::SharedSource;
use super::{
    ApiToken, ApiTokenSecret, IdentitySource, Principal, TokenHash, TokenPrincipal, UserStatus,
};
use crate::rbac::Permission;
use crate::store::{IdentityEvent, StoreError};

/// Cache and lookup settings.
#[derive(Clone, Copy, Debug)]
pub struct ResolverConfig {
    /// How long a resolved identity is reused without asking the store.
    pub ttl: Duration,
    /// At most about this many cached identities (split between the cache's shards; a full
    /// shard drops its stale entries, or all of them).
    pub capacity: usize,
    /// How long a refusal (unknown, expired, owner not active) is reused; zero: not at all.
    pub negative_ttl: Duration,
    /// At most about this many remembered refusals (split like `capacity`).
    pub negative_capacity: usize,
    /// At most this many store lookups at a time (at least 1); keep it well under the store's
    /// connection pool (16 by default).
    pub max_concurrent_lookups: usize,
    /// How long a lookup waits for its turn before failing as a store error.
    pub lookup_wait: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            ttl: Duration::from_secs(10),
            capacity: 10_000,
            negative_ttl: Duration::from_secs(2),
            negative_capacity: 10_000,
            max_concurrent_lookups: 8,
            lookup_wait: Duration::from_secs(5),
        }
    }
}

/// Why a credential did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The credential is not acceptable (401); the text is safe to show.
    #[error("{0}")]
    Refused(&'static str),
    /// The store failed (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves credentials to principals; share one per process behind an `Arc`.
pub struct IdentityResolver {
    source: Arc<dyn IdentitySource>,
    config: ResolverConfig,
    cache: IdentityCache,
    /// Store lookups in flight.
    lookups: Semaphore,
    /// Whether the identity feed is connected (for diagnostics).
    feed_connected: AtomicBool,
}

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IdentityResolver {
    /// Subscribes to the source's identity feed and starts the task that keeps the cache honest.
    ///
    /// `source` is any shared [`IdentitySource`]: an `Arc` of the embedder's own type, of
    /// `dyn IdentitySource`, or of the gateway's `dyn Store`.
    pub async fn start<S>(source: Arc<S>, config: ResolverConfig) -> Result<Arc<Self>, StoreError>
    where
        S: IdentitySource + ?Sized + 'static,
    {
        let mut feed = source.watch_identity().await?;
        let resolver = Arc::new(IdentityResolver {
            source: Arc::new(SharedSource(source)),
            config,
            cache: IdentityCache::new(&config),
            lookups: Semaphore::new(config.max_concurrent_lookups.max(1)),
            feed_connected: AtomicBool::new(true),
        });
        let weak = Arc::downgrade(&resolver);
        tokio::spawn(async move {
            while let Some(event) = feed.recv().await {
                let Some(resolver) = weak.upgrade() else {
                    break;
                };
                resolver.on_event(event);
            }
            if let Some(resolver) = weak.upgrade() {
                // The feed ended for good: stop caching, so nothing can go stale unbounded.
                resolver.cache.disable();
            }
        });
        Ok(resolver)
    }

    fn on_event(&self, event: IdentityEvent) {
        match event {
            IdentityEvent::Changed => {}
            IdentityEvent::Disconnected => self.feed_connected.store(false, Ordering::SeqCst),
            IdentityEvent::Resumed => self.feed_connected.store(true, Ordering::SeqCst),
        }
        if event == IdentityEvent::Disconnected {
            tracing::warn!("identity feed disconnected; cached identities expire within the TTL");
            return;
        }
        self.cache.invalidate();
    }

    /// Whether the identity feed is connected now.
    pub fn feed_connected(&self) -> bool {
        self.feed_connected.load(Ordering::SeqCst) && !self.cache.is_disabled()
    }

    /// The cached principal for a presented API token, if a fresh, unexpired entry exists.
    ///
    /// The fast path (a hash and a map lookup, no store access); on `None` call
    /// [`Self::resolve_api_token`].
    pub fn cached_api_token(&self, presented: &str) -> Option<Arc<Principal>> {
        if !ApiTokenSecret::is_well_formed(presented) {
            return None;
        }
        self.cache.principal(&TokenHash::of(presented), Utc::now())
    }

    /// Resolves a presented API token: from the cache, or from the store (see the module docs).
    pub async fn resolve_api_token(&self, presented: &str) -> Result<Arc<Principal>, ResolveError> {
        let secret =
            ApiTokenSecret::parse(presented).ok_or(ResolveError::Refused("invalid API token"))?;
        let hash = secret.hash();
        if let Some(known) = self.cache.get(&hash, Utc::now()) {
            return known.into_result();
        }
        let _permit = self.lookup_permit().await?;
        // Another lookup of the same token may have finished while this one waited.
        let now = Utc::now();
        if let Some(known) = self.cache.get(&hash, now) {
            return known.into_result();
        }
        let generation = self.cache.generation();
        match self.fetch(&hash, now).await {
            Ok((principal, token)) => {
                self.touch(&token, now);
                self.cache.remember_resolved(
                    hash,
                    generation,
                    Arc::clone(&principal),
                    token.expires_at,
                );
                Ok(principal)
            }
            Err(ResolveError::Refused(reason)) => {
                self.cache.remember_refused(hash, generation, reason);
                Err(ResolveError::Refused(reason))
            }
            Err(error) => Err(error),
        }
    }

    /// A turn to query the store, waiting at most [`ResolverConfig::lookup_wait`].
    async fn lookup_permit(&self) -> Result<SemaphorePermit<'_>, StoreError> {
        match tokio::time::timeout(self.config.lookup_wait, self.lookups.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; were it, waiting longer would not help either.
            Ok(Err(_)) | Err(_) => Err(StoreError::Unavailable(
                "too many API token lookups waiting".into(),
            )),
        }
    }

    /// Reads the token and its owner from the store and checks that they may act at `now`.
    async fn fetch(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<(Arc<Principal>, ApiToken), ResolveError> {
        let token = self
            .source
            .token_by_hash(hash)
            .await?
            .ok_or(ResolveError::Refused("invalid API token"))?;
        if token.is_expired(now) {
            return Err(ResolveError::Refused("API token has expired"));
        }
        let (owner_email, owner_name) = match token.owner_id {
            None => (None, None),
            Some(owner_id) => {
                let owner = self
                    .source
                    .user_by_id(owner_id)
                    .await?
                    .ok_or(ResolveError::Refused("API token owner no longer exists"))?;
                match owner.status() {
                    UserStatus::Active => {}
                    UserStatus::Locked => {
                        return Err(ResolveError::Refused("API token owner is locked"))
                    }
                    UserStatus::Suspended => {
                        return Err(ResolveError::Refused("API token owner is suspended"))
                    }
                }
                (Some(owner.email), Some(owner.name))
            }
        };
        let permissions = token
            .permissions
            .iter()
            .map(|p| Permission::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("token {}: {e}", token.public_id)))?;
        let principal = Arc::new(Principal::ApiToken(TokenPrincipal {
            id: token.id,
            public_id: token.public_id,
            name: token.name.clone(),
            owner_email,
            owner_name,
            permissions,
        }));
        Ok((principal, token))
    }

    /// Records the token's use in the background (not an identity change; failures are logged).
    fn touch(&self, token: &ApiToken, now: DateTime<Utc>) {
        let source = Arc::clone(&self.source);
        let token_id = token.id;
        tokio::spawn(async move {
            if let Err(error) = source.touch_token(token_id, now).await {
                tracing::warn!(%error, token_id, "could not record token use");
            }
        });
    }
}

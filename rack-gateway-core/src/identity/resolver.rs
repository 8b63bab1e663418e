//! From a presented credential to a [`Principal`], with a short-lived cache.
//!
//! Lookups are cached for a short TTL. Every change to users or tokens, on any instance,
//! arrives through the store's identity feed and empties the cache, so a revocation takes
//! effect within the feed's latency (well under a second). While the feed is disconnected,
//! cached entries still expire after the TTL, which bounds how stale they can get; when the feed
//! resumes the cache is emptied, since changes may have been missed. Keeping entries through a
//! disconnection is deliberate: the usual cause is the database being down, when no revocation
//! can be committed anyway, and reads keep working meanwhile (their audit records are queued).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::{ApiToken, ApiTokenSecret, Principal, TokenHash, TokenPrincipal, UserStatus};
use crate::rbac::Permission;
use crate::store::{IdentityEvent, Store, StoreError};

/// Cache settings.
#[derive(Clone, Copy, Debug)]
pub struct ResolverConfig {
    /// How long a resolved identity is reused without asking the store.
    pub ttl: Duration,
    /// At most this many cached identities; the cache is emptied when full.
    pub capacity: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            ttl: Duration::from_secs(10),
            capacity: 10_000,
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

#[derive(Clone)]
struct Cached {
    principal: Arc<Principal>,
    token: Arc<ApiToken>,
    fetched: Instant,
}

/// Resolves credentials to principals; share one per process behind an `Arc`.
pub struct IdentityResolver {
    store: Arc<dyn Store>,
    config: ResolverConfig,
    cache: Mutex<HashMap<TokenHash, Cached>>,
    /// Whether the identity feed is connected (for diagnostics).
    feed_connected: AtomicBool,
    /// Set when the feed task ended: nothing is cached any more.
    feed_ended: AtomicBool,
    /// Bumped on every feed event, so a lookup that raced a change is not cached.
    generation: AtomicU64,
}

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IdentityResolver {
    /// Subscribes to the store's identity feed and starts the task that keeps the cache honest.
    pub async fn start(
        store: Arc<dyn Store>,
        config: ResolverConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let mut feed = store.watch_identity().await?;
        let resolver = Arc::new(IdentityResolver {
            store,
            config,
            cache: Mutex::new(HashMap::new()),
            feed_connected: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            feed_ended: AtomicBool::new(false),
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
                resolver.feed_ended.store(true, Ordering::SeqCst);
                resolver.on_event(IdentityEvent::Changed);
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
        let mut cache = self.cache_lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        cache.clear();
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Cached>> {
        // A panic while holding the lock cannot leave the map inconsistent for our use.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the identity feed is connected now.
    pub fn feed_connected(&self) -> bool {
        self.feed_connected.load(Ordering::SeqCst) && !self.feed_ended.load(Ordering::SeqCst)
    }

    /// The store this resolver reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The cached principal for a presented API token, if a fresh, unexpired entry exists.
    ///
    /// The fast path (a hash and a map lookup, no store access); on `None` call
    /// [`Self::resolve_api_token`].
    pub fn cached_api_token(&self, presented: &str) -> Option<Arc<Principal>> {
        if !ApiTokenSecret::is_well_formed(presented) {
            return None;
        }
        let hash = TokenHash::of(presented);
        let cache = self.cache_lock();
        let hit = cache.get(&hash)?;
        let fresh = hit.fetched.elapsed() < self.config.ttl && !hit.token.is_expired(Utc::now());
        fresh.then(|| Arc::clone(&hit.principal))
    }

    /// Resolves a presented API token.
    pub async fn resolve_api_token(&self, presented: &str) -> Result<Arc<Principal>, ResolveError> {
        let secret =
            ApiTokenSecret::parse(presented).ok_or(ResolveError::Refused("invalid API token"))?;
        let hash = secret.hash();
        let now = Utc::now();
        {
            let hit = self.cache_lock().get(&hash).cloned();
            if let Some(hit) = hit {
                if hit.fetched.elapsed() < self.config.ttl {
                    if hit.token.is_expired(now) {
                        return Err(ResolveError::Refused("API token has expired"));
                    }
                    return Ok(hit.principal);
                }
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let token = self
            .store
            .token_by_hash(&hash)
            .await?
            .ok_or(ResolveError::Refused("invalid API token"))?;
        if token.is_expired(now) {
            return Err(ResolveError::Refused("API token has expired"));
        }
        let (owner_email, owner_name) = match token.owner_id {
            None => (None, None),
            Some(owner_id) => {
                let owner = self
                    .store
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
        let store = Arc::clone(&self.store);
        let token_id = token.id;
        tokio::spawn(async move {
            if let Err(error) = store.touch_token(token_id, now).await {
                tracing::warn!(%error, token_id, "could not record token use");
            }
        });
        let mut cache = self.cache_lock();
        let unchanged = self.generation.load(Ordering::SeqCst) == generation;
        if unchanged && !self.feed_ended.load(Ordering::SeqCst) {
            if cache.len() >= self.config.capacity {
                cache.clear();
            }
            cache.insert(
                hash,
                Cached {
                    principal: Arc::clone(&principal),
                    token: Arc::new(token),
                    fetched: Instant::now(),
                },
            );
        }
        drop(cache);
        Ok(principal)
    }
}

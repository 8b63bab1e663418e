//! From a presented credential (an API token or a session token) to a [`Principal`], with a
//! short-lived cache.
//!
//! The resolver reads an [`IdentitySource`]: the gateway's stores, or an embedder's own tables.
//! Lookups are cached for a short TTL. Every change to users, tokens or sessions, on any instance,
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
//! A session is also held to its [`SessionLimits`] (set with
//! [`IdentityResolver::set_session_limits`]) on every use, cached or not: a cached principal
//! never outlives its session. Its uses are recorded in the store at most every 30 seconds, in
//! the background; one found past its limits is refused as `session expired` and ended in the
//! store (reason `expired (idle)` or `expired (absolute)`), so that it shows as ended.
//!
//! A flood of distinct well-formed tokens misses every cache. Store lookups are therefore
//! limited to [`ResolverConfig::max_concurrent_lookups`] at a time, so such a flood cannot take
//! the whole database pool; past the limit a lookup waits its turn (first come, first served)
//! for at most [`ResolverConfig::lookup_wait`] and then fails as a store error (503), never as
//! a refusal. Legitimate tokens mostly hit the cache and are not slowed by the flood.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, Semaphore, SemaphorePermit};

use super::cache::{Hit, IdentityCache, Known, Lifetime};
use super::chore::Chore;
use super::session_clock::{SessionClock, SessionUse};
use super::source::SharedSource;
use super::{
    ApiTokenSecret, EndedSession, IdentitySource, Principal, SessionEnd, SessionInfo,
    SessionLimits, SessionSecret, TokenHash, TokenPrincipal, UserPrincipal, UserStatus,
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

/// What a store lookup found: the principal, how long it may be cached, and a write it leaves.
struct Fetched {
    principal: Arc<Principal>,
    lifetime: Lifetime,
    chore: Option<Chore>,
}

/// How many announced session endings a slow listener may fall behind by.
const ENDED_BACKLOG: usize = 1024;

/// Resolves credentials to principals; share one per process behind an `Arc`.
pub struct IdentityResolver {
    source: Arc<dyn IdentitySource>,
    config: ResolverConfig,
    cache: IdentityCache,
    /// Store lookups in flight.
    lookups: Semaphore,
    /// Whether the identity feed is connected (for diagnostics).
    feed_connected: AtomicBool,
    /// Sessions this process ended for passing their limits.
    ended: broadcast::Sender<EndedSession>,
}

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("config", &self.config)
            .field("session_limits", &self.cache.session_limits())
            .finish_non_exhaustive()
    }
}

impl IdentityResolver {
    /// Subscribes to the source's identity feed and starts the task that keeps the cache honest.
    ///
    /// `source` is any shared [`IdentitySource`]: an `Arc` of the embedder's own type, of
    /// `dyn IdentitySource`, or of the gateway's `dyn Store`. Sessions are held to
    /// [`SessionLimits::default`] until [`Self::set_session_limits`] says otherwise.
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
            ended: broadcast::channel(ENDED_BACKLOG).0,
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

    /// The sessions this process ends from now on for passing their idle or absolute limit
    /// (found on use), for the audit trail; a session is announced by the instance that ended it.
    pub fn ended_sessions(&self) -> broadcast::Receiver<EndedSession> {
        self.ended.subscribe()
    }

    /// Forgets every cached answer now. The change feed does this for every change, a moment
    /// later; a process that has just made a change (ended a session, say) calls it so that its
    /// own next request cannot be answered from before the change.
    pub fn forget_cached(&self) {
        self.cache.invalidate();
    }

    /// Whether the identity feed is connected now.
    pub fn feed_connected(&self) -> bool {
        self.feed_connected.load(Ordering::SeqCst) && !self.cache.is_disabled()
    }

    /// Holds sessions to `limits` from the next lookup on, cached ones included (cheap; call it
    /// whenever the session settings change).
    pub fn set_session_limits(&self, limits: SessionLimits) {
        self.cache.set_session_limits(limits);
    }

    /// The limits sessions are held to now.
    pub fn session_limits(&self) -> SessionLimits {
        self.cache.session_limits()
    }

    /// The cached principal for a presented API token, if a fresh, unexpired entry exists.
    ///
    /// The fast path (a hash and a map lookup, no store access); on `None` call
    /// [`Self::resolve_api_token`].
    pub fn cached_api_token(&self, presented: &str) -> Option<Arc<Principal>> {
        if !ApiTokenSecret::is_well_formed(presented) {
            return None;
        }
        self.cached(&TokenHash::of(presented))
    }

    /// The cached principal for a presented session token, if a fresh entry exists and the
    /// session is within its limits (the use counts, and is recorded in the background when
    /// due).
    ///
    /// The fast path (a hash and a map lookup, no store access); on `None` call
    /// [`Self::resolve_session`].
    pub fn cached_session(&self, presented: &str) -> Option<Arc<Principal>> {
        if !SessionSecret::is_well_formed(presented) {
            return None;
        }
        self.cached(&TokenHash::of(presented))
    }

    /// Resolves a presented API token: from the cache, or from the store (see the module docs).
    pub async fn resolve_api_token(&self, presented: &str) -> Result<Arc<Principal>, ResolveError> {
        let secret =
            ApiTokenSecret::parse(presented).ok_or(ResolveError::Refused("invalid API token"))?;
        self.resolve(secret.hash(), |hash, now| self.fetch_api_token(hash, now))
            .await
    }

    /// Resolves a presented session token: from the cache, or from the store (see the module
    /// docs). Refusals: `invalid session token`, `session revoked`, `session expired`,
    /// `session user no longer exists`, `user locked`, `user suspended`.
    pub async fn resolve_session(&self, presented: &str) -> Result<Arc<Principal>, ResolveError> {
        let secret = SessionSecret::parse(presented)
            .ok_or(ResolveError::Refused("invalid session token"))?;
        self.resolve(secret.hash(), |hash, now| self.fetch_session(hash, now))
            .await
    }

    /// The cached principal for `hash`, starting the write its use leaves, if any.
    fn cached(&self, hash: &TokenHash) -> Option<Arc<Principal>> {
        self.hit(hash, Utc::now())?.into_result().ok()
    }

    /// What the cache knows about `hash` at `now`, starting the write its use leaves, if any.
    fn hit(&self, hash: &TokenHash, now: DateTime<Utc>) -> Option<Known> {
        let Hit { known, chore } = self.cache.get(hash, now)?;
        if let Some(chore) = chore {
            chore.spawn(&self.source, &self.ended);
        }
        Some(known)
    }

    /// From the cache, else from the store through `fetch` (with a turn to query it; see the
    /// module docs), remembering the outcome.
    async fn resolve<F, Fut>(
        &self,
        hash: TokenHash,
        fetch: F,
    ) -> Result<Arc<Principal>, ResolveError>
    where
        F: FnOnce(TokenHash, DateTime<Utc>) -> Fut,
        Fut: Future<Output = Result<Fetched, ResolveError>>,
    {
        if let Some(known) = self.hit(&hash, Utc::now()) {
            return known.into_result();
        }
        let _permit = self.lookup_permit().await?;
        // Another lookup of the same credential may have finished while this one waited.
        let now = Utc::now();
        if let Some(known) = self.hit(&hash, now) {
            return known.into_result();
        }
        let generation = self.cache.generation();
        match fetch(hash, now).await {
            Ok(fetched) => {
                if let Some(chore) = fetched.chore {
                    chore.spawn(&self.source, &self.ended);
                }
                self.cache.remember_resolved(
                    hash,
                    generation,
                    Arc::clone(&fetched.principal),
                    fetched.lifetime,
                );
                Ok(fetched.principal)
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
                "too many credential lookups waiting".into(),
            )),
        }
    }

    /// Reads the token and its owner from the store and checks that they may act at `now`.
    async fn fetch_api_token(
        &self,
        hash: TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Fetched, ResolveError> {
        let token = self
            .source
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
            name: token.name,
            owner_email,
            owner_name,
            permissions,
        }));
        Ok(Fetched {
            principal,
            lifetime: Lifetime::Token {
                expires_at: token.expires_at,
            },
            chore: Some(Chore::TouchToken {
                id: token.id,
                at: now,
            }),
        })
    }

    /// Reads the session and its user from the store and checks that they may act at `now`.
    async fn fetch_session(
        &self,
        hash: TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Fetched, ResolveError> {
        let session = self
            .source
            .session_by_hash(&hash)
            .await?
            .ok_or(ResolveError::Refused("invalid session token"))?;
        let limits = self.cache.session_limits();
        match limits.check(&session, now) {
            Ok(()) => {}
            Err(end @ SessionEnd::Revoked(_)) => return Err(ResolveError::Refused(end.refusal())),
            Err(end) if session.revoked_at.is_some() => {
                // Ended by the sweeper (or another instance) already.
                return Err(ResolveError::Refused(end.refusal()));
            }
            Err(end) => {
                let refusal = end.refusal();
                Chore::EndSession(EndedSession {
                    id: session.id,
                    public_id: session.public_id,
                    user_id: session.user_id,
                    kind: session.kind,
                    end,
                })
                .spawn(&self.source, &self.ended);
                return Err(ResolveError::Refused(refusal));
            }
        }
        let user = self
            .source
            .user_by_id(session.user_id)
            .await?
            .ok_or(ResolveError::Refused("session user no longer exists"))?;
        match user.status() {
            UserStatus::Active => {}
            UserStatus::Locked => return Err(ResolveError::Refused("user locked")),
            UserStatus::Suspended => return Err(ResolveError::Refused("user suspended")),
        }
        let mut clock = SessionClock::new(&session);
        let chore = match clock.use_at(now, &limits) {
            SessionUse::Record { .. } => Some(Chore::TouchSession {
                id: session.id,
                at: now,
            }),
            SessionUse::Counted => None,
            // Checked just above with the same limits and instant.
            SessionUse::Ended(end) => return Err(ResolveError::Refused(end.refusal())),
        };
        let principal = Arc::new(Principal::User(UserPrincipal {
            id: user.id,
            email: user.email,
            name: user.name,
            roles: user.roles,
            session: Some(SessionInfo {
                id: session.id,
                public_id: session.public_id,
                kind: session.kind,
                created_at: session.created_at,
                expires_at: clock.recorded_expiry(&limits),
            }),
        }));
        Ok(Fetched {
            principal,
            lifetime: Lifetime::Session(clock),
            chore,
        })
    }
}

//! The resolver's memory: resolved credentials (API tokens and sessions) and recent refusals, in
//! shards chosen by the credential's hash.
//!
//! Every authenticated request reads this, so it is split into [`SHARDS`] independently locked
//! shards (picked by the first byte of the credential's SHA-256, which a client cannot choose
//! without grinding hashes, and gains nothing by choosing) and concurrent requests rarely meet
//! on a lock. Each shard holds at most its share of the configured capacities; a full shard
//! first drops what is stale, and empties itself if that is not enough. API tokens and session
//! tokens have different prefixes, so their hashes never collide and one map holds both.
//!
//! An entry ends with its credential: an API token's entry reads as refused from its expiry,
//! and a session's entry checks the session's limits on every use ([`SessionClock`], with the
//! limits set by [`IdentityCache::set_session_limits`]), so a cached principal never outlives
//! its session. A use of a session may leave a [`Chore`] for the caller: record the use, or end
//! the session in the store.
//!
//! A refusal (no such token, expired, owner locked, …) is remembered for a short while, so that
//! repeating a bad credential does not query the store each time. Like resolved entries,
//! refusals are forgotten on every identity change ([`IdentityCache::invalidate`]).
//!
//! A lookup that races a change must not store its (possibly stale) result. Callers read
//! [`IdentityCache::generation`] before asking the store and pass it back when storing; an
//! invalidation bumps the generation *before* emptying the shards, and the generation is
//! compared under the shard's lock, so the entry is either refused or stored before that shard
//! is emptied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::chore::Chore;
use super::session_clock::{with_session_expiry, SessionClock, SessionUse};
use super::{
    EndedSession, Principal, ResolveError, ResolverConfig, SessionEnd, SessionKind, SessionLimits,
    TokenHash,
};

/// How many shards the cache is split into (a power of two).
const SHARDS: usize = 16;

/// What the cache knows about a credential.
#[derive(Debug)]
pub(super) enum Known {
    /// Resolved, fresh and not expired.
    Resolved(Arc<Principal>),
    /// Refused recently, for this reason.
    Refused(&'static str),
}

impl Known {
    /// What resolving the credential gives.
    pub(super) fn into_result(self) -> Result<Arc<Principal>, ResolveError> {
        match self {
            Known::Resolved(principal) => Ok(principal),
            Known::Refused(reason) => Err(ResolveError::Refused(reason)),
        }
    }
}

/// A cache hit: what is known, and a store write the use leaves behind.
#[derive(Debug)]
pub(super) struct Hit {
    /// What is known.
    pub(super) known: Known,
    /// A write for the caller to start in the background.
    pub(super) chore: Option<Chore>,
}

impl Hit {
    fn known(known: Known) -> Self {
        Hit { known, chore: None }
    }
}

/// How long a resolved entry may be served, besides the cache's TTL.
#[derive(Clone, Debug)]
pub(super) enum Lifetime {
    /// An API token: until its expiry, if it has one.
    Token {
        /// The token's expiry.
        expires_at: Option<DateTime<Utc>>,
    },
    /// A session: while within its limits, counting the uses served here.
    Session(SessionClock),
}

struct Resolved {
    principal: Arc<Principal>,
    lifetime: Lifetime,
    fetched: Instant,
}

struct Refused {
    reason: &'static str,
    at: Instant,
}

#[derive(Default)]
struct Shard {
    resolved: HashMap<TokenHash, Resolved>,
    refused: HashMap<TokenHash, Refused>,
}

/// Resolved credentials and recent refusals, sharded; see the module docs.
pub(super) struct IdentityCache {
    shards: Box<[Mutex<Shard>]>,
    /// Bumped on every invalidation, so a lookup that raced a change is not stored.
    generation: AtomicU64,
    /// Set for good once changes can no longer be heard of: nothing is stored any more.
    disabled: AtomicBool,
    /// The limits cached sessions are checked against on every use.
    session_limits: RwLock<SessionLimits>,
    ttl: Duration,
    negative_ttl: Duration,
    /// Per shard.
    capacity: usize,
    /// Per shard; 0 when refusals are not remembered.
    negative_capacity: usize,
}

impl IdentityCache {
    /// An empty cache sized by `config` (capacities are split evenly between the shards).
    pub(super) fn new(config: &ResolverConfig) -> Self {
        let negative_capacity = if config.negative_ttl.is_zero() {
            0
        } else {
            config.negative_capacity.div_ceil(SHARDS)
        };
        IdentityCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            generation: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
            session_limits: RwLock::new(SessionLimits::default()),
            ttl: config.ttl,
            negative_ttl: config.negative_ttl,
            capacity: config.capacity.div_ceil(SHARDS),
            negative_capacity,
        }
    }

    fn shard(&self, hash: &TokenHash) -> MutexGuard<'_, Shard> {
        let index = usize::from(hash.as_bytes()[0]) % SHARDS;
        // A panic while holding the lock cannot leave a map inconsistent for our use.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The limits sessions are held to now.
    pub(super) fn session_limits(&self) -> SessionLimits {
        *self
            .session_limits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds sessions, cached ones included, to `limits` from the next use on.
    pub(super) fn set_session_limits(&self, limits: SessionLimits) {
        *self
            .session_limits
            .write()
            .unwrap_or_else(PoisonError::into_inner) = limits;
    }

    /// The current generation: read it before asking the store, pass it to the `remember_*`.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// What is known about `hash` at `now`, counting it as a use: a cached token that expired
    /// reads as refused, and a cached session past its limits is replaced by a refusal (with a
    /// chore to end it in the store).
    pub(super) fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Option<Hit> {
        let mut shard = self.shard(hash);
        if let Some(hit) = shard.resolved.get_mut(hash) {
            if hit.fetched.elapsed() < self.ttl {
                match &mut hit.lifetime {
                    Lifetime::Token { expires_at } => {
                        return Some(Hit::known(if expires_at.is_some_and(|at| at <= now) {
                            Known::Refused("API token has expired")
                        } else {
                            Known::Resolved(Arc::clone(&hit.principal))
                        }));
                    }
                    Lifetime::Session(clock) => {
                        match clock.use_at(now, &self.session_limits()) {
                            SessionUse::Counted => {
                                return Some(Hit::known(Known::Resolved(Arc::clone(
                                    &hit.principal,
                                ))));
                            }
                            SessionUse::Record { expires_at } => {
                                hit.principal = with_session_expiry(&hit.principal, expires_at);
                                let chore = Chore::TouchSession {
                                    id: clock.session_id(),
                                    at: now,
                                };
                                return Some(Hit {
                                    known: Known::Resolved(Arc::clone(&hit.principal)),
                                    chore: Some(chore),
                                });
                            }
                            SessionUse::Ended(end) => {
                                let ended = ended_session(&hit.principal, clock.session_id(), end);
                                let reason = ended.end.refusal();
                                shard.resolved.remove(hash);
                                // Stored as a refusal until the ending is heard of.
                                self.refuse_in(&mut shard, *hash, reason);
                                return Some(Hit {
                                    known: Known::Refused(reason),
                                    chore: Some(Chore::EndSession(ended)),
                                });
                            }
                        }
                    }
                }
            }
            shard.resolved.remove(hash);
        }
        if let Some(hit) = shard.refused.get(hash) {
            if hit.at.elapsed() < self.negative_ttl {
                return Some(Hit::known(Known::Refused(hit.reason)));
            }
            shard.refused.remove(hash);
        }
        None
    }

    /// Stores a resolved credential, unless the cache changed since `generation` was read.
    pub(super) fn remember_resolved(
        &self,
        hash: TokenHash,
        generation: u64,
        principal: Arc<Principal>,
        lifetime: Lifetime,
    ) {
        let mut shard = self.shard(&hash);
        if !self.unchanged_since(generation) {
            return;
        }
        let ttl = self.ttl;
        make_room(&mut shard.resolved, self.capacity, |entry| {
            entry.fetched.elapsed() < ttl
        });
        shard.refused.remove(&hash);
        shard.resolved.insert(
            hash,
            Resolved {
                principal,
                lifetime,
                fetched: Instant::now(),
            },
        );
    }

    /// Stores a refusal, unless refusals are not remembered or the cache changed since
    /// `generation` was read (a token created meanwhile must not be refused).
    pub(super) fn remember_refused(&self, hash: TokenHash, generation: u64, reason: &'static str) {
        let mut shard = self.shard(&hash);
        if !self.unchanged_since(generation) {
            return;
        }
        shard.resolved.remove(&hash);
        self.refuse_in(&mut shard, hash, reason);
    }

    /// Stores a refusal in `shard` (which holds `hash`), if refusals are remembered.
    fn refuse_in(&self, shard: &mut Shard, hash: TokenHash, reason: &'static str) {
        if self.negative_capacity == 0 || self.is_disabled() {
            return;
        }
        let ttl = self.negative_ttl;
        make_room(&mut shard.refused, self.negative_capacity, |entry| {
            entry.at.elapsed() < ttl
        });
        shard.refused.insert(
            hash,
            Refused {
                reason,
                at: Instant::now(),
            },
        );
    }

    /// Forgets everything, and makes lookups in flight unable to store their results.
    pub(super) fn invalidate(&self) {
        // Bump first: see the module docs.
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.resolved.clear();
            shard.refused.clear();
        }
    }

    /// Stops storing anything, for good, and forgets everything.
    pub(super) fn disable(&self) {
        self.disabled.store(true, Ordering::SeqCst);
        self.invalidate();
    }

    /// Whether [`Self::disable`] was called.
    pub(super) fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::SeqCst)
    }

    fn unchanged_since(&self, generation: u64) -> bool {
        self.generation() == generation && !self.is_disabled()
    }

    /// How many resolved and refused entries are held (for tests and diagnostics).
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        self.shards
            .iter()
            .fold((0, 0), |(resolved, refused), shard| {
                let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                (
                    resolved + shard.resolved.len(),
                    refused + shard.refused.len(),
                )
            })
    }
}

/// Makes room for one more entry in a map holding at most `capacity`: drops stale entries, and
/// everything if that is not enough.
/// What is announced about a cached session found past its limits.
fn ended_session(principal: &Principal, id: i64, end: SessionEnd) -> EndedSession {
    let (user_id, public_id, kind) = match principal {
        Principal::User(user) => match &user.session {
            Some(session) => (user.id, session.public_id, session.kind),
            None => (user.id, uuid::Uuid::nil(), SessionKind::Web),
        },
        // Only sessions have clocks; a principal of another kind cannot reach here.
        _ => (0, uuid::Uuid::nil(), SessionKind::Web),
    };
    EndedSession {
        id,
        public_id,
        user_id,
        kind,
        end,
    }
}

fn make_room<V>(map: &mut HashMap<TokenHash, V>, capacity: usize, fresh: impl Fn(&V) -> bool) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, entry| fresh(entry));
    if map.len() >= capacity {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn config(capacity: usize, negative_capacity: usize) -> ResolverConfig {
        ResolverConfig {
            ttl: Duration::from_secs(60),
            capacity,
            negative_ttl: Duration::from_secs(60),
            negative_capacity,
            ..ResolverConfig::default()
        }
    }

    fn hash(n: usize) -> TokenHash {
        TokenHash::of(&format!("rgw_{n}"))
    }

    fn principal() -> Arc<Principal> {
        Arc::new(Principal::Anonymous)
    }

    /// A token that does not expire.
    fn forever() -> Lifetime {
        Lifetime::Token { expires_at: None }
    }

    /// Whether `hash` reads as resolved at `now`.
    fn resolves(cache: &IdentityCache, hash: &TokenHash, now: DateTime<Utc>) -> bool {
        matches!(
            cache.get(hash, now),
            Some(Hit {
                known: Known::Resolved(_),
                ..
            })
        )
    }

    /// The refusal `hash` reads as at `now`, if any.
    fn refusal(
        cache: &IdentityCache,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Option<&'static str> {
        match cache.get(hash, now)?.known {
            Known::Refused(reason) => Some(reason),
            Known::Resolved(_) => None,
        }
    }

    #[test]
    fn resolved_and_refused_entries_are_found() {
        let cache = IdentityCache::new(&config(100, 100));
        let now = Utc::now();
        let generation = cache.generation();
        cache.remember_resolved(hash(1), generation, principal(), forever());
        cache.remember_refused(hash(2), generation, "invalid API token");
        assert!(resolves(&cache, &hash(1), now));
        assert_eq!(refusal(&cache, &hash(2), now), Some("invalid API token"));
        assert!(cache.get(&hash(3), now).is_none());
        // A newer outcome replaces the other kind.
        cache.remember_refused(hash(1), generation, "API token owner is locked");
        assert!(!resolves(&cache, &hash(1), now));
        cache.remember_resolved(hash(2), generation, principal(), forever());
        assert!(resolves(&cache, &hash(2), now));
        assert_eq!(cache.len(), (1, 1));
    }

    #[test]
    fn expired_tokens_read_as_refused() {
        let cache = IdentityCache::new(&config(100, 100));
        let now = Utc::now();
        cache.remember_resolved(
            hash(1),
            0,
            principal(),
            Lifetime::Token {
                expires_at: Some(now),
            },
        );
        assert_eq!(
            refusal(&cache, &hash(1), now),
            Some("API token has expired")
        );
        assert!(!resolves(&cache, &hash(1), now));
    }

    #[test]
    fn hashes_spread_over_the_shards() {
        let cache = IdentityCache::new(&config(100_000, 0));
        for n in 0..1600 {
            cache.remember_resolved(hash(n), 0, principal(), forever());
        }
        for shard in cache.shards.iter() {
            let held = shard.lock().map(|shard| shard.resolved.len()).unwrap_or(0);
            assert!((50..=150).contains(&held), "{held} of 1600 in one shard");
        }
    }

    #[test]
    fn capacities_bound_memory() {
        let cache = IdentityCache::new(&config(160, 320));
        for n in 0..10_000 {
            cache.remember_resolved(hash(n), 0, principal(), forever());
            cache.remember_refused(hash(n + 1_000_000), 0, "invalid API token");
        }
        let (resolved, refused) = cache.len();
        assert!(resolved <= 160, "{resolved}");
        assert!(refused <= 320, "{refused}");
        assert!(resolved > 0 && refused > 0);
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_stored() {
        let cache = IdentityCache::new(&config(100, 100));
        let before = cache.generation();
        cache.invalidate();
        cache.remember_refused(hash(1), before, "invalid API token");
        cache.remember_resolved(hash(2), before, principal(), forever());
        assert_eq!(cache.len(), (0, 0));
        let after = cache.generation();
        cache.remember_refused(hash(1), after, "invalid API token");
        assert_eq!(cache.len(), (0, 1));
    }

    #[test]
    fn invalidation_forgets_everything_and_disabling_stores_nothing() {
        let cache = IdentityCache::new(&config(100, 100));
        cache.remember_resolved(hash(1), 0, principal(), forever());
        cache.remember_refused(hash(2), 0, "invalid API token");
        cache.invalidate();
        assert_eq!(cache.len(), (0, 0));
        cache.disable();
        assert!(cache.is_disabled());
        let generation = cache.generation();
        cache.remember_resolved(hash(1), generation, principal(), forever());
        cache.remember_refused(hash(2), generation, "invalid API token");
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn no_negative_ttl_means_no_refusals_kept() {
        let cache = IdentityCache::new(&ResolverConfig {
            negative_ttl: Duration::ZERO,
            ..ResolverConfig::default()
        });
        cache.remember_refused(hash(1), 0, "invalid API token");
        assert_eq!(cache.len(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_go_stale() {
        let cache = IdentityCache::new(&ResolverConfig {
            ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(2),
            ..ResolverConfig::default()
        });
        let now = Utc::now();
        cache.remember_resolved(hash(1), 0, principal(), forever());
        cache.remember_refused(hash(2), 0, "invalid API token");
        tokio::time::advance(Duration::from_millis(1900)).await;
        assert!(cache.get(&hash(2), now).is_some());
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(cache.get(&hash(2), now).is_none());
        assert!(resolves(&cache, &hash(1), now));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(!resolves(&cache, &hash(1), now));
        assert_eq!(cache.len(), (0, 0), "stale entries are dropped when met");
    }

    fn session_entry(start: DateTime<Utc>) -> (Arc<Principal>, Lifetime) {
        use crate::identity::{Session, SessionInfo, SessionKind, UserPrincipal};
        let session = Session {
            id: 5,
            public_id: uuid::Uuid::nil(),
            user_id: 1,
            kind: SessionKind::Web,
            created_at: start,
            last_seen_at: start,
            revoked_at: None,
            revoked_reason: None,
            ip: None,
            user_agent: None,
            device_name: None,
        };
        let principal = Arc::new(Principal::User(UserPrincipal {
            id: 1,
            email: "a@example.com".into(),
            name: "A".into(),
            roles: Vec::new(),
            session: Some(SessionInfo {
                id: 5,
                public_id: session.public_id,
                kind: SessionKind::Web,
                created_at: start,
                expires_at: start,
            }),
        }));
        (principal, Lifetime::Session(SessionClock::new(&session)))
    }

    fn short_limits() -> SessionLimits {
        SessionLimits {
            web_idle: Duration::from_secs(60),
            web_absolute: Duration::from_secs(600),
            ..SessionLimits::default()
        }
    }

    #[test]
    fn cached_sessions_are_used_recorded_and_ended() {
        let cache = IdentityCache::new(&config(100, 100));
        cache.set_session_limits(short_limits());
        let start = Utc::now();
        let (principal, lifetime) = session_entry(start);
        cache.remember_resolved(hash(1), 0, principal, lifetime);

        let hit = cache.get(&hash(1), start + TimeDelta::seconds(5)).unwrap();
        assert!(matches!(hit.known, Known::Resolved(_)));
        assert_eq!(hit.chore, None, "used 5 s after its recorded use: not due");

        let at = start + TimeDelta::seconds(20);
        let hit = cache.get(&hash(1), at).unwrap();
        assert_eq!(hit.chore, Some(Chore::TouchSession { id: 5, at }));
        let Known::Resolved(principal) = hit.known else {
            panic!("refused");
        };
        let Principal::User(user) = principal.as_ref() else {
            panic!("not a user");
        };
        let expires_at = user.session.as_ref().map(|s| s.expires_at);
        assert_eq!(expires_at, Some(at + TimeDelta::seconds(60)));

        // Idle for the limit: refused, ended once, and remembered as refused.
        let idle = at + TimeDelta::seconds(60);
        let hit = cache.get(&hash(1), idle).unwrap();
        assert!(matches!(hit.known, Known::Refused("session expired")));
        let Some(Chore::EndSession(ended)) = hit.chore else {
            panic!("the session is ended: {:?}", hit.chore);
        };
        assert_eq!((ended.id, ended.end), (5, SessionEnd::Idle));
        assert_eq!(ended.user_id, user.id, "announced with its user");
        assert_eq!(ended.kind, SessionKind::Web);
        let again = cache.get(&hash(1), idle).unwrap();
        assert!(matches!(again.known, Known::Refused("session expired")));
        assert_eq!(again.chore, None);
    }

    #[test]
    fn new_session_limits_apply_to_cached_sessions() {
        let cache = IdentityCache::new(&config(100, 0));
        let start = Utc::now();
        let (principal, lifetime) = session_entry(start);
        cache.remember_resolved(hash(1), 0, principal, lifetime);
        let later = start + TimeDelta::minutes(2);
        assert!(
            resolves(&cache, &hash(1), later),
            "within the default 5 minutes"
        );
        cache.set_session_limits(short_limits());
        assert_eq!(cache.session_limits(), short_limits());
        assert_eq!(
            refusal(&cache, &hash(1), later + TimeDelta::minutes(1)),
            Some("session expired")
        );
        assert_eq!(cache.len(), (0, 0), "nothing kept without a negative TTL");
    }
}

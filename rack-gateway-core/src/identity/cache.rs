//! The resolver's memory: resolved tokens and recent refusals, in shards chosen by token hash.
//!
//! Every request with an API token reads this, so it is split into [`SHARDS`] independently
//! locked shards (picked by the first byte of the token's SHA-256, which a client cannot choose
//! without grinding hashes, and gains nothing by choosing) and concurrent requests rarely meet
//! on a lock. Each shard holds at most its share of the configured capacities; a full shard
//! first drops what is stale, and empties itself if that is not enough.
//!
//! A refusal (no such token, expired, owner locked, …) is remembered for a short while, so that
//! repeating a bad token does not query the store each time. Like resolved entries, refusals are
//! forgotten on every identity change ([`IdentityCache::invalidate`]).
//!
//! A lookup that races a change must not store its (possibly stale) result. Callers read
//! [`IdentityCache::generation`] before asking the store and pass it back when storing; an
//! invalidation bumps the generation *before* emptying the shards, and the generation is
//! compared under the shard's lock, so the entry is either refused or stored before that shard
//! is emptied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{Principal, ResolveError, ResolverConfig, TokenHash};

/// How many shards the cache is split into (a power of two).
const SHARDS: usize = 16;

/// What the cache knows about a token.
#[derive(Debug)]
pub(super) enum Known {
    /// Resolved, fresh and not expired.
    Resolved(Arc<Principal>),
    /// Refused recently, for this reason.
    Refused(&'static str),
}

impl Known {
    /// What resolving the token gives.
    pub(super) fn into_result(self) -> Result<Arc<Principal>, ResolveError> {
        match self {
            Known::Resolved(principal) => Ok(principal),
            Known::Refused(reason) => Err(ResolveError::Refused(reason)),
        }
    }
}

struct Resolved {
    principal: Arc<Principal>,
    expires_at: Option<DateTime<Utc>>,
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

/// Resolved tokens and recent refusals, sharded; see the module docs.
pub(super) struct IdentityCache {
    shards: Box<[Mutex<Shard>]>,
    /// Bumped on every invalidation, so a lookup that raced a change is not stored.
    generation: AtomicU64,
    /// Set for good once changes can no longer be heard of: nothing is stored any more.
    disabled: AtomicBool,
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

    /// The current generation: read it before asking the store, pass it to the `remember_*`.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The fresh principal for `hash`, unless it has none or its token has expired by `now`.
    pub(super) fn principal(&self, hash: &TokenHash, now: DateTime<Utc>) -> Option<Arc<Principal>> {
        match self.get(hash, now)? {
            Known::Resolved(principal) => Some(principal),
            Known::Refused(_) => None,
        }
    }

    /// What is known about `hash`; a cached token that expired by `now` reads as refused.
    pub(super) fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Option<Known> {
        let mut shard = self.shard(hash);
        if let Some(hit) = shard.resolved.get(hash) {
            if hit.fetched.elapsed() < self.ttl {
                return Some(if hit.expires_at.is_some_and(|at| at <= now) {
                    Known::Refused("API token has expired")
                } else {
                    Known::Resolved(Arc::clone(&hit.principal))
                });
            }
            shard.resolved.remove(hash);
        }
        if let Some(hit) = shard.refused.get(hash) {
            if hit.at.elapsed() < self.negative_ttl {
                return Some(Known::Refused(hit.reason));
            }
            shard.refused.remove(hash);
        }
        None
    }

    /// Stores a resolved token, unless the cache changed since `generation` was read.
    pub(super) fn remember_resolved(
        &self,
        hash: TokenHash,
        generation: u64,
        principal: Arc<Principal>,
        expires_at: Option<DateTime<Utc>>,
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
                expires_at,
                fetched: Instant::now(),
            },
        );
    }

    /// Stores a refusal, unless refusals are not remembered or the cache changed since
    /// `generation` was read (a token created meanwhile must not be refused).
    pub(super) fn remember_refused(&self, hash: TokenHash, generation: u64, reason: &'static str) {
        if self.negative_capacity == 0 {
            return;
        }
        let mut shard = self.shard(&hash);
        if !self.unchanged_since(generation) {
            return;
        }
        let ttl = self.negative_ttl;
        make_room(&mut shard.refused, self.negative_capacity, |entry| {
            entry.at.elapsed() < ttl
        });
        shard.resolved.remove(&hash);
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

    #[test]
    fn resolved_and_refused_entries_are_found() {
        let cache = IdentityCache::new(&config(100, 100));
        let now = Utc::now();
        let generation = cache.generation();
        cache.remember_resolved(hash(1), generation, principal(), None);
        cache.remember_refused(hash(2), generation, "invalid API token");
        assert!(cache.principal(&hash(1), now).is_some());
        assert!(matches!(
            cache.get(&hash(2), now),
            Some(Known::Refused("invalid API token"))
        ));
        assert!(cache.get(&hash(3), now).is_none());
        // A newer outcome replaces the other kind.
        cache.remember_refused(hash(1), generation, "API token owner is locked");
        assert!(cache.principal(&hash(1), now).is_none());
        cache.remember_resolved(hash(2), generation, principal(), None);
        assert!(cache.principal(&hash(2), now).is_some());
        assert_eq!(cache.len(), (1, 1));
    }

    #[test]
    fn expired_tokens_read_as_refused() {
        let cache = IdentityCache::new(&config(100, 100));
        let now = Utc::now();
        cache.remember_resolved(hash(1), 0, principal(), Some(now));
        assert!(matches!(
            cache.get(&hash(1), now),
            Some(Known::Refused("API token has expired"))
        ));
        assert!(cache.principal(&hash(1), now).is_none());
    }

    #[test]
    fn hashes_spread_over_the_shards() {
        let cache = IdentityCache::new(&config(100_000, 0));
        for n in 0..1600 {
            cache.remember_resolved(hash(n), 0, principal(), None);
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
            cache.remember_resolved(hash(n), 0, principal(), None);
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
        cache.remember_resolved(hash(2), before, principal(), None);
        assert_eq!(cache.len(), (0, 0));
        let after = cache.generation();
        cache.remember_refused(hash(1), after, "invalid API token");
        assert_eq!(cache.len(), (0, 1));
    }

    #[test]
    fn invalidation_forgets_everything_and_disabling_stores_nothing() {
        let cache = IdentityCache::new(&config(100, 100));
        cache.remember_resolved(hash(1), 0, principal(), None);
        cache.remember_refused(hash(2), 0, "invalid API token");
        cache.invalidate();
        assert_eq!(cache.len(), (0, 0));
        cache.disable();
        assert!(cache.is_disabled());
        let generation = cache.generation();
        cache.remember_resolved(hash(1), generation, principal(), None);
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
        cache.remember_resolved(hash(1), 0, principal(), None);
        cache.remember_refused(hash(2), 0, "invalid API token");
        tokio::time::advance(Duration::from_millis(1900)).await;
        assert!(cache.get(&hash(2), now).is_some());
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(cache.get(&hash(2), now).is_none());
        assert!(cache.principal(&hash(1), now).is_some());
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(cache.principal(&hash(1), now).is_none());
        assert_eq!(cache.len(), (0, 0), "stale entries are dropped when met");
    }
}

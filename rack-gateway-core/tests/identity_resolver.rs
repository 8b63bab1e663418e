//! The identity resolver against real stores: what it asks the store, and how quickly changes
//! reach it. Every behaviour runs against the embedded store and against PostgreSQL (a fresh
//! database per test on the server named by `DATABASE_URL`; see `scripts/with-postgres`).
//!
//! The store is wrapped to count (and optionally slow down or hold) token lookups.
#![cfg(all(feature = "postgres", feature = "sqlite"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rack_gateway_core::identity::{
    ApiToken, ApiTokenSecret, IdentityResolver, IdentitySource, NewApiToken, NewUser, ResolveError,
    ResolverConfig, TokenHash, User,
};
use rack_gateway_core::rbac::Role;
use rack_gateway_core::store::{IdentityWatch, Store, StoreError};
use tokio::sync::Semaphore;
use tokio::time::{sleep, timeout, Instant};

#[macro_use]
mod common;

use common::Opener;

conformance!(
    the_same_unknown_token_costs_one_query,
    distinct_unknown_tokens_are_refused_without_errors,
    store_lookups_are_limited,
    a_token_created_after_a_refusal_resolves_once_heard_of,
    a_lookup_racing_a_creation_leaves_no_refusal_behind,
    known_tokens_are_cached_and_revocation_still_works,
    other_refusals_are_remembered_and_forgotten_on_change,
);

// ---------------------------------------------------------------------------------------------
// An identity source that counts token lookups

/// Delegates to `inner`; counts `token_by_hash` calls, can delay them and hold them at a gate.
struct Counting {
    inner: Arc<dyn Store>,
    lookups: AtomicUsize,
    /// Lookups that have read the store (and may now be held at the gate).
    read: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Duration,
    /// Lookups take a permit after reading the store and before answering (closed: no gate).
    gate: Semaphore,
}

impl Counting {
    fn new(inner: Arc<dyn Store>, delay: Duration) -> Arc<Counting> {
        let gate = Semaphore::new(0);
        gate.close();
        Arc::new(Counting {
            inner,
            lookups: AtomicUsize::new(0),
            read: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            delay,
            gate,
        })
    }

    /// Like [`Counting::new`], but every lookup waits for [`Counting::release`] before answering.
    fn gated(inner: Arc<dyn Store>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            lookups: AtomicUsize::new(0),
            read: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            delay: Duration::ZERO,
            gate: Semaphore::new(0),
        })
    }

    fn release(&self, lookups: usize) {
        self.gate.add_permits(lookups);
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

/// Only what the resolver reads: the rest of the store is used through `inner`.
#[async_trait]
impl IdentitySource for Counting {
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        sleep(self.delay).await;
        let found = self.inner.token_by_hash(hash).await;
        self.read.fetch_add(1, Ordering::SeqCst);
        if let Ok(permit) = self.gate.acquire().await {
            permit.forget();
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        found
    }
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.inner.user_by_id(id).await
    }
    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.touch_token(id, at).await
    }
    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError> {
        self.inner.watch_identity().await
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Long TTLs, so that only the feed can make the resolver forget.
fn config() -> ResolverConfig {
    ResolverConfig {
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(60),
        ..ResolverConfig::default()
    }
}

async fn resolver(counting: &Arc<Counting>, config: ResolverConfig) -> Arc<IdentityResolver> {
    counting.inner.migrate().await.unwrap();
    IdentityResolver::start(Arc::clone(counting), config)
        .await
        .unwrap()
}

fn new_token(name: &str, secret: &ApiTokenSecret, owner_id: Option<i64>) -> NewApiToken {
    NewApiToken {
        name: name.into(),
        hash: secret.hash(),
        owner_id,
        permissions: vec!["convox:app:list".into()],
        role: None,
        created_by: Some("operator".into()),
        expires_at: None,
    }
}

fn refused(outcome: &Result<Arc<rack_gateway_core::identity::Principal>, ResolveError>) -> &str {
    match outcome {
        Err(ResolveError::Refused(reason)) => reason,
        Ok(_) => "resolved",
        Err(ResolveError::Store(_)) => "store error",
    }
}

/// Resolves `secret` until it gives `want` ("resolved" or a refusal reason); how long it took.
async fn until(resolver: &IdentityResolver, secret: &ApiTokenSecret, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        let outcome = resolver.resolve_api_token(secret.expose()).await;
        if refused(&outcome) == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "still {:?} after 3 s, want {want}",
            refused(&outcome)
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the feed has reported the changes made so far, and the resolver had time to
/// hear of them too.
async fn heard(feed: &mut IdentityWatch) {
    let changed = timeout(Duration::from_secs(2), feed.recv()).await;
    assert!(matches!(changed, Ok(Some(_))), "no feed event: {changed:?}");
    while let Ok(Some(_)) = timeout(Duration::from_millis(300), feed.recv()).await {}
}

// ---------------------------------------------------------------------------------------------
// Behaviours

async fn the_same_unknown_token_costs_one_query(store: Arc<dyn Store>, _: Opener) {
    let counting = Counting::new(store, Duration::from_millis(20));
    let resolver = resolver(
        &counting,
        ResolverConfig {
            negative_ttl: Duration::from_millis(500),
            max_concurrent_lookups: 1,
            ..config()
        },
    )
    .await;
    let unknown = ApiTokenSecret::generate();
    for _ in 0..50 {
        let outcome = resolver.resolve_api_token(unknown.expose()).await;
        assert_eq!(refused(&outcome), "invalid API token");
    }
    assert_eq!(counting.lookups(), 1);
    // Concurrent repeats of another one queue behind its first lookup, then find its refusal.
    let repeated = ApiTokenSecret::generate().expose().to_owned();
    let many = (0..20).map(|_| {
        let resolver = Arc::clone(&resolver);
        let presented = repeated.clone();
        tokio::spawn(
            async move { refused(&resolver.resolve_api_token(&presented).await).to_owned() },
        )
    });
    for outcome in futures_util::future::join_all(many).await {
        assert_eq!(outcome.unwrap(), "invalid API token");
    }
    assert_eq!(counting.lookups(), 2);
    // Past the negative TTL the store is asked again.
    sleep(Duration::from_millis(600)).await;
    let _ = resolver.resolve_api_token(unknown.expose()).await;
    assert_eq!(counting.lookups(), 3);
}

async fn distinct_unknown_tokens_are_refused_without_errors(store: Arc<dyn Store>, _: Opener) {
    let counting = Counting::new(store, Duration::from_millis(5));
    let resolver = resolver(
        &counting,
        ResolverConfig {
            max_concurrent_lookups: 2,
            ..config()
        },
    )
    .await;
    let flood = (0..64).map(|_| {
        let resolver = Arc::clone(&resolver);
        let presented = ApiTokenSecret::generate().expose().to_owned();
        tokio::spawn(
            async move { refused(&resolver.resolve_api_token(&presented).await).to_owned() },
        )
    });
    for outcome in futures_util::future::join_all(flood).await {
        assert_eq!(outcome.unwrap(), "invalid API token");
    }
    assert_eq!(counting.lookups(), 64);
    assert!(counting.max_in_flight.load(Ordering::SeqCst) <= 2);
}

async fn store_lookups_are_limited(store: Arc<dyn Store>, _: Opener) {
    let counting = Counting::new(store, Duration::from_millis(200));
    let resolver = resolver(
        &counting,
        ResolverConfig {
            max_concurrent_lookups: 3,
            lookup_wait: Duration::from_millis(300),
            ..config()
        },
    )
    .await;
    let flood = (0..12).map(|_| {
        let resolver = Arc::clone(&resolver);
        let presented = ApiTokenSecret::generate().expose().to_owned();
        tokio::spawn(
            async move { refused(&resolver.resolve_api_token(&presented).await).to_owned() },
        )
    });
    let outcomes: Vec<String> = futures_util::future::join_all(flood)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(counting.max_in_flight.load(Ordering::SeqCst) <= 3);
    // 3 at once, 200 ms each, waiting at most 300 ms: two rounds get through, the rest wait
    // and then fail as a store error (503), never as a refusal of a token nobody looked at.
    let looked_up = outcomes
        .iter()
        .filter(|o| *o == "invalid API token")
        .count();
    let busy = outcomes.iter().filter(|o| *o == "store error").count();
    assert_eq!(looked_up + busy, 12, "{outcomes:?}");
    assert!((3..=9).contains(&looked_up), "{outcomes:?}");
    assert_eq!(counting.lookups(), looked_up);
}

async fn a_token_created_after_a_refusal_resolves_once_heard_of(store: Arc<dyn Store>, _: Opener) {
    let counting = Counting::new(store, Duration::ZERO);
    let resolver = resolver(&counting, config()).await;
    let secret = ApiTokenSecret::generate();
    let outcome = resolver.resolve_api_token(secret.expose()).await;
    assert_eq!(refused(&outcome), "invalid API token");
    counting
        .inner
        .insert_token(&new_token("fresh", &secret, None))
        .await
        .unwrap();
    // The refusal would be kept for 60 s; the creation event makes it go at once.
    let took = until(&resolver, &secret, "resolved").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

async fn a_lookup_racing_a_creation_leaves_no_refusal_behind(store: Arc<dyn Store>, _: Opener) {
    let counting = Counting::gated(Arc::clone(&store));
    let resolver = resolver(&counting, config()).await;
    let mut feed = store.watch_identity().await.unwrap();
    let secret = ApiTokenSecret::generate();
    // The lookup reads the store (nothing yet) and is held before answering…
    let racing = {
        let resolver = Arc::clone(&resolver);
        let presented = secret.expose().to_owned();
        tokio::spawn(
            async move { refused(&resolver.resolve_api_token(&presented).await).to_owned() },
        )
    };
    while counting.read.load(Ordering::SeqCst) == 0 {
        sleep(Duration::from_millis(5)).await;
    }
    // …while the token is created and the resolver hears of it.
    counting
        .inner
        .insert_token(&new_token("racing", &secret, None))
        .await
        .unwrap();
    heard(&mut feed).await;
    counting.release(usize::MAX >> 4);
    assert_eq!(racing.await.unwrap(), "invalid API token");
    // Its stale answer was not remembered: the next lookup asks the store and succeeds.
    let outcome = resolver.resolve_api_token(secret.expose()).await;
    assert_eq!(refused(&outcome), "resolved");
    assert_eq!(counting.lookups(), 2);
}

async fn known_tokens_are_cached_and_revocation_still_works(store: Arc<dyn Store>, _: Opener) {
    let counting = Counting::new(store, Duration::ZERO);
    let resolver = resolver(&counting, config()).await;
    let mut feed = counting.watch_identity().await.unwrap();
    let mut secrets = Vec::new();
    for n in 0..40 {
        let secret = ApiTokenSecret::generate();
        counting
            .inner
            .insert_token(&new_token(&format!("t{n}"), &secret, None))
            .await
            .unwrap();
        secrets.push(secret);
    }
    heard(&mut feed).await;
    for secret in &secrets {
        assert!(resolver.resolve_api_token(secret.expose()).await.is_ok());
    }
    for secret in &secrets {
        assert!(resolver.cached_api_token(secret.expose()).is_some());
        assert!(resolver.resolve_api_token(secret.expose()).await.is_ok());
    }
    assert_eq!(counting.lookups(), 40, "each token was read once");

    assert!(counting.inner.revoke_token("t7").await.unwrap());
    let took = until(&resolver, &secrets[7], "invalid API token").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(resolver.cached_api_token(secrets[7].expose()).is_none());
    assert!(resolver
        .resolve_api_token(secrets[8].expose())
        .await
        .is_ok());
}

async fn other_refusals_are_remembered_and_forgotten_on_change(store: Arc<dyn Store>, _: Opener) {
    let counting = Counting::new(store, Duration::ZERO);
    let resolver = resolver(&counting, config()).await;
    let mut feed = counting.watch_identity().await.unwrap();
    let owner = counting
        .inner
        .insert_user(&NewUser {
            email: "owner@example.com".into(),
            name: "Owner".into(),
            roles: vec![Role::Deployer],
        })
        .await
        .unwrap();
    let secret = ApiTokenSecret::generate();
    counting
        .inner
        .insert_token(&new_token("owned", &secret, Some(owner.id)))
        .await
        .unwrap();
    assert!(counting
        .inner
        .set_user_lock("owner@example.com", Some("left"))
        .await
        .unwrap());
    heard(&mut feed).await;
    until(&resolver, &secret, "API token owner is locked").await;
    let before = counting.lookups();
    for _ in 0..20 {
        let outcome = resolver.resolve_api_token(secret.expose()).await;
        assert_eq!(refused(&outcome), "API token owner is locked");
    }
    assert_eq!(counting.lookups(), before, "the refusal is remembered");
    assert!(counting
        .inner
        .set_user_lock("owner@example.com", None)
        .await
        .unwrap());
    let took = until(&resolver, &secret, "resolved").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

//! The identity resolver with session tokens, against real stores: limits, recorded uses, and
//! how quickly revocations and user changes reach a cached principal. Every behaviour runs
//! against the embedded store and against PostgreSQL (a fresh database per test on the server
//! named by `DATABASE_URL`; see `scripts/with-postgres`).
//!
//! The store is wrapped to count session lookups and record touches.
#![cfg(all(feature = "postgres", feature = "sqlite"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use rack_gateway_core::identity::{
    ApiToken, ApiTokenSecret, IdentityResolver, IdentitySource, NewSession, NewUser, Principal,
    ResolveError, ResolverConfig, Session, SessionEnd, SessionKind, SessionLimits, SessionSecret,
    TokenHash, User, UserPrincipal,
};
use rack_gateway_core::rbac::Role;
use rack_gateway_core::store::{IdentityEvent, IdentityWatch, Store, StoreError};
use tokio::time::{sleep, Instant};

#[macro_use]
mod common;

use common::Opener;

conformance!(
    a_session_resolves_to_its_user,
    new_limits_apply_to_cached_sessions,
    idle_sessions_are_refused_and_ended,
    busy_sessions_live_until_their_absolute_limit,
    uses_are_recorded_at_most_every_interval,
    revocation_reaches_a_cached_session_within_a_second,
    user_changes_reach_a_cached_session_within_a_second,
    a_swept_session_is_refused_as_expired,
    the_process_that_ends_a_session_forgets_it_at_once,
);

// ---------------------------------------------------------------------------------------------
// An identity source that counts session lookups and records touches

struct Watched {
    inner: Arc<dyn Store>,
    session_lookups: AtomicUsize,
    touches: Mutex<Vec<DateTime<Utc>>>,
    /// `Some`: the change feed is silent (this keeps its sender), as it is for the moment before
    /// a change's notification arrives.
    silent_feed: Mutex<Option<Option<tokio::sync::mpsc::Sender<IdentityEvent>>>>,
}

impl Watched {
    fn new(inner: Arc<dyn Store>) -> Arc<Watched> {
        Arc::new(Watched {
            inner,
            session_lookups: AtomicUsize::new(0),
            touches: Mutex::default(),
            silent_feed: Mutex::new(None),
        })
    }

    /// A source whose change feed never says anything.
    fn with_silent_feed(inner: Arc<dyn Store>) -> Arc<Watched> {
        let watched = Watched::new(inner);
        *watched
            .silent_feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(None);
        watched
    }

    fn lookups(&self) -> usize {
        self.session_lookups.load(Ordering::SeqCst)
    }

    fn touches(&self) -> Vec<DateTime<Utc>> {
        self.touches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl IdentitySource for Watched {
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        self.inner.token_by_hash(hash).await
    }
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.inner.user_by_id(id).await
    }
    async fn session_by_hash(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.session_lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.session_by_hash(hash).await
    }
    async fn touch_session(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.touches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(at);
        self.inner.touch_session(id, at).await
    }
    async fn end_session(&self, id: i64, reason: &str) -> Result<bool, StoreError> {
        self.inner.end_session(id, reason).await
    }
    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError> {
        let silent = {
            let mut silent = self
                .silent_feed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            silent.as_mut().map(|sender| {
                let (keep, feed) = tokio::sync::mpsc::channel(1);
                *sender = Some(keep);
                feed
            })
        };
        if let Some(feed) = silent {
            return Ok(feed);
        }
        self.inner.watch_identity().await
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Long TTLs, so that only the feed and the session limits can make the resolver forget.
fn config() -> ResolverConfig {
    ResolverConfig {
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(60),
        ..ResolverConfig::default()
    }
}

async fn started(watched: &Arc<Watched>, config: ResolverConfig) -> Arc<IdentityResolver> {
    watched.inner.migrate().await.unwrap();
    IdentityResolver::start(Arc::clone(watched), config)
        .await
        .unwrap()
}

/// A user and a signed-in session of `kind`.
async fn signed_in(store: &Arc<dyn Store>, kind: SessionKind) -> (User, SessionSecret, Session) {
    let user = store
        .insert_user(&NewUser {
            email: "ann@example.com".into(),
            name: "Ann".into(),
            roles: vec![Role::Deployer],
        })
        .await
        .unwrap();
    let secret = SessionSecret::generate();
    let session = store
        .insert_session(&NewSession {
            user_id: user.id,
            kind,
            hash: secret.hash(),
            ip: None,
            user_agent: None,
            device_name: None,
        })
        .await
        .unwrap();
    (user, secret, session)
}

fn outcome(result: &Result<Arc<Principal>, ResolveError>) -> &str {
    match result {
        Err(ResolveError::Refused(reason)) => reason,
        Ok(_) => "resolved",
        Err(ResolveError::Store(_)) => "store error",
    }
}

fn user_of(principal: &Principal) -> &UserPrincipal {
    match principal {
        Principal::User(user) => user,
        other => panic!("not a user: {other:?}"),
    }
}

/// Waits until the changes made so far (a sign-in notifies too) have reached the resolver, so
/// that what it caches next is not flushed by them.
async fn settle() {
    sleep(Duration::from_millis(500)).await;
}

/// Resolves `secret` until it gives `want` ("resolved" or a refusal); how long it took.
async fn until(resolver: &IdentityResolver, secret: &SessionSecret, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        let result = resolver.resolve_session(secret.expose()).await;
        if outcome(&result) == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "still {:?} after 3 s, want {want}",
            outcome(&result)
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// The stored session, once its revocation reason is `reason` (at most 2 s).
async fn ended_with(store: &Arc<dyn Store>, session: &Session, reason: &str) -> Session {
    let start = Instant::now();
    loop {
        let stored = store
            .session_by_public_id(session.public_id)
            .await
            .unwrap()
            .unwrap();
        if stored.revoked_reason.as_deref() == Some(reason) {
            assert!(stored.revoked_at.is_some());
            return stored;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "session not ended with {reason:?}: {stored:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviours

async fn a_session_resolves_to_its_user(store: Arc<dyn Store>, _: Opener) {
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    let (user, secret, session) = signed_in(&store, SessionKind::Cli).await;
    settle().await;

    let principal = resolver.resolve_session(secret.expose()).await.unwrap();
    let signed = user_of(&principal);
    assert_eq!(
        (signed.id, signed.email.as_str(), signed.name.as_str()),
        (user.id, "ann@example.com", "Ann")
    );
    assert_eq!(signed.roles, [Role::Deployer]);
    let info = signed.session.as_ref().unwrap();
    assert_eq!(
        (info.id, info.public_id, info.kind, info.created_at),
        (
            session.id,
            session.public_id,
            SessionKind::Cli,
            session.created_at
        )
    );
    assert_eq!(info.expires_at, session.created_at + TimeDelta::days(7));
    assert_eq!(principal.email(), Some("ann@example.com"));

    let cached = resolver.cached_session(secret.expose()).unwrap();
    assert!(Arc::ptr_eq(&cached, &principal));
    for _ in 0..20 {
        resolver.resolve_session(secret.expose()).await.unwrap();
    }
    assert_eq!(watched.lookups(), 1, "served from the cache");

    // Each kind of credential only resolves through its own door.
    let api = ApiTokenSecret::generate();
    let refused = resolver.resolve_api_token(secret.expose()).await;
    assert_eq!(outcome(&refused), "invalid API token");
    assert!(resolver.cached_api_token(secret.expose()).is_none());
    let refused = resolver.resolve_session(api.expose()).await;
    assert_eq!(outcome(&refused), "invalid session token");
    assert!(resolver.cached_session(api.expose()).is_none());
    let unknown = SessionSecret::generate();
    let refused = resolver.resolve_session(unknown.expose()).await;
    assert_eq!(outcome(&refused), "invalid session token");
    let refused = resolver.resolve_session("rgs_short").await;
    assert_eq!(outcome(&refused), "invalid session token");
}

async fn new_limits_apply_to_cached_sessions(store: Arc<dyn Store>, _: Opener) {
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    let (_, secret, session) = signed_in(&store, SessionKind::Web).await;
    assert_eq!(resolver.session_limits(), SessionLimits::default());
    let principal = resolver.resolve_session(secret.expose()).await.unwrap();
    let info = user_of(&principal).session.clone().unwrap();
    assert_eq!(info.expires_at, session.created_at + TimeDelta::minutes(5));
    // The settings change: web sessions may not outlive a second any more.
    let limits = SessionLimits {
        web_absolute: Duration::from_secs(1),
        ..SessionLimits::default()
    };
    resolver.set_session_limits(limits);
    assert_eq!(resolver.session_limits(), limits);
    sleep(Duration::from_millis(1100)).await;
    assert!(resolver.cached_session(secret.expose()).is_none());
    let refused = resolver.resolve_session(secret.expose()).await;
    assert_eq!(outcome(&refused), "session expired");
    ended_with(&store, &session, "expired (absolute)").await;
}

async fn idle_sessions_are_refused_and_ended(store: Arc<dyn Store>, _: Opener) {
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    resolver.set_session_limits(SessionLimits {
        web_idle: Duration::from_secs(1),
        ..SessionLimits::default()
    });
    let (user, secret, session) = signed_in(&store, SessionKind::Web).await;
    let mut announced = resolver.ended_sessions();
    assert!(resolver.resolve_session(secret.expose()).await.is_ok());
    sleep(Duration::from_millis(1300)).await;
    assert!(resolver.cached_session(secret.expose()).is_none());
    let refused = resolver.resolve_session(secret.expose()).await;
    assert_eq!(outcome(&refused), "session expired");
    let ended = ended_with(&store, &session, "expired (idle)").await;
    assert!(ended.revoked_at.is_some());
    // The ending is announced once, for the audit trail.
    let heard = tokio::time::timeout(Duration::from_secs(2), announced.recv())
        .await
        .expect("announced")
        .expect("open");
    assert_eq!(
        (heard.public_id, heard.user_id, heard.kind, heard.end),
        (
            session.public_id,
            user.id,
            SessionKind::Web,
            SessionEnd::Idle
        )
    );
    // Once the ending is heard of, the store's answer says the same.
    sleep(Duration::from_millis(500)).await;
    let refused = resolver.resolve_session(secret.expose()).await;
    assert_eq!(outcome(&refused), "session expired");
}

async fn busy_sessions_live_until_their_absolute_limit(store: Arc<dyn Store>, _: Opener) {
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    resolver.set_session_limits(SessionLimits {
        web_idle: Duration::from_secs(1),
        web_absolute: Duration::from_secs(3),
        ..SessionLimits::default()
    });
    let (_, secret, session) = signed_in(&store, SessionKind::Web).await;
    let deadline = session.created_at + TimeDelta::seconds(3);
    // Used every 200 ms: three times its idle limit, never idle.
    loop {
        let before = Utc::now();
        let result = resolver.resolve_session(secret.expose()).await;
        let after = Utc::now();
        match outcome(&result) {
            "resolved" => assert!(before < deadline, "resolved past its absolute limit"),
            "session expired" => {
                assert!(
                    after >= deadline,
                    "refused early, at {after} before {deadline}"
                );
                break;
            }
            other => panic!("unexpected {other}"),
        }
        assert!(after < deadline + TimeDelta::seconds(1), "never refused");
        sleep(Duration::from_millis(200)).await;
    }
    let ended = ended_with(&store, &session, "expired (absolute)").await;
    // Its uses were recorded on the way (a quarter of the 1 s idle limit apart).
    assert!(ended.last_seen_at > session.last_seen_at + TimeDelta::seconds(2));
    assert!(watched.touches().len() >= 4, "{:?}", watched.touches());
}

async fn uses_are_recorded_at_most_every_interval(store: Arc<dyn Store>, _: Opener) {
    // With the default limits a use is recorded every 30 s at most: a session used 30 times
    // in a second and a half is not recorded at all, even though the cache (100 ms TTL) asks
    // the store again and again.
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(
        &watched,
        ResolverConfig {
            ttl: Duration::from_millis(100),
            ..config()
        },
    )
    .await;
    let (_, secret, _) = signed_in(&store, SessionKind::Web).await;
    for _ in 0..30 {
        resolver.resolve_session(secret.expose()).await.unwrap();
        sleep(Duration::from_millis(50)).await;
    }
    assert!(watched.lookups() >= 8, "{} lookups", watched.lookups());
    sleep(Duration::from_millis(100)).await;
    assert!(watched.touches().is_empty(), "{:?}", watched.touches());

    // With a 2 s idle limit, a quarter of it: every 500 ms (a new session, so that the first
    // one's age does not matter).
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    resolver.set_session_limits(SessionLimits {
        web_idle: Duration::from_secs(2),
        ..SessionLimits::default()
    });
    let secret = SessionSecret::generate();
    let user = store
        .user_by_email("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    store
        .insert_session(&NewSession {
            user_id: user.id,
            kind: SessionKind::Web,
            hash: secret.hash(),
            ip: None,
            user_agent: None,
            device_name: None,
        })
        .await
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2200) {
        if resolver.cached_session(secret.expose()).is_none() {
            resolver.resolve_session(secret.expose()).await.unwrap();
        }
        sleep(Duration::from_millis(50)).await;
    }
    sleep(Duration::from_millis(100)).await;
    let touches = watched.touches();
    assert!((3..=5).contains(&touches.len()), "{touches:?}");
    for pair in touches.windows(2) {
        assert!(
            pair[1] - pair[0] >= TimeDelta::milliseconds(500),
            "{touches:?}"
        );
    }
    let stored = store
        .session_by_hash(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(stored.last_seen_at),
        touches.last().copied().map(micros)
    );
}

/// Microsecond precision, as both backends store.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

async fn revocation_reaches_a_cached_session_within_a_second(
    store: Arc<dyn Store>,
    opener: Opener,
) {
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    let (_, secret, session) = signed_in(&store, SessionKind::Web).await;
    settle().await;
    assert!(resolver.resolve_session(secret.expose()).await.is_ok());
    assert!(resolver.cached_session(secret.expose()).is_some());

    let other = opener.open().await;
    assert!(other
        .revoke_session(session.public_id, "logout")
        .await
        .unwrap());
    let took = until(&resolver, &secret, "session revoked").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(resolver.cached_session(secret.expose()).is_none());
}

async fn user_changes_reach_a_cached_session_within_a_second(
    store: Arc<dyn Store>,
    opener: Opener,
) {
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    let (_, secret, _) = signed_in(&store, SessionKind::Cli).await;
    settle().await;
    assert!(resolver.resolve_session(secret.expose()).await.is_ok());
    let other = opener.open().await;
    let email = "ann@example.com";

    assert!(other.set_user_roles(email, &[Role::Viewer]).await.unwrap());
    let start = Instant::now();
    loop {
        let principal = resolver.resolve_session(secret.expose()).await.unwrap();
        if user_of(&principal).roles == [Role::Viewer] {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "roles unchanged");
        sleep(Duration::from_millis(10)).await;
    }

    assert!(other.set_user_lock(email, Some("left")).await.unwrap());
    let took = until(&resolver, &secret, "user locked").await;
    assert!(took < Duration::from_secs(1), "lock took {took:?}");
    assert!(other.set_user_lock(email, None).await.unwrap());
    until(&resolver, &secret, "resolved").await;

    assert!(other.set_user_suspended(email, true).await.unwrap());
    let took = until(&resolver, &secret, "user suspended").await;
    assert!(took < Duration::from_secs(1), "suspension took {took:?}");
    assert!(other.set_user_suspended(email, false).await.unwrap());
    until(&resolver, &secret, "resolved").await;

    // Deleting the user deletes the session.
    assert!(other.delete_user(email).await.unwrap());
    let took = until(&resolver, &secret, "invalid session token").await;
    assert!(took < Duration::from_secs(1), "deletion took {took:?}");
}

async fn a_swept_session_is_refused_as_expired(store: Arc<dyn Store>, _: Opener) {
    let watched = Watched::new(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    let (_, secret, session) = signed_in(&store, SessionKind::Web).await;
    settle().await;
    assert!(resolver.resolve_session(secret.expose()).await.is_ok());
    // The sweeper on some instance, with an hour passed.
    let later = Utc::now() + TimeDelta::hours(1);
    let ended = store
        .expire_sessions(&SessionLimits::default(), later)
        .await
        .unwrap();
    assert_eq!(
        ended.iter().map(|s| s.public_id).collect::<Vec<_>>(),
        [session.public_id]
    );
    let took = until(&resolver, &secret, "session expired").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

async fn the_process_that_ends_a_session_forgets_it_at_once(store: Arc<dyn Store>, _: Opener) {
    // No notification arrives: only what the process does itself can make it forget.
    let watched = Watched::with_silent_feed(Arc::clone(&store));
    let resolver = started(&watched, config()).await;
    let (_, secret, session) = signed_in(&store, SessionKind::Cli).await;
    assert_eq!(
        outcome(&resolver.resolve_session(secret.expose()).await),
        "resolved"
    );
    assert!(store
        .revoke_session(session.public_id, "logout")
        .await
        .unwrap());
    assert!(
        resolver.cached_session(secret.expose()).is_some(),
        "still cached: the feed has said nothing"
    );
    resolver.forget_cached();
    assert!(resolver.cached_session(secret.expose()).is_none());
    assert_eq!(
        outcome(&resolver.resolve_session(secret.expose()).await),
        "session revoked"
    );
}

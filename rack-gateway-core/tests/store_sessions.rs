//! Store conformance for sessions and sign-ins in progress: every behaviour below runs against
//! the embedded store (in a temporary directory) and against PostgreSQL (in a fresh database
//! per test, on the server named by `DATABASE_URL`; run through `scripts/with-postgres`).
#![cfg(all(feature = "postgres", feature = "sqlite"))]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rack_gateway_core::identity::{
    CliLoginPoll, LoginKind, LoginStateUse, NewLoginState, NewSession, NewUser, Session,
    SessionEnd, SessionKind, SessionLimits, SessionSecret, TokenHash, User, LOGIN_STATE_LIFETIME,
};
use rack_gateway_core::rbac::Role;
use rack_gateway_core::store::{IdentityEvent, IdentityWatch, Store, StoreError};
use tokio::time::{timeout, Instant};

#[macro_use]
mod common;

use common::Opener;

conformance!(
    sessions_round_trip,
    session_input_is_checked,
    sessions_are_revoked_one_by_one_or_per_user,
    touching_a_session_moves_it_forward_and_is_not_a_change,
    session_changes_reach_another_instance_within_a_second,
    deleting_a_user_deletes_their_sessions,
    expire_sessions_ends_idle_and_absolute_sessions,
    login_states_are_used_once,
    racing_callbacks_use_a_state_once,
    cli_logins_hand_out_their_outcome_once,
    racing_pollers_take_an_outcome_once,
    expired_login_states_are_deleted,
    login_states_are_not_identity_changes,
);

// ---------------------------------------------------------------------------------------------
// Helpers

async fn migrated(store: &Arc<dyn Store>) {
    store.migrate().await.unwrap();
}

async fn user(store: &Arc<dyn Store>, email: &str) -> User {
    store
        .insert_user(&NewUser {
            email: email.into(),
            name: format!("Name of {email}"),
            roles: vec![Role::Deployer],
        })
        .await
        .unwrap()
}

fn new_session(user_id: i64, kind: SessionKind) -> (SessionSecret, NewSession) {
    let secret = SessionSecret::generate();
    let session = NewSession {
        user_id,
        kind,
        hash: secret.hash(),
        ip: "203.0.113.7".parse().ok(),
        user_agent: Some("Mozilla/5.0 (test)".into()),
        device_name: (kind == SessionKind::Cli).then(|| "laptop".to_owned()),
    };
    (secret, session)
}

async fn started(store: &Arc<dyn Store>, user_id: i64, kind: SessionKind) -> Session {
    store
        .insert_session(&new_session(user_id, kind).1)
        .await
        .unwrap()
}

fn new_state(kind: LoginKind, expires_at: DateTime<Utc>) -> (String, NewLoginState) {
    let state = SessionSecret::generate().expose().replace("rgs_", "state_");
    let new = NewLoginState {
        state_hash: TokenHash::of(&state),
        kind,
        browser_hash: (kind == LoginKind::Web).then(|| TokenHash::of("cookie value")),
        return_to: (kind == LoginKind::Web).then(|| "/app/rack".to_owned()),
        device_name: (kind == LoginKind::Cli).then(|| "laptop".to_owned()),
        expires_at,
    };
    (state, new)
}

/// Microsecond precision, as both backends store.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap()
}

/// Waits until the feed has been silent for a while, swallowing what earlier writes caused.
async fn quiet(feed: &mut IdentityWatch) {
    while let Ok(Some(_)) = timeout(Duration::from_millis(400), feed.recv()).await {}
}

/// Waits (at most a second) for a `Changed` and returns how long it took.
async fn next_change(feed: &mut IdentityWatch, since: Instant, what: &str) -> Duration {
    match timeout(Duration::from_secs(1), feed.recv()).await {
        Ok(Some(IdentityEvent::Changed)) => since.elapsed(),
        other => panic!("{what}: expected Changed within 1 s, got {other:?}"),
    }
}

/// Asserts that the feed stays silent for half a second.
async fn no_change(feed: &mut IdentityWatch, what: &str) {
    let event = timeout(Duration::from_millis(500), feed.recv()).await;
    assert!(event.is_err(), "{what} produced {event:?}");
}

// ---------------------------------------------------------------------------------------------
// Sessions

async fn sessions_round_trip(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let ann = user(&store, "ann@example.com").await;
    let bob = user(&store, "bob@example.com").await;
    let before = micros(Utc::now());
    let (secret, new) = new_session(ann.id, SessionKind::Cli);
    let cli = store.insert_session(&new).await.unwrap();
    assert_eq!(cli.user_id, ann.id);
    assert_eq!(cli.kind, SessionKind::Cli);
    assert_eq!(cli.ip, "203.0.113.7".parse().ok());
    assert_eq!(cli.user_agent.as_deref(), Some("Mozilla/5.0 (test)"));
    assert_eq!(cli.device_name.as_deref(), Some("laptop"));
    assert!(cli.created_at >= before && cli.created_at <= Utc::now());
    assert_eq!(cli.last_seen_at, cli.created_at);
    assert_eq!(
        (cli.revoked_at, cli.revoked_reason.as_deref()),
        (None, None)
    );

    assert_eq!(
        store.session_by_public_id(cli.public_id).await.unwrap(),
        Some(cli.clone())
    );
    assert_eq!(
        store.session_by_hash(&secret.hash()).await.unwrap(),
        Some(cli.clone())
    );
    let stranger = SessionSecret::generate();
    assert_eq!(store.session_by_hash(&stranger.hash()).await.unwrap(), None);
    assert_eq!(
        store
            .session_by_public_id(uuid::Uuid::new_v4())
            .await
            .unwrap(),
        None
    );

    let mut ipv6 = new_session(ann.id, SessionKind::Web).1;
    ipv6.ip = "2001:db8::1".parse().ok();
    ipv6.user_agent = None;
    let web = store.insert_session(&ipv6).await.unwrap();
    assert_eq!(web.ip, "2001:db8::1".parse().ok());
    assert_eq!((web.user_agent, web.device_name), (None, None));
    let bobs = started(&store, bob.id, SessionKind::Web).await;

    let listed: Vec<uuid::Uuid> = store
        .list_sessions(ann.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.public_id)
        .collect();
    assert_eq!(listed, [web.public_id, cli.public_id], "newest first");
    assert_eq!(store.list_sessions(bob.id).await.unwrap(), [bobs]);
    assert!(store.list_sessions(-1).await.unwrap().is_empty());
}

async fn session_input_is_checked(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let ann = user(&store, "ann@example.com").await;
    let (_, new) = new_session(ann.id + 1000, SessionKind::Web);
    assert!(matches!(
        store.insert_session(&new).await,
        Err(StoreError::Invalid {
            field: "user_id",
            ..
        })
    ));
    let (_, mut new) = new_session(ann.id, SessionKind::Web);
    store.insert_session(&new).await.unwrap();
    assert!(matches!(
        store.insert_session(&new).await,
        Err(StoreError::Conflict(_))
    ));

    new.hash = SessionSecret::generate().hash();
    new.device_name = Some("d".repeat(151));
    assert!(matches!(
        store.insert_session(&new).await,
        Err(StoreError::Invalid {
            field: "device_name",
            ..
        })
    ));
    new.device_name = Some("d".repeat(150));
    new.user_agent = Some(format!("{}\n{}", "ü".repeat(300), "x".repeat(300)));
    let stored = store.insert_session(&new).await.unwrap();
    let agent = stored.user_agent.unwrap_or_default();
    assert_eq!(agent.chars().count(), 512, "cut to 512 characters");
    assert!(!agent.contains('\n'));

    assert!(matches!(
        store.revoke_session(stored.public_id, " ").await,
        Err(StoreError::Invalid {
            field: "revoked_reason",
            ..
        })
    ));
    assert!(matches!(
        store.revoke_user_sessions(ann.id, "a\0b").await,
        Err(StoreError::Invalid { .. })
    ));
    // Nothing was revoked by the refused calls.
    assert_eq!(store.list_sessions(ann.id).await.unwrap().len(), 2);
    // Unknown ids touch and end nothing.
    store.touch_session(-5, Utc::now()).await.unwrap();
    assert!(!store.end_session(-5, "logout").await.unwrap());
}

async fn sessions_are_revoked_one_by_one_or_per_user(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let ann = user(&store, "ann@example.com").await;
    let bob = user(&store, "bob@example.com").await;
    let (secret, new) = new_session(ann.id, SessionKind::Web);
    let first = store.insert_session(&new).await.unwrap();
    let second = started(&store, ann.id, SessionKind::Cli).await;
    let third = started(&store, ann.id, SessionKind::Web).await;
    let bobs = started(&store, bob.id, SessionKind::Cli).await;

    assert!(store
        .revoke_session(first.public_id, "logout")
        .await
        .unwrap());
    assert!(!store
        .revoke_session(first.public_id, "again")
        .await
        .unwrap());
    assert!(!store
        .revoke_session(uuid::Uuid::new_v4(), "logout")
        .await
        .unwrap());
    // Still found by its hash, with why it ended: the resolver refuses it with its reason.
    let ended = store
        .session_by_hash(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(ended.revoked_at.is_some());
    assert_eq!(ended.revoked_reason.as_deref(), Some("logout"));
    assert_eq!(
        SessionLimits::default().check(&ended, Utc::now()),
        Err(SessionEnd::Revoked("logout".into()))
    );

    assert!(store
        .end_session(second.id, "expired (idle)")
        .await
        .unwrap());
    assert!(!store.end_session(second.id, "logout").await.unwrap());
    let second = store
        .session_by_public_id(second.public_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.revoked_reason.as_deref(), Some("expired (idle)"));

    let listed = store.list_sessions(ann.id).await.unwrap();
    assert_eq!(listed, [third]);
    assert_eq!(
        store
            .revoke_user_sessions(ann.id, "locked by an administrator")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.revoke_user_sessions(ann.id, "again").await.unwrap(),
        0
    );
    assert!(store.list_sessions(ann.id).await.unwrap().is_empty());
    // The earlier reasons are kept.
    let first = store
        .session_by_public_id(first.public_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.revoked_reason.as_deref(), Some("logout"));
    assert_eq!(store.list_sessions(bob.id).await.unwrap(), [bobs]);
}

async fn touching_a_session_moves_it_forward_and_is_not_a_change(
    store: Arc<dyn Store>,
    opener: Opener,
) {
    migrated(&store).await;
    let other = opener.open().await;
    let ann = user(&store, "ann@example.com").await;
    let (secret, new) = new_session(ann.id, SessionKind::Web);
    let session = store.insert_session(&new).await.unwrap();
    let mut feed = store.watch_identity().await.unwrap();
    quiet(&mut feed).await;

    let used = micros(Utc::now() + TimeDelta::seconds(30));
    other.touch_session(session.id, used).await.unwrap();
    store
        .touch_session(session.id, used - TimeDelta::minutes(1))
        .await
        .unwrap();
    no_change(&mut feed, "touch_session").await;
    let seen = store
        .session_by_hash(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen.last_seen_at, used,
        "an older use does not move it back"
    );
    assert_eq!(seen.created_at, session.created_at);

    // An ended session is not touched any more.
    let since = Instant::now();
    assert!(other
        .revoke_session(session.public_id, "logout")
        .await
        .unwrap());
    next_change(&mut feed, since, "revoke after touch").await;
    store
        .touch_session(session.id, used + TimeDelta::minutes(1))
        .await
        .unwrap();
    let seen = store
        .session_by_hash(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.last_seen_at, used);
}

async fn session_changes_reach_another_instance_within_a_second(
    store: Arc<dyn Store>,
    opener: Opener,
) {
    migrated(&store).await;
    let mut feed = store.watch_identity().await.unwrap();
    let other = opener.open().await;
    let ann = user(&other, "ann@example.com").await;
    let mut slowest = Duration::ZERO;

    macro_rules! expect_change {
        ($what:literal, $action:expr) => {{
            quiet(&mut feed).await;
            let since = Instant::now();
            $action;
            slowest = slowest.max(next_change(&mut feed, since, $what).await);
        }};
    }

    let mut sessions = Vec::new();
    expect_change!("insert session", {
        sessions.push(started(&other, ann.id, SessionKind::Web).await);
    });
    sessions.push(started(&other, ann.id, SessionKind::Cli).await);
    sessions.push(started(&other, ann.id, SessionKind::Web).await);
    sessions.push(started(&other, ann.id, SessionKind::Web).await);
    expect_change!("revoke session", {
        assert!(other
            .revoke_session(sessions[0].public_id, "logout")
            .await
            .unwrap());
    });
    expect_change!("end session", {
        assert!(other
            .end_session(sessions[1].id, "expired (idle)")
            .await
            .unwrap());
    });
    expect_change!("expire sessions", {
        let ended = other
            .expire_sessions(&SessionLimits::default(), Utc::now() + TimeDelta::hours(1))
            .await
            .unwrap();
        assert_eq!(ended.len(), 2);
    });
    sessions.push(started(&other, ann.id, SessionKind::Web).await);
    expect_change!("revoke user sessions", {
        assert_eq!(other.revoke_user_sessions(ann.id, "lock").await.unwrap(), 1);
    });
    started(&other, ann.id, SessionKind::Web).await;
    expect_change!("delete user (cascading to sessions)", {
        assert!(other.delete_user("ann@example.com").await.unwrap());
    });
    eprintln!(
        "{}: slowest session change seen by another instance after {slowest:?}",
        store.backend()
    );
}

async fn deleting_a_user_deletes_their_sessions(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let ann = user(&store, "ann@example.com").await;
    let (secret, new) = new_session(ann.id, SessionKind::Cli);
    let session = store.insert_session(&new).await.unwrap();
    assert!(store.delete_user("ann@example.com").await.unwrap());
    assert_eq!(store.session_by_hash(&secret.hash()).await.unwrap(), None);
    assert_eq!(
        store.session_by_public_id(session.public_id).await.unwrap(),
        None
    );
}

async fn expire_sessions_ends_idle_and_absolute_sessions(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let ann = user(&store, "ann@example.com").await;
    let limits = SessionLimits {
        web_idle: Duration::from_secs(10 * 60),
        web_absolute: Duration::from_secs(60 * 60),
        cli_idle: Duration::from_secs(24 * 3600),
        cli_absolute: Duration::from_secs(48 * 3600),
    };
    // A busy web session, an abandoned one, a busy CLI session and an abandoned one. Uses are
    // recorded "in the future" and the sweeper is asked about later instants.
    let busy_web = started(&store, ann.id, SessionKind::Web).await;
    let idle_web = started(&store, ann.id, SessionKind::Web).await;
    let busy_cli = started(&store, ann.id, SessionKind::Cli).await;
    let idle_cli = started(&store, ann.id, SessionKind::Cli).await;
    let start = busy_web.created_at;
    store
        .touch_session(busy_web.id, start + TimeDelta::minutes(55))
        .await
        .unwrap();
    store
        .touch_session(busy_cli.id, start + TimeDelta::hours(36))
        .await
        .unwrap();

    let sweep = |minutes: i64| {
        let store = Arc::clone(&store);
        async move {
            let at = micros(start + TimeDelta::minutes(minutes));
            let ended = store.expire_sessions(&limits, at).await.unwrap();
            for session in &ended {
                assert_eq!(session.revoked_at, Some(at));
            }
            ended
                .into_iter()
                .map(|s| (s.public_id, s.revoked_reason.unwrap_or_default()))
                .collect::<Vec<_>>()
        }
    };
    let idle = SessionEnd::IDLE_REASON.to_owned();
    let absolute = SessionEnd::ABSOLUTE_REASON.to_owned();
    assert!(sweep(5).await.is_empty());
    assert_eq!(sweep(11).await, [(idle_web.public_id, idle.clone())]);
    assert!(
        sweep(11).await.is_empty(),
        "an ended session is not ended again"
    );
    // The busy web session reaches its absolute hour before its idle limit (55 + 10 minutes).
    assert!(sweep(59).await.is_empty());
    assert_eq!(sweep(61).await, [(busy_web.public_id, absolute.clone())]);
    assert_eq!(sweep(24 * 60 + 1).await, [(idle_cli.public_id, idle)]);
    assert_eq!(sweep(48 * 60 + 1).await, [(busy_cli.public_id, absolute)]);
    assert!(store.list_sessions(ann.id).await.unwrap().is_empty());

    // The sweeper and the resolver's check agree on why each ended.
    let busy_cli = store
        .session_by_public_id(busy_cli.public_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        limits.check(&busy_cli, Utc::now()),
        Err(SessionEnd::Absolute)
    );
}

// ---------------------------------------------------------------------------------------------
// Sign-ins in progress

async fn login_states_are_used_once(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let now = micros(Utc::now());
    let (state, new) = new_state(LoginKind::Web, now + LOGIN_STATE_LIFETIME);
    store.insert_login_state(&new).await.unwrap();
    assert!(matches!(
        store.insert_login_state(&new).await,
        Err(StoreError::Conflict(_))
    ));
    let hash = TokenHash::of(&state);

    // The CLI callback does not know a web sign-in.
    assert_eq!(
        store
            .consume_login_state(&hash, LoginKind::Cli, now)
            .await
            .unwrap(),
        LoginStateUse::Unknown
    );
    let used = now + TimeDelta::seconds(3);
    let LoginStateUse::Fresh(fresh) = store
        .consume_login_state(&hash, LoginKind::Web, used)
        .await
        .unwrap()
    else {
        panic!("first use refused");
    };
    assert_eq!(fresh.state_hash, hash);
    assert_eq!(fresh.kind, LoginKind::Web);
    assert!(fresh.started_by("cookie value"));
    assert!(!fresh.started_by("another browser"));
    assert_eq!(fresh.return_to.as_deref(), Some("/app/rack"));
    assert_eq!(fresh.device_name, None);
    assert_eq!(fresh.expires_at, now + LOGIN_STATE_LIFETIME);
    assert_eq!(fresh.consumed_at, Some(used));
    assert_eq!((fresh.user_id, fresh.error.as_deref()), (None, None));

    assert_eq!(
        store
            .consume_login_state(&hash, LoginKind::Web, used)
            .await
            .unwrap(),
        LoginStateUse::AlreadyUsed
    );
    // A replay stays a replay after the state expired.
    let late = now + LOGIN_STATE_LIFETIME + TimeDelta::seconds(1);
    assert_eq!(
        store
            .consume_login_state(&hash, LoginKind::Web, late)
            .await
            .unwrap(),
        LoginStateUse::AlreadyUsed
    );
    assert_eq!(
        store
            .consume_login_state(&TokenHash::of("never issued"), LoginKind::Web, now)
            .await
            .unwrap(),
        LoginStateUse::Unknown
    );

    // An unused state past its lifetime is expired, and stays unused.
    let (state, new) = new_state(LoginKind::Cli, now + LOGIN_STATE_LIFETIME);
    store.insert_login_state(&new).await.unwrap();
    let hash = TokenHash::of(&state);
    for _ in 0..2 {
        assert_eq!(
            store
                .consume_login_state(&hash, LoginKind::Cli, late)
                .await
                .unwrap(),
            LoginStateUse::Expired
        );
    }
    // At its expiry instant it is already expired.
    let at_expiry = now + LOGIN_STATE_LIFETIME;
    assert_eq!(
        store
            .consume_login_state(&hash, LoginKind::Cli, at_expiry)
            .await
            .unwrap(),
        LoginStateUse::Expired
    );

    let (_, mut bad) = new_state(LoginKind::Web, now + LOGIN_STATE_LIFETIME);
    bad.return_to = Some(format!("/app/{}", "x".repeat(2100)));
    assert!(matches!(
        store.insert_login_state(&bad).await,
        Err(StoreError::Invalid {
            field: "return_to",
            ..
        })
    ));
}

async fn racing_callbacks_use_a_state_once(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let other = opener.open().await;
    let now = Utc::now();
    for _ in 0..20 {
        let (state, new) = new_state(LoginKind::Web, now + LOGIN_STATE_LIFETIME);
        store.insert_login_state(&new).await.unwrap();
        let hash = TokenHash::of(&state);
        let racers = [Arc::clone(&store), Arc::clone(&other)].map(|racer| {
            tokio::spawn(async move {
                racer
                    .consume_login_state(&hash, LoginKind::Web, now)
                    .await
                    .unwrap()
            })
        });
        let mut fresh = 0;
        let mut replayed = 0;
        for racer in racers {
            match racer.await.unwrap() {
                LoginStateUse::Fresh(_) => fresh += 1,
                LoginStateUse::AlreadyUsed => replayed += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((fresh, replayed), (1, 1));
    }
}

async fn cli_logins_hand_out_their_outcome_once(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let ann = user(&store, "ann@example.com").await;
    let now = micros(Utc::now());
    let expires_at = now + LOGIN_STATE_LIFETIME;

    let (state, new) = new_state(LoginKind::Cli, expires_at);
    store.insert_login_state(&new).await.unwrap();
    let hash = TokenHash::of(&state);
    assert_eq!(
        store.take_cli_login(&hash, now).await.unwrap(),
        CliLoginPoll::Pending
    );
    // No outcome before the browser came back.
    assert!(!store.finish_cli_login(&hash, Ok(ann.id)).await.unwrap());
    let LoginStateUse::Fresh(fresh) = store
        .consume_login_state(&hash, LoginKind::Cli, now)
        .await
        .unwrap()
    else {
        panic!("first use refused");
    };
    assert_eq!(fresh.device_name.as_deref(), Some("laptop"));
    assert_eq!(fresh.browser_hash, None);
    assert_eq!(
        store.take_cli_login(&hash, now).await.unwrap(),
        CliLoginPoll::Pending
    );
    assert!(matches!(
        store.finish_cli_login(&hash, Ok(ann.id + 1000)).await,
        Err(StoreError::Invalid {
            field: "user_id",
            ..
        })
    ));
    assert!(store.finish_cli_login(&hash, Ok(ann.id)).await.unwrap());
    assert!(
        !store
            .finish_cli_login(&hash, Err("too late".into()))
            .await
            .unwrap(),
        "one outcome only"
    );
    assert_eq!(
        store.take_cli_login(&hash, now).await.unwrap(),
        CliLoginPoll::SignedIn {
            user_id: ann.id,
            device_name: Some("laptop".to_owned())
        }
    );
    assert_eq!(
        store.take_cli_login(&hash, now).await.unwrap(),
        CliLoginPoll::Unknown,
        "handed out once"
    );

    // A refusal is handed out once too.
    let (state, new) = new_state(LoginKind::Cli, expires_at);
    store.insert_login_state(&new).await.unwrap();
    let hash = TokenHash::of(&state);
    store
        .consume_login_state(&hash, LoginKind::Cli, now)
        .await
        .unwrap();
    assert!(matches!(
        store.finish_cli_login(&hash, Err(String::new())).await,
        Err(StoreError::Invalid { field: "error", .. })
    ));
    let reason = "user not authorized for this gateway".to_owned();
    assert!(store
        .finish_cli_login(&hash, Err(reason.clone()))
        .await
        .unwrap());
    assert_eq!(
        store.take_cli_login(&hash, now).await.unwrap(),
        CliLoginPoll::Refused(reason)
    );
    assert_eq!(
        store.take_cli_login(&hash, now).await.unwrap(),
        CliLoginPoll::Unknown
    );

    // A result not taken in time is expired.
    let (state, new) = new_state(LoginKind::Cli, expires_at);
    store.insert_login_state(&new).await.unwrap();
    let hash = TokenHash::of(&state);
    store
        .consume_login_state(&hash, LoginKind::Cli, now)
        .await
        .unwrap();
    assert!(store.finish_cli_login(&hash, Ok(ann.id)).await.unwrap());
    assert_eq!(
        store.take_cli_login(&hash, expires_at).await.unwrap(),
        CliLoginPoll::Expired
    );

    // Web sign-ins have no outcome to record or take.
    let (state, new) = new_state(LoginKind::Web, expires_at);
    store.insert_login_state(&new).await.unwrap();
    let hash = TokenHash::of(&state);
    store
        .consume_login_state(&hash, LoginKind::Web, now)
        .await
        .unwrap();
    assert!(!store.finish_cli_login(&hash, Ok(ann.id)).await.unwrap());
    assert_eq!(
        store.take_cli_login(&hash, now).await.unwrap(),
        CliLoginPoll::Unknown
    );
}

async fn racing_pollers_take_an_outcome_once(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let other = opener.open().await;
    let ann = user(&store, "ann@example.com").await;
    let now = Utc::now();
    for _ in 0..20 {
        let (state, new) = new_state(LoginKind::Cli, now + LOGIN_STATE_LIFETIME);
        store.insert_login_state(&new).await.unwrap();
        let hash = TokenHash::of(&state);
        store
            .consume_login_state(&hash, LoginKind::Cli, now)
            .await
            .unwrap();
        assert!(store.finish_cli_login(&hash, Ok(ann.id)).await.unwrap());
        let pollers = [Arc::clone(&store), Arc::clone(&other)].map(|poller| {
            tokio::spawn(async move { poller.take_cli_login(&hash, now).await.unwrap() })
        });
        let mut outcomes = Vec::new();
        for poller in pollers {
            outcomes.push(poller.await.unwrap());
        }
        outcomes.sort_by_key(|outcome| format!("{outcome:?}"));
        assert_eq!(
            outcomes,
            [
                CliLoginPoll::SignedIn {
                    user_id: ann.id,
                    device_name: Some("laptop".to_owned())
                },
                CliLoginPoll::Unknown
            ]
        );
    }
}

async fn expired_login_states_are_deleted(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let now = micros(Utc::now());
    let mut hashes = Vec::new();
    for (kind, minutes) in [
        (LoginKind::Web, -1),
        (LoginKind::Cli, 0),
        (LoginKind::Web, 1),
    ] {
        let (state, new) = new_state(kind, now + TimeDelta::minutes(minutes));
        store.insert_login_state(&new).await.unwrap();
        hashes.push((TokenHash::of(&state), kind));
    }
    assert_eq!(store.delete_expired_login_states(now).await.unwrap(), 2);
    assert_eq!(store.delete_expired_login_states(now).await.unwrap(), 0);
    let mut left = Vec::new();
    for (hash, kind) in &hashes {
        left.push(store.consume_login_state(hash, *kind, now).await.unwrap());
    }
    assert!(matches!(
        left.as_slice(),
        [
            LoginStateUse::Unknown,
            LoginStateUse::Unknown,
            LoginStateUse::Fresh(_)
        ]
    ));
}

async fn login_states_are_not_identity_changes(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let other = opener.open().await;
    let ann = user(&other, "ann@example.com").await;
    let mut feed = store.watch_identity().await.unwrap();
    quiet(&mut feed).await;
    let now = Utc::now();
    let (state, new) = new_state(LoginKind::Cli, now + LOGIN_STATE_LIFETIME);
    let hash = TokenHash::of(&state);
    other.insert_login_state(&new).await.unwrap();
    other
        .consume_login_state(&hash, LoginKind::Cli, now)
        .await
        .unwrap();
    other.finish_cli_login(&hash, Ok(ann.id)).await.unwrap();
    other.take_cli_login(&hash, now).await.unwrap();
    other
        .delete_expired_login_states(now + TimeDelta::hours(1))
        .await
        .unwrap();
    no_change(&mut feed, "sign-in bookkeeping").await;
}

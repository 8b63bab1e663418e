//! Store conformance: every behaviour below runs against the embedded store (in a temporary
//! directory) and against PostgreSQL (in a fresh database per test, on the server named by
//! `DATABASE_URL`; run through `scripts/with-postgres` to get a throwaway one).
#![cfg(all(feature = "postgres", feature = "sqlite"))]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rack_gateway_core::identity::{NewApiToken, NewUser, TokenHash};
use rack_gateway_core::rbac::Role;
use rack_gateway_core::store::{IdentityEvent, IdentityWatch, Store, StoreError};
use tokio::time::{timeout, Instant};

#[macro_use]
mod common;

use common::{admin, Opener, TestDb};

conformance!(
    migrating_twice_is_fine,
    concurrent_migrations_are_safe,
    users_round_trip,
    ensure_user_sets_exactly_the_roles,
    lock_unlock_and_suspend,
    deleting_a_user_kills_their_tokens,
    tokens_round_trip,
    revoke_by_name_and_by_public_id,
    names_are_reusable_after_revoke,
    duplicates_conflict,
    bad_input_is_invalid,
    expiry_and_last_use_are_stored,
    changes_from_another_instance_arrive_within_a_second,
    touching_a_token_is_not_a_change,
    feed_closes_with_the_store,
    data_survives_close_and_reopen,
);

// ---------------------------------------------------------------------------------------------
// Helpers

async fn migrated(store: &Arc<dyn Store>) {
    store.migrate().await.unwrap();
}

fn new_user(email: &str, roles: &[Role]) -> NewUser {
    NewUser {
        email: email.into(),
        name: format!("Name of {email}"),
        roles: roles.to_vec(),
    }
}

fn new_token(name: &str, owner_id: Option<i64>) -> NewApiToken {
    NewApiToken {
        name: name.into(),
        hash: TokenHash::of(&format!("rgw_secret_{name}_{}", uuid::Uuid::new_v4())),
        owner_id,
        permissions: vec!["convox:app:list".into(), "convox:*:read".into()],
        role: Some("viewer".into()),
        created_by: Some("operator".into()),
        expires_at: None,
    }
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

/// Waits (at most `seconds`) for exactly `wanted`.
async fn expect_event(feed: &mut IdentityWatch, wanted: IdentityEvent, seconds: u64) {
    let got = timeout(Duration::from_secs(seconds), feed.recv()).await;
    assert!(
        matches!(got, Ok(Some(event)) if event == wanted),
        "expected {wanted:?}, got {got:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Behaviours

async fn migrating_twice_is_fine(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    migrated(&store).await;
    store.ping().await.unwrap();
    assert!(["postgres", "embedded"].contains(&store.backend()));
    assert!(store.list_users().await.unwrap().is_empty());
}

async fn concurrent_migrations_are_safe(store: Arc<dyn Store>, opener: Opener) {
    let other = opener.open().await;
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    a.unwrap();
    b.unwrap();
    other
        .insert_user(&new_user("a@example.com", &[]))
        .await
        .unwrap();
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

async fn users_round_trip(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let ann = store
        .insert_user(&new_user(
            "  Ann@Example.COM ",
            &[Role::Ops, Role::Viewer, Role::Ops],
        ))
        .await
        .unwrap();
    assert_eq!(ann.email, "ann@example.com");
    assert_eq!(ann.name, "Name of   Ann@Example.COM ");
    assert_eq!(ann.roles, [Role::Viewer, Role::Ops]);
    assert_eq!(ann.locked_at, None);
    assert!(!ann.suspended);
    let bob = store
        .insert_user(&new_user("bob@example.com", &[Role::Admin]))
        .await
        .unwrap();
    assert_ne!(ann.id, bob.id);

    assert_eq!(
        store.user_by_email("ANN@example.com ").await.unwrap(),
        Some(ann.clone())
    );
    assert_eq!(store.user_by_id(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.user_by_id(-1).await.unwrap(), None);
    assert_eq!(
        store.user_by_email("nobody@example.com").await.unwrap(),
        None
    );
    let emails: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(emails, ["ann@example.com", "bob@example.com"]);

    assert!(store
        .set_user_roles("Ann@example.com", &[Role::Deployer, Role::Auditor])
        .await
        .unwrap());
    let ann2 = store.user_by_id(ann.id).await.unwrap().unwrap();
    assert_eq!(ann2.roles, [Role::Deployer, Role::Auditor]);
    assert!(ann2.updated_at >= ann.updated_at);
    assert!(store.set_user_roles("ann@example.com", &[]).await.unwrap());
    assert!(store
        .user_by_id(ann.id)
        .await
        .unwrap()
        .unwrap()
        .roles
        .is_empty());
    assert!(!store
        .set_user_roles("nobody@example.com", &[Role::Admin])
        .await
        .unwrap());

    assert!(store.delete_user("bob@example.com").await.unwrap());
    assert!(!store.delete_user("bob@example.com").await.unwrap());
    assert_eq!(store.user_by_id(bob.id).await.unwrap(), None);
}

async fn ensure_user_sets_exactly_the_roles(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let created = store
        .ensure_user(&new_user("Root@Example.com", &[Role::Admin]))
        .await
        .unwrap();
    assert_eq!(created.email, "root@example.com");
    assert_eq!(created.roles, [Role::Admin]);
    let same = store
        .ensure_user(&new_user("root@example.com", &[Role::Admin]))
        .await
        .unwrap();
    assert_eq!(same, created);
    let mut renamed = new_user("root@example.com", &[Role::Viewer]);
    renamed.name = "Another Name".into();
    let changed = store.ensure_user(&renamed).await.unwrap();
    assert_eq!(changed.id, created.id);
    assert_eq!(changed.roles, [Role::Viewer]);
    assert_eq!(
        changed.name, created.name,
        "an existing user keeps its name"
    );
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

async fn lock_unlock_and_suspend(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let user = store
        .insert_user(&new_user("carol@example.com", &[Role::Viewer]))
        .await
        .unwrap();
    assert!(store
        .set_user_lock("carol@example.com", Some("left the company"))
        .await
        .unwrap());
    let locked = store.user_by_id(user.id).await.unwrap().unwrap();
    assert!(locked.locked_at.is_some());
    assert_eq!(locked.locked_reason.as_deref(), Some("left the company"));
    assert!(store
        .set_user_lock("carol@example.com", None)
        .await
        .unwrap());
    let unlocked = store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!((unlocked.locked_at, unlocked.locked_reason), (None, None));

    assert!(store
        .set_user_suspended("CAROL@example.com", true)
        .await
        .unwrap());
    assert!(store.user_by_id(user.id).await.unwrap().unwrap().suspended);
    assert!(store
        .set_user_suspended("carol@example.com", false)
        .await
        .unwrap());
    assert!(!store.user_by_id(user.id).await.unwrap().unwrap().suspended);

    assert!(!store
        .set_user_lock("nobody@example.com", Some("x"))
        .await
        .unwrap());
    assert!(!store
        .set_user_suspended("nobody@example.com", true)
        .await
        .unwrap());
}

async fn deleting_a_user_kills_their_tokens(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let owner = store
        .insert_user(&new_user("dave@example.com", &[Role::Deployer]))
        .await
        .unwrap();
    let owned = new_token("dave-ci", Some(owner.id));
    let unowned = new_token("operator-ci", None);
    store.insert_token(&owned).await.unwrap();
    store.insert_token(&unowned).await.unwrap();
    assert!(store.delete_user("dave@example.com").await.unwrap());
    assert_eq!(store.token_by_hash(&owned.hash).await.unwrap(), None);
    assert!(store.token_by_hash(&unowned.hash).await.unwrap().is_some());
    let names: Vec<String> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["operator-ci"]);
}

async fn tokens_round_trip(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let owner = store
        .insert_user(&new_user("erin@example.com", &[Role::Admin]))
        .await
        .unwrap();
    let mut new = new_token("  deploy-bot ", Some(owner.id));
    new.permissions = vec![
        "convox:*:*".into(),
        "gateway:deploy_approval_request:create".into(),
    ];
    let stored = store.insert_token(&new).await.unwrap();
    assert_eq!(stored.name, "deploy-bot");
    assert_eq!(stored.owner_id, Some(owner.id));
    assert_eq!(stored.owner_email.as_deref(), Some("erin@example.com"));
    assert_eq!(stored.permissions, new.permissions);
    assert_eq!(stored.role.as_deref(), Some("viewer"));
    assert_eq!(stored.created_by.as_deref(), Some("operator"));
    assert_eq!(
        (stored.expires_at, stored.last_used_at, stored.revoked_at),
        (None, None, None)
    );
    assert_eq!(
        store.token_by_hash(&new.hash).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store.token_by_hash(&TokenHash::of("other")).await.unwrap(),
        None
    );

    let empty = NewApiToken {
        permissions: vec![],
        role: None,
        created_by: None,
        ..new_token("a-first", None)
    };
    let first = store.insert_token(&empty).await.unwrap();
    assert!(first.permissions.is_empty());
    assert_eq!(
        (first.owner_id, first.owner_email, first.role),
        (None, None, None)
    );
    let names: Vec<String> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a-first", "deploy-bot"]);
}

async fn revoke_by_name_and_by_public_id(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let by_name = new_token("by-name", None);
    let by_id = new_token("by-id", None);
    store.insert_token(&by_name).await.unwrap();
    let stored = store.insert_token(&by_id).await.unwrap();

    assert!(store.revoke_token(" by-name ").await.unwrap());
    assert_eq!(store.token_by_hash(&by_name.hash).await.unwrap(), None);
    assert!(
        !store.revoke_token("by-name").await.unwrap(),
        "already revoked"
    );

    let public_id = stored.public_id.to_string().to_uppercase();
    assert!(store.revoke_token(&public_id).await.unwrap());
    assert_eq!(store.token_by_hash(&by_id.hash).await.unwrap(), None);
    assert!(!store
        .revoke_token(&stored.public_id.to_string())
        .await
        .unwrap());

    assert!(!store.revoke_token("no-such-token").await.unwrap());
    assert!(!store.revoke_token("").await.unwrap());
    assert!(!store.revoke_token("bad\0name").await.unwrap());
    assert!(store.list_tokens().await.unwrap().is_empty());
}

async fn names_are_reusable_after_revoke(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let old = new_token("ci", None);
    let old_stored = store.insert_token(&old).await.unwrap();
    assert!(store.revoke_token("ci").await.unwrap());
    let new = new_token("ci", None);
    let new_stored = store.insert_token(&new).await.unwrap();
    assert_ne!(old_stored.public_id, new_stored.public_id);
    assert_eq!(store.token_by_hash(&old.hash).await.unwrap(), None);
    assert_eq!(
        store.token_by_hash(&new.hash).await.unwrap(),
        Some(new_stored)
    );
    assert!(store.revoke_token("ci").await.unwrap());
    store.insert_token(&new_token("ci", None)).await.unwrap();
}

async fn duplicates_conflict(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    store
        .insert_user(&new_user("fay@example.com", &[]))
        .await
        .unwrap();
    let again = store.insert_user(&new_user(" FAY@example.com", &[])).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let first = new_token("shared-name", None);
    store.insert_token(&first).await.unwrap();
    let same_name = store.insert_token(&new_token("shared-name", None)).await;
    assert!(
        matches!(same_name, Err(StoreError::Conflict(_))),
        "{same_name:?}"
    );
    let same_hash = store
        .insert_token(&NewApiToken {
            name: "other-name".into(),
            ..first.clone()
        })
        .await;
    assert!(
        matches!(same_hash, Err(StoreError::Conflict(_))),
        "{same_hash:?}"
    );
    // The failed inserts changed nothing.
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);
}

async fn bad_input_is_invalid(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let invalid = |result: Result<_, StoreError>, what: &str| {
        assert!(
            matches!(result, Err(StoreError::Invalid { .. })),
            "{what}: {result:?}"
        );
    };
    let long_email = format!("{}@example.com", "a".repeat(250));
    invalid(
        store
            .insert_user(&new_user(&long_email, &[]))
            .await
            .map(drop),
        "long email",
    );
    invalid(
        store.insert_user(&new_user("", &[])).await.map(drop),
        "empty email",
    );
    invalid(
        store
            .insert_user(&new_user("not-an-email", &[]))
            .await
            .map(drop),
        "no @",
    );
    invalid(
        store
            .insert_user(&new_user("nul\0@x.io", &[]))
            .await
            .map(drop),
        "NUL",
    );
    let mut long_name = new_user("gus@example.com", &[]);
    long_name.name = "n".repeat(151);
    invalid(store.insert_user(&long_name).await.map(drop), "long name");
    invalid(
        store.ensure_user(&long_name).await.map(drop),
        "long name (ensure)",
    );
    let mut exactly = new_user(&format!("{}@example.com", "a".repeat(242)), &[]);
    exactly.name = "n".repeat(150);
    store.insert_user(&exactly).await.unwrap();
    invalid(
        store
            .set_user_lock(&exactly.email, Some(&"r".repeat(5000)))
            .await
            .map(drop),
        "long reason",
    );

    let mut many = new_token("many", None);
    many.permissions = vec!["convox:app:list".into(); 65];
    invalid(store.insert_token(&many).await.map(drop), "65 permissions");
    many.permissions.truncate(64);
    store.insert_token(&many).await.unwrap();
    let mut malformed = new_token("malformed", None);
    malformed.permissions = vec!["convox:app".into()];
    invalid(
        store.insert_token(&malformed).await.map(drop),
        "bad permission",
    );
    invalid(
        store.insert_token(&new_token("   ", None)).await.map(drop),
        "blank name",
    );
    invalid(
        store
            .insert_token(&new_token(&"t".repeat(151), None))
            .await
            .map(drop),
        "long token name",
    );
    invalid(
        store
            .insert_token(&new_token("orphan", Some(987_654)))
            .await
            .map(drop),
        "unknown owner",
    );

    // Lookups with impossible keys find nothing rather than failing.
    assert_eq!(store.user_by_email(&long_email).await.unwrap(), None);
    assert_eq!(store.user_by_email("\0").await.unwrap(), None);
    assert!(!store.delete_user("").await.unwrap());
    assert!(!store.revoke_token(&"x".repeat(10_000)).await.unwrap());
    store.touch_token(-5, Utc::now()).await.unwrap();
}

async fn expiry_and_last_use_are_stored(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let expires = micros(Utc::now() + chrono::Duration::days(30));
    let mut token = new_token("expiring", None);
    token.expires_at = Some(expires);
    let stored = store.insert_token(&token).await.unwrap();
    assert_eq!(stored.expires_at, Some(expires));
    assert!(!stored.is_expired(Utc::now()));

    let used = micros(Utc::now());
    store.touch_token(stored.id, used).await.unwrap();
    let fetched = store.token_by_hash(&token.hash).await.unwrap().unwrap();
    assert_eq!(fetched.last_used_at, Some(used));
    assert_eq!(fetched.expires_at, Some(expires));
    // An older use does not move it back.
    store
        .touch_token(stored.id, used - chrono::Duration::minutes(5))
        .await
        .unwrap();
    let fetched = store.token_by_hash(&token.hash).await.unwrap().unwrap();
    assert_eq!(fetched.last_used_at, Some(used));

    let mut past = new_token("expired", None);
    past.expires_at = Some(micros(Utc::now() - chrono::Duration::seconds(1)));
    let stored = store.insert_token(&past).await.unwrap();
    assert!(
        stored.is_expired(Utc::now()),
        "expired tokens are still returned"
    );
}

async fn changes_from_another_instance_arrive_within_a_second(
    store: Arc<dyn Store>,
    opener: Opener,
) {
    migrated(&store).await;
    let mut feed = store.watch_identity().await.unwrap();
    let other = opener.open().await;
    let mut slowest = Duration::ZERO;
    let mut token = new_token("watched", None);

    macro_rules! expect_change {
        ($what:literal, $action:expr) => {{
            quiet(&mut feed).await;
            let since = Instant::now();
            $action;
            slowest = slowest.max(next_change(&mut feed, since, $what).await);
        }};
    }

    expect_change!("insert user", {
        let user = other
            .insert_user(&new_user("hal@example.com", &[Role::Viewer]))
            .await
            .unwrap();
        token.owner_id = Some(user.id);
    });
    expect_change!("set roles", {
        assert!(other
            .set_user_roles("hal@example.com", &[Role::Ops])
            .await
            .unwrap());
    });
    expect_change!("ensure user", {
        other
            .ensure_user(&new_user("hal@example.com", &[Role::Admin]))
            .await
            .unwrap();
    });
    expect_change!("lock", {
        assert!(other
            .set_user_lock("hal@example.com", Some("x"))
            .await
            .unwrap());
    });
    expect_change!("unlock", {
        assert!(other.set_user_lock("hal@example.com", None).await.unwrap());
    });
    expect_change!("suspend", {
        assert!(other
            .set_user_suspended("hal@example.com", true)
            .await
            .unwrap());
    });
    expect_change!("insert token", {
        other.insert_token(&token).await.unwrap();
    });
    expect_change!("revoke token", {
        assert!(other.revoke_token("watched").await.unwrap());
    });
    expect_change!("insert second token", {
        other
            .insert_token(&new_token("watched-2", token.owner_id))
            .await
            .unwrap();
    });
    expect_change!("delete user", {
        assert!(other.delete_user("hal@example.com").await.unwrap());
    });
    eprintln!(
        "{}: slowest identity change seen by another instance after {slowest:?}",
        store.backend()
    );
}

async fn touching_a_token_is_not_a_change(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let other = opener.open().await;
    let stored = other.insert_token(&new_token("busy", None)).await.unwrap();
    let mut feed = store.watch_identity().await.unwrap();
    quiet(&mut feed).await;
    other.touch_token(stored.id, Utc::now()).await.unwrap();
    store.touch_token(stored.id, Utc::now()).await.unwrap();
    let event = timeout(Duration::from_millis(500), feed.recv()).await;
    assert!(event.is_err(), "touch_token produced {event:?}");
    // And the feed still works afterwards.
    let since = Instant::now();
    other.revoke_token("busy").await.unwrap();
    next_change(&mut feed, since, "revoke after touch").await;
}

async fn feed_closes_with_the_store(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let mut feed = store.watch_identity().await.unwrap();
    drop(store);
    let end = timeout(Duration::from_secs(2), async {
        while feed.recv().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the feed outlived its store");
}

async fn data_survives_close_and_reopen(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let user = store
        .insert_user(&new_user("ivy@example.com", &[Role::Deployer]))
        .await
        .unwrap();
    let token = new_token("durable", Some(user.id));
    let stored = store.insert_token(&token).await.unwrap();
    store.insert_token(&new_token("gone", None)).await.unwrap();
    assert!(store.revoke_token("gone").await.unwrap());
    drop(store);

    let reopened = opener.open().await;
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.user_by_id(user.id).await.unwrap(), Some(user));
    assert_eq!(
        reopened.token_by_hash(&token.hash).await.unwrap(),
        Some(stored)
    );
    let names: Vec<String> = reopened
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["durable"]);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only: the feed survives losing its connection.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_feed_reports_disconnect_and_resumes() {
    let db = TestDb::create().await;
    let store = Opener::Postgres(db.url.clone()).open().await;
    migrated(&store).await;
    let mut feed = store.watch_identity().await.unwrap();
    let killed = admin(&db.url)
        .await
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query = 'LISTEN rgw_identity'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "exactly one listening connection");
    expect_event(&mut feed, IdentityEvent::Disconnected, 2).await;
    expect_event(&mut feed, IdentityEvent::Resumed, 3).await;
    let since = Instant::now();
    store
        .insert_user(&new_user("kim@example.com", &[]))
        .await
        .unwrap();
    next_change(&mut feed, since, "change after resume").await;
    drop(store);
    drop(db);
}

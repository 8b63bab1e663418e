//! Settings storage conformance: every behaviour below runs against the embedded store (in a
//! temporary directory) and against PostgreSQL (in a fresh database per test, on the server
//! named by `DATABASE_URL`; run through `scripts/with-postgres` to get a throwaway one).
#![cfg(all(feature = "postgres", feature = "sqlite"))]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rack_gateway_core::settings::{EnvOverrides, Settings, Source};
use rack_gateway_core::store::{IdentityEvent, IdentityWatch, Store, StoreError};
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};

#[macro_use]
mod common;

use common::Opener;

conformance!(
    settings_round_trip,
    global_and_app_rows_are_distinct,
    json_values_are_kept_exactly,
    bad_input_is_invalid_and_writes_nothing,
    concurrent_upserts_keep_one_row,
    changes_reach_another_instance_within_a_second,
    settings_survive_close_and_reopen,
    stored_rows_resolve_before_env_and_defaults,
);

// ---------------------------------------------------------------------------------------------
// Helpers

async fn migrated(store: &Arc<dyn Store>) {
    store.migrate().await.unwrap();
}

/// One `put_settings` call: app, values, updated_by.
type Write<'a> = (Option<&'a str>, Vec<(String, Value)>, Option<&'a str>);

fn pairs(values: &[(&str, Value)]) -> Vec<(String, Value)> {
    values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
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

// ---------------------------------------------------------------------------------------------
// Behaviours

async fn settings_round_trip(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    assert!(store.list_settings().await.unwrap().is_empty());

    let before = Utc::now() - chrono::Duration::seconds(5);
    let stored = store
        .put_settings(
            None,
            &pairs(&[
                ("mfa_require_all_users", json!(false)),
                ("mfa_step_up_window_minutes", json!(20)),
            ]),
            Some("admin@example.com"),
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].key, "mfa_require_all_users");
    assert_eq!(stored[0].value, json!(false));
    assert_eq!(stored[0].app, None);
    assert_eq!(stored[0].updated_by.as_deref(), Some("admin@example.com"));
    assert!(stored[0].updated_at > before);

    let app_row = store
        .put_setting(
            Some("web"),
            "protected_env_vars",
            &json!(["DATABASE_URL"]),
            Some("ci-token"),
        )
        .await
        .unwrap();
    assert_eq!(app_row.app.as_deref(), Some("web"));
    assert_eq!(app_row.updated_by.as_deref(), Some("ci-token"));

    // Writing again replaces the value and who wrote it; it is still one row.
    let replaced = store
        .put_setting(None, "mfa_step_up_window_minutes", &json!(30), None)
        .await
        .unwrap();
    assert_eq!(replaced.value, json!(30));
    assert_eq!(replaced.updated_by, None);
    assert!(replaced.updated_at >= stored[1].updated_at);

    let listed = store.list_settings().await.unwrap();
    let keys: Vec<(Option<&str>, &str)> = listed
        .iter()
        .map(|s| (s.app.as_deref(), s.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (None, "mfa_require_all_users"),
            (None, "mfa_step_up_window_minutes"),
            (Some("web"), "protected_env_vars"),
        ]
    );
    assert_eq!(listed[1], replaced);
    assert_eq!(listed[2], app_row);

    assert_eq!(
        store
            .delete_settings(
                None,
                &["mfa_require_all_users".into(), "never_stored".into()]
            )
            .await
            .unwrap(),
        1
    );
    assert!(!store
        .delete_setting(None, "mfa_require_all_users")
        .await
        .unwrap());
    assert!(store
        .delete_setting(Some("web"), "protected_env_vars")
        .await
        .unwrap());
    assert_eq!(store.delete_settings(None, &[]).await.unwrap(), 0);
    let left: Vec<String> = store
        .list_settings()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(left, ["mfa_step_up_window_minutes"]);
}

async fn global_and_app_rows_are_distinct(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    store
        .put_setting(None, "shared_key", &json!("global"), None)
        .await
        .unwrap();
    store
        .put_setting(Some("web"), "shared_key", &json!("web"), None)
        .await
        .unwrap();
    store
        .put_setting(Some("api"), "shared_key", &json!("api"), None)
        .await
        .unwrap();
    let listed = store.list_settings().await.unwrap();
    let values: Vec<(Option<&str>, &Value)> = listed
        .iter()
        .map(|s| (s.app.as_deref(), &s.value))
        .collect();
    assert_eq!(
        values,
        [
            (None, &json!("global")),
            (Some("api"), &json!("api")),
            (Some("web"), &json!("web")),
        ]
    );
    // Deleting the app row leaves the global one, and the other way round.
    assert!(store
        .delete_setting(Some("web"), "shared_key")
        .await
        .unwrap());
    assert!(store.delete_setting(None, "shared_key").await.unwrap());
    let listed = store.list_settings().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].app.as_deref(), Some("api"));
}

async fn json_values_are_kept_exactly(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let values = [
        json!(null),
        json!(true),
        json!(9_007_199_254_740_993_i64),
        json!("ünïcødé ✓ 'quotes' \"double\" \\back"),
        json!(["b", "a", "b"]),
        json!({"web": "^registry/app:{{GIT_COMMIT}}$", "*": ".*", "nested": {"z": [1, {"y": null}]}}),
    ];
    for (i, value) in values.iter().enumerate() {
        let key = format!("value_{i}");
        let stored = store.put_setting(None, &key, value, None).await.unwrap();
        assert_eq!(&stored.value, value, "{key}");
    }
    let listed = store.list_settings().await.unwrap();
    for (row, value) in listed.iter().zip(values.iter()) {
        assert_eq!(&row.value, value, "{}", row.key);
    }
}

async fn bad_input_is_invalid_and_writes_nothing(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let cases: Vec<Write<'_>> = vec![
        (
            None,
            pairs(&[("ok_key", json!(1)), ("Bad Key", json!(1))]),
            None,
        ),
        (None, pairs(&[("", json!(1))]), None),
        (Some(""), pairs(&[("ok_key", json!(1))]), None),
        (Some("we b"), pairs(&[("ok_key", json!(1))]), None),
        (None, pairs(&[("ok_key", json!("nul\u{0}here"))]), None),
        (None, pairs(&[("ok_key", json!("x".repeat(70_000)))]), None),
        (None, pairs(&[("ok_key", json!(1))]), Some("line\nbreak")),
    ];
    for (app, values, updated_by) in cases {
        let result = store.put_settings(app, &values, updated_by).await;
        assert!(
            matches!(result, Err(StoreError::Invalid { .. })),
            "{app:?} {values:?} {updated_by:?}: {result:?}"
        );
    }
    let too_many: Vec<(String, Value)> = (0..101).map(|i| (format!("k{i}"), json!(i))).collect();
    assert!(matches!(
        store.put_settings(None, &too_many, None).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.delete_settings(Some(""), &["ok_key".into()]).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(store.list_settings().await.unwrap().is_empty());
}

async fn concurrent_upserts_keep_one_row(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let other = opener.open().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            Arc::clone(&store)
        } else {
            Arc::clone(&other)
        };
        tasks.push(tokio::spawn(async move {
            store
                .put_setting(
                    Some("web"),
                    "secret_env_vars",
                    &json!([format!("K{i}")]),
                    None,
                )
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let listed = store.list_settings().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
}

async fn changes_reach_another_instance_within_a_second(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let mut feed = store.watch_identity().await.unwrap();
    let other = opener.open().await;
    let mut slowest = Duration::ZERO;

    macro_rules! expect_change {
        ($what:literal, $action:expr) => {{
            quiet(&mut feed).await;
            let since = Instant::now();
            $action;
            slowest = slowest.max(next_change(&mut feed, since, $what).await);
        }};
    }

    expect_change!("insert global", {
        other
            .put_setting(None, "allow_destructive_actions", &json!(true), None)
            .await
            .unwrap();
    });
    expect_change!("update global", {
        other
            .put_setting(None, "allow_destructive_actions", &json!(false), None)
            .await
            .unwrap();
    });
    expect_change!("insert app", {
        other
            .put_setting(Some("web"), "protected_env_vars", &json!(["PORT"]), None)
            .await
            .unwrap();
    });
    expect_change!("delete app", {
        assert!(other
            .delete_setting(Some("web"), "protected_env_vars")
            .await
            .unwrap());
    });
    expect_change!("delete global", {
        assert!(other
            .delete_setting(None, "allow_destructive_actions")
            .await
            .unwrap());
    });
    // A delete that matched nothing changed nothing.
    quiet(&mut feed).await;
    assert!(!other
        .delete_setting(None, "allow_destructive_actions")
        .await
        .unwrap());
    let event = timeout(Duration::from_millis(500), feed.recv()).await;
    assert!(event.is_err(), "a no-op delete produced {event:?}");
    eprintln!(
        "{}: slowest settings change seen by another instance after {slowest:?}",
        store.backend()
    );
}

async fn settings_survive_close_and_reopen(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let stored = store
        .put_setting(
            Some("web"),
            "service_image_patterns",
            &json!({"web": ".*"}),
            Some("a@b.c"),
        )
        .await
        .unwrap();
    drop(store);
    let reopened = opener.open().await;
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.list_settings().await.unwrap(), [stored]);
}

async fn stored_rows_resolve_before_env_and_defaults(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let env = Arc::new(
        EnvOverrides::from_vars([
            ("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true"),
            ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "60"),
        ])
        .unwrap(),
    );
    store
        .put_setting(None, "allow_destructive_actions", &json!(false), None)
        .await
        .unwrap();
    store
        .put_setting(Some("web"), "protected_env_vars", &json!(["PORT"]), None)
        .await
        .unwrap();
    let settings = Settings::from_stored(env, &store.list_settings().await.unwrap());
    let flag = settings
        .resolve_global("allow_destructive_actions")
        .unwrap();
    assert_eq!((flag.value, flag.source), (json!(false), Source::Db));
    assert_eq!(settings.session_timeout_minutes(), 60);
    assert_eq!(
        settings
            .resolve_global("session_timeout_minutes")
            .unwrap()
            .source,
        Source::Env
    );
    assert_eq!(settings.protected_env_vars("web"), ["PORT"]);
    assert_eq!(settings.mfa_trusted_device_ttl_days(), 30);
}

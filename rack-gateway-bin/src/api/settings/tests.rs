//! API tests of the settings endpoints over a real embedded store.
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt as _;
use rack_gateway_core::audit::{AuditEvent, ChainKey, Keyring};
use rack_gateway_core::identity::{
    ApiTokenSecret, IdentityResolver, NewApiToken, NewUser, ResolverConfig,
};
use rack_gateway_core::rbac::Role;
use rack_gateway_core::redact::SecretRules;
use rack_gateway_core::settings::EnvOverrides;
use rack_gateway_core::store::{AuditFilter, AuditStore, EmbeddedStore, Store};
use rack_gateway_layers::audit::{AuditWriter, WriterConfig};
use rack_gateway_layers::forward::{OriginPolicy, RackForward, RackTarget, RackTls};
use rack_gateway_layers::redact::EnvPolicy as _;
use tower::ServiceExt as _;

use super::*;
use crate::settings::SettingsCache;

struct Fixture {
    router: super::super::ApiService<Body>,
    store: Arc<dyn Store>,
    settings: Arc<SettingsCache>,
    admin: String,
    viewer: String,
    _dir: tempfile::TempDir,
}

async fn token(store: &Arc<dyn Store>, email: &str, name: &str, role: Role) -> String {
    let user = store
        .ensure_user(&NewUser {
            email: email.into(),
            name: name.into(),
            roles: vec![role],
        })
        .await
        .unwrap();
    let secret = ApiTokenSecret::generate();
    store
        .insert_token(&NewApiToken {
            name: name.into(),
            hash: secret.hash(),
            owner_id: Some(user.id),
            permissions: role.permissions().iter().map(|p| (*p).to_owned()).collect(),
            role: Some(role.name().into()),
            created_by: Some("test".into()),
            expires_at: None,
        })
        .await
        .unwrap();
    secret.expose().to_owned()
}

async fn fixture(env: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.unwrap());
    store.migrate().await.unwrap();
    let admin = token(&store, "admin@example.com", "admin-token", Role::Admin).await;
    let viewer = token(&store, "viewer@example.com", "viewer-token", Role::Viewer).await;
    let resolver = IdentityResolver::start(Arc::clone(&store), ResolverConfig::default())
        .await
        .unwrap();
    let key = ChainKey::new(b"a-test-audit-key-of-32-bytes-or-more!");
    let audit_store: Arc<dyn AuditStore> = store.clone();
    let (writer, _task) = AuditWriter::spawn(audit_store, key.clone(), WriterConfig::default());
    let env = Arc::new(EnvOverrides::from_vars(env.iter().copied()).unwrap());
    let settings = SettingsCache::start(Arc::clone(&store), env).await.unwrap();
    let rack = RackForward::new(
        RackTarget {
            base: "http://127.0.0.1:9".parse().unwrap(),
            username: "convox".into(),
            token: "rack".into(),
            tls: RackTls::Insecure,
            connect_timeout: Duration::from_secs(1),
            header_timeout: Duration::from_secs(1),
        },
        OriginPolicy::default(),
    )
    .unwrap();
    let state = ApiState {
        store: Arc::clone(&store),
        resolver,
        writer,
        keyring: Keyring::new(key, Vec::new()),
        anchors: None,
        rack,
        secrets: SecretRules::new(Vec::<String>::new()),
        env_policy: settings.clone(),
        settings: Arc::clone(&settings),
        audit: rack_gateway_layers::audit::AuditConfig::new(""),
        budget: rack_gateway_layers::redact::BufferBudget::default(),
        csrf: rack_gateway_layers::authn::CsrfGuard::new(b"test csrf key", ["https://gw.test"]),
        cookies: crate::signin::cookies::CookiePolicy { secure: true },
    };
    Fixture {
        router: super::super::service(state, super::super::api_table().unwrap()),
        store,
        settings,
        admin,
        viewer,
        _dir: dir,
    }
}

impl Fixture {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// Waits for the audit record of `action` on `resource` (records are queued).
    /// Waits until a record of `action` on `resource` with `decision` is stored; returns all
    /// records of that action and resource (they are queued, so they land asynchronously).
    async fn audited(
        &self,
        action: &str,
        resource: &str,
        decision: AuditDecision,
    ) -> Vec<AuditEvent> {
        let filter = AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        };
        for _ in 0..100 {
            let found: Vec<AuditEvent> = self
                .store
                .audit_query(&filter, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.event)
                .filter(|e| e.resource.as_deref() == Some(resource))
                .collect();
            if found.iter().any(|e| e.decision == decision) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {decision} {action} record for {resource}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_change_allow_destructive_actions() {
    let f = fixture(&[]).await;
    let mut policy = f.settings.policy();
    let path = "/api/v1/settings/allow-destructive-actions";
    let body = r#"{"allow_destructive_actions": true}"#;

    let (status, _) = f.call("GET", "/api/v1/settings", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, all) = f.call("GET", "/api/v1/settings", Some(&f.viewer), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        all["allow_destructive_actions"],
        json!({"value": false, "source": "default",
               "env_var": "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS"})
    );
    assert_eq!(all.as_object().unwrap().len(), catalogue::GLOBAL.len());

    let (status, error) = f.call("PUT", path, Some(&f.viewer), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("gateway:setting_group:allow_destructive_actions"));
    let (status, _) = f.call("DELETE", path, Some(&f.viewer), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!f.settings.current().allow_destructive_actions());
    let denied = f
        .audited(
            "setting.update",
            "allow_destructive_actions",
            AuditDecision::Deny,
        )
        .await;
    assert_eq!(denied[0].decision, AuditDecision::Deny);
    assert_eq!(denied[0].http_status, 403);

    let (status, group) = f.call("PUT", path, Some(&f.admin), body).await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["allow_destructive_actions"]["value"], json!(true));
    assert_eq!(group["allow_destructive_actions"]["source"], json!("db"));
    // This instance applies it at once: the policy channel of the proxy moved.
    assert!(f.settings.current().allow_destructive_actions());
    assert!(policy.has_changed().unwrap());
    assert!(policy.borrow_and_update().allow_destructive_actions);
    let stored = f.store.list_settings().await.unwrap();
    assert_eq!(stored[0].updated_by.as_deref(), Some("admin-token"));

    let records = f
        .audited(
            "setting.update",
            "allow_destructive_actions",
            AuditDecision::Allow,
        )
        .await;
    let allowed = records
        .iter()
        .find(|e| e.decision == AuditDecision::Allow)
        .expect("an allowed update record");
    let details: Value = serde_json::from_str(&allowed.details).unwrap();
    assert_eq!(details["old"]["value"], json!(false));
    assert_eq!(details["old"]["source"], json!("default"));
    assert_eq!(details["new"]["value"], json!(true));
    assert_eq!(allowed.actor_email, "admin@example.com");

    let (status, reverted) = f.call("DELETE", path, Some(&f.admin), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reverted["allow_destructive_actions"]["source"],
        json!("default")
    );
    assert!(!policy.borrow().allow_destructive_actions);
    f.audited(
        "setting.delete",
        "allow_destructive_actions",
        AuditDecision::Allow,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_400_and_unknown_endpoints_404() {
    let f = fixture(&[("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "42")]).await;
    let admin = Some(f.admin.as_str());
    for (path, body, needle) in [
        (
            "/api/v1/settings/allow-destructive-actions",
            r#"{"allow_destructive_actions": "yes"}"#,
            "expected bool",
        ),
        (
            "/api/v1/settings/allow-destructive-actions",
            r#"{"session_timeout_minutes": 10}"#,
            "not managed by this endpoint",
        ),
        (
            "/api/v1/settings/session-configuration",
            r#"{"session_timeout_minutes": 0}"#,
            "outside",
        ),
        (
            "/api/v1/settings/session-configuration",
            r#"{"nope": 1}"#,
            "unknown setting",
        ),
        (
            "/api/v1/settings/session-configuration",
            "{}",
            "no settings",
        ),
        (
            "/api/v1/settings/session-configuration",
            "[1]",
            "JSON object",
        ),
        (
            "/api/v1/settings/session-configuration",
            "{",
            "not valid JSON",
        ),
        (
            "/api/v1/settings/session-configuration",
            "",
            "body is required",
        ),
        (
            "/api/v1/apps/web/settings/protected-env-vars",
            r#""DB_URL""#,
            "list of strings",
        ),
        (
            "/api/v1/apps/web/settings/service-image-patterns",
            r#"{"web": 1}"#,
            "string",
        ),
        (
            "/api/v1/apps/web/settings/vcs-ci-deploy",
            r#"{"protected_env_vars": []}"#,
            "not managed by this endpoint",
        ),
        (
            "/api/v1/apps/web/settings/vcs-ci-deploy",
            r#"{"vcs_repo": "nope"}"#,
            "owner/repo",
        ),
        (
            "/api/v1/apps/Web_App/settings/secret-env-vars",
            "[]",
            "invalid app name",
        ),
    ] {
        let (status, error) = f.call("PUT", path, admin, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {error}");
        let message = error["error"].as_str().unwrap();
        assert!(message.contains(needle), "{path} {body}: {message}");
    }
    let (status, _) = f
        .call(
            "DELETE",
            "/api/v1/settings/session-configuration?key=mfa_require_all_users",
            admin,
            "",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for path in [
        "/api/v1/settings/rack-tls-cert",
        "/api/v1/apps/web/settings/vcs-repo",
    ] {
        let (status, _) = f.call("PUT", path, admin, "{}").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(f.store.list_settings().await.unwrap().is_empty());

    // The environment override shows with its source; a DB row beats it; deleting the row
    // returns to it.
    let (_, all) = f.call("GET", "/api/v1/settings", admin, "").await;
    assert_eq!(all["session_timeout_minutes"]["value"], json!(42));
    assert_eq!(all["session_timeout_minutes"]["source"], json!("env"));
    let path = "/api/v1/settings/session-configuration";
    let (status, group) = f
        .call("PUT", path, admin, r#"{"session_timeout_minutes": 7}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(group["session_timeout_minutes"]["source"], json!("db"));
    let (status, reverted) = f
        .call(
            "DELETE",
            &format!("{path}?key=session_timeout_minutes"),
            admin,
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reverted["session_timeout_minutes"]["value"], json!(42));
    assert_eq!(reverted["session_timeout_minutes"]["source"], json!("env"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_protected_env_vars_round_trip() {
    let f = fixture(&[]).await;
    let admin = Some(f.admin.as_str());
    let path = "/api/v1/apps/my-app/settings/protected-env-vars";

    let (status, _) = f.call("PUT", path, Some(&f.viewer), r#"["PORT"]"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, one) = f
        .call(
            "PUT",
            path,
            admin,
            r#"["database_url", "DATABASE_URL", " port "]"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        one,
        json!({"protected_env_vars": {"value": ["DATABASE_URL", "PORT"], "source": "db",
               "env_var": "RGW_APP_MY_APP_SETTING_PROTECTED_ENV_VARS"}})
    );
    // The proxy's env policy sees it at once.
    assert_eq!(
        f.settings.protected_keys("my-app"),
        ["DATABASE_URL", "PORT"]
    );
    assert!(f.settings.protected_keys("other-app").is_empty());

    let (status, all) = f
        .call("GET", "/api/v1/apps/my-app/settings", Some(&f.viewer), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        all["protected_env_vars"]["value"],
        json!(["DATABASE_URL", "PORT"])
    );
    assert_eq!(all["vcs_provider"]["source"], json!("global_default"));
    assert_eq!(all["vcs_provider"]["value"], json!("github"));
    assert_eq!(all.as_object().unwrap().len(), catalogue::APP.len());

    let records = f
        .audited(
            "setting.update",
            "my-app/protected_env_vars",
            AuditDecision::Allow,
        )
        .await;
    let allowed = records
        .iter()
        .find(|e| e.decision == AuditDecision::Allow)
        .expect("an allowed update record");
    let details: Value = serde_json::from_str(&allowed.details).unwrap();
    assert_eq!(details["old"]["value"], json!([]));
    assert_eq!(details["new"]["value"], json!(["DATABASE_URL", "PORT"]));

    let (status, secrets) = f
        .call(
            "PUT",
            "/api/v1/apps/my-app/settings/secret-env-vars",
            admin,
            r#"["license"]"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{secrets}");
    assert_eq!(f.settings.secret_keys("my-app"), ["LICENSE"]);

    let (status, group) = f
        .call(
            "PUT",
            "/api/v1/apps/my-app/settings/vcs-ci-deploy",
            admin,
            r#"{"vcs_repo": "acme/my-app", "verify_git_commit_mode": "branch"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["vcs_repo"]["value"], json!("acme/my-app"));
    assert_eq!(group["default_branch"]["source"], json!("default"));
    assert_eq!(
        group.as_object().unwrap().len(),
        catalogue::group(Scope::App, "vcs_ci_deploy")
            .unwrap()
            .keys
            .len()
    );

    let (status, deleted) = f.call("DELETE", path, admin, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["protected_env_vars"]["value"], json!([]));
    assert_eq!(deleted["protected_env_vars"]["source"], json!("default"));
    assert!(f.settings.protected_keys("my-app").is_empty());
    f.audited(
        "setting.delete",
        "my-app/protected_env_vars",
        AuditDecision::Allow,
    )
    .await;
}

#[test]
fn keys_come_from_repeated_query_parameters() {
    assert_eq!(query_keys(Some("key=a&key=b&other=c&key=")), ["a", "b"]);
    assert!(query_keys(None).is_empty());
}

#[test]
fn resources_name_the_app_and_key() {
    assert_eq!(
        resource(Some("web"), "protected_env_vars"),
        "web/protected_env_vars"
    );
    assert_eq!(
        resource(None, "allow_destructive_actions"),
        "allow_destructive_actions"
    );
}

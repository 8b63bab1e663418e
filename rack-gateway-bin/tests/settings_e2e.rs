//! Settings end to end: `allow_destructive_actions` (default false) refuses `DELETE /apps/{name}`
//! for everyone; an admin turns it on through the settings API and every gateway process sharing
//! the PostgreSQL database applies it within a second, without a restart. Environment overrides
//! apply until a stored value replaces them, and a bad one stops `serve` with one line.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::deploy::{create_token, fresh_database, gateway_env, start_gateway, start_mock_rack};
use common::http::{basic, get, send, Reply};
use common::process::run_command;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

async fn call(method: Method, url: &str, token: &str, body: &str) -> Reply {
    let auth = basic(token);
    send(
        method,
        url,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body.to_owned(),
    )
    .await
}

async fn delete_app(base: &str, token: &str, app: &str) -> Reply {
    call(
        Method::DELETE,
        &format!("{base}/api/v1/rack-proxy/apps/{app}"),
        token,
        "",
    )
    .await
}

fn assert_disabled_by_policy(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        reply.body
    );
    assert!(
        reply.body.to_lowercase().contains("disabled by policy"),
        "{what}: {}",
        reply.body
    );
}

/// Repeats `DELETE /apps/{app}` until it is no longer refused by policy; the time it took.
async fn delete_once_allowed(base: &str, token: &str, app: &str, since: Instant) -> Duration {
    loop {
        let reply = delete_app(base, token, app).await;
        if reply.status == StatusCode::OK {
            return since.elapsed();
        }
        assert_disabled_by_policy(&reply, base);
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{base} still refused DELETE /apps/{app} {:?} after the change",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Repeats `DELETE /apps/{app}` until it is refused by policy again (one that gets through
/// meanwhile removes the app, and later ones answer 404 until the policy refuses them); the
/// time it took.
async fn refused_again(base: &str, token: &str, app: &str, since: Instant) -> Duration {
    loop {
        let reply = delete_app(base, token, app).await;
        if reply.status == StatusCode::FORBIDDEN {
            assert_disabled_by_policy(&reply, base);
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{base} still allowed DELETE /apps/{app} {:?} after the change: {} {}",
            since.elapsed(),
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn json_body(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

#[tokio::test]
async fn destructive_actions_follow_the_setting_on_every_gateway() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_first, first) = start_gateway(&env).await;
    let (_second, second) = start_gateway(&env).await;
    let admin = create_token(&env, "admin-e2e", "admin").await;
    let viewer = create_token(&env, "viewer-e2e", "viewer").await;

    // Off by default, for admins too, on both instances.
    for base in [&first, &second] {
        assert_disabled_by_policy(&delete_app(base, &admin, "web").await, base);
        let reply = get(&format!("{base}/api/v1/settings"), Some(&viewer)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            json_body(&reply)["allow_destructive_actions"],
            json!({"value": false, "source": "default",
                   "env_var": "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS"})
        );
    }

    let setting = format!("{first}/api/v1/settings/allow-destructive-actions");
    let enable = r#"{"allow_destructive_actions": true}"#;
    let reply = call(Method::PUT, &setting, &viewer, enable).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let reply = call(
        Method::PUT,
        &setting,
        &admin,
        r#"{"allow_destructive_actions": "yes"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_disabled_by_policy(&delete_app(&second, &admin, "web").await, "after refusals");

    let reply = call(Method::PUT, &setting, &admin, enable).await;
    let changed_at = Instant::now();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        json_body(&reply)["allow_destructive_actions"]["source"],
        json!("db")
    );
    let on_first = delete_once_allowed(&first, &admin, "web", changed_at).await;
    let on_second = delete_once_allowed(&second, &admin, "api", changed_at).await;
    eprintln!("enabled: first gateway after {on_first:?}, second after {on_second:?}");

    // Still not for a viewer: policy allows, RBAC does not.
    let reply = delete_app(&second, &viewer, "worker").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(!reply.body.to_lowercase().contains("disabled by policy"));

    // Removing the stored value (from the other instance) turns it off again everywhere.
    let reply = call(
        Method::DELETE,
        &format!(
            "{second}/api/v1/settings/allow-destructive-actions?key=allow_destructive_actions"
        ),
        &admin,
        "",
    )
    .await;
    let reverted_at = Instant::now();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        json_body(&reply)["allow_destructive_actions"]["source"],
        json!("default")
    );
    refused_again(&first, &admin, "worker", reverted_at).await;
    refused_again(&second, &admin, "worker", reverted_at).await;

    // The change is in the audit trail, with who made it and the old and new values.
    let reply = get(
        &format!("{second}/api/v1/audit-logs?action=setting.update"),
        Some(&admin),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let logs = json_body(&reply)["logs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let allowed = logs
        .iter()
        .find(|log| log["decision"] == json!("allow"))
        .unwrap_or_else(|| panic!("no allowed setting.update in {logs:?}"));
    assert_eq!(allowed["resource"], json!("allow_destructive_actions"));
    assert_eq!(allowed["token_name"], json!("admin-e2e"));
    let details: Value =
        serde_json::from_str(allowed["details"].as_str().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(details["old"]["value"], json!(false));
    assert_eq!(details["new"]["value"], json!(true));
}

#[tokio::test]
async fn an_env_override_applies_until_a_stored_value_replaces_it() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let mut env = gateway_env(&database_url, &rack_url);
    env.insert(
        "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS".into(),
        "true".into(),
    );
    env.insert(
        "RGW_APP_WEB_SETTING_PROTECTED_ENV_VARS".into(),
        "database_url, port".into(),
    );
    let (_gateway, base) = start_gateway(&env).await;
    let admin = create_token(&env, "admin-env", "admin").await;

    let reply = get(&format!("{base}/api/v1/settings"), Some(&admin)).await;
    assert_eq!(
        json_body(&reply)["allow_destructive_actions"]["source"],
        json!("env")
    );
    let reply = get(&format!("{base}/api/v1/apps/web/settings"), Some(&admin)).await;
    assert_eq!(
        json_body(&reply)["protected_env_vars"],
        json!({"value": ["DATABASE_URL", "PORT"], "source": "env",
               "env_var": "RGW_APP_WEB_SETTING_PROTECTED_ENV_VARS"})
    );
    let reply = delete_app(&base, &admin, "api").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    // A stored false beats the environment's true.
    let reply = call(
        Method::PUT,
        &format!("{base}/api/v1/settings/allow-destructive-actions"),
        &admin,
        r#"{"allow_destructive_actions": false}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_disabled_by_policy(&delete_app(&base, &admin, "worker").await, "stored false");
}

#[tokio::test]
async fn serve_refuses_an_unparseable_override_naming_it() {
    let database_url = fresh_database().await;
    let cases: HashMap<&str, &str> = HashMap::from([
        ("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "perhaps"),
        ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "0"),
        ("RGW_APP_MY_APP_SETTING_SERVICE_IMAGE_PATTERNS", "web=.*"),
        ("RGW_SETTING_NO_SUCH_SETTING", "1"),
    ]);
    for (variable, value) in cases {
        let mut env = gateway_env(&database_url, "http://127.0.0.1:9");
        env.insert(variable.into(), value.into());
        let (code, stdout, stderr) = run_command(&["serve"], &env).await;
        assert_eq!(code, 2, "{variable}: {stdout}{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{variable}: {stderr}");
        assert!(lines[0].contains(variable), "{variable}: {stderr}");
    }
}

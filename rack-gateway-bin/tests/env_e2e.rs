//! Env redaction and the JSON env API end to end: a mock rack process and `rack-gateway serve`
//! on a fresh PostgreSQL database, driven over HTTP with tokens of each role, against the mock
//! rack's seeded env (`DATABASE_URL` with a password, `SECRET_KEY`, `STRIPE_API_KEY`,
//! `NODE_ENV`, `PORT`).
//!
//! One test per acceptance sentence, plus a last one that walks every path that touches env and
//! then searches everything the processes printed and the audit export for the rack's secrets.
//! Protected keys come from the app setting, set here through its environment override.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use common::deploy::{
    create_token, fresh_database, gateway_env, start_gateway, start_mock_rack, RACK_TOKEN,
};
use common::http::{basic, send, Reply};
use common::process::{run_command, Running};
use http::{Method, StatusCode};
use rack_gateway_bin::mock_rack::MockRack;
use rack_gateway_core::redact::MASK;
use serde_json::{json, Value};

const APP: &str = "web";
const ENV_READ_DENIED: &str = "You don't have permission to view environment variables.";
const SECRET_READ_DENIED: &str = "You don't have permission to view secrets.";
const SECRET_SET_DENIED: &str = "You don't have permission to modify secrets.";

/// A mock rack process and a gateway in front of it, on a fresh database.
struct Deployment {
    rack: Running,
    rack_url: String,
    gateway: Running,
    base: String,
    env: HashMap<String, String>,
}

impl Deployment {
    async fn start(extra_env: &[(&str, &str)]) -> Deployment {
        let database_url = fresh_database().await;
        let (rack, rack_url) = start_mock_rack().await;
        let mut env = gateway_env(&database_url, &rack_url);
        for (key, value) in extra_env {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let (gateway, base) = start_gateway(&env).await;
        Deployment {
            rack,
            rack_url,
            gateway,
            base,
            env,
        }
    }

    fn proxy(&self, path: &str) -> String {
        format!("{}/api/v1/rack-proxy{path}", self.base)
    }

    fn env_api(&self, query: &str) -> String {
        format!("{}/api/v1/apps/{APP}/env{query}", self.base)
    }

    /// A token of `role`, as an Authorization header value.
    async fn role(&self, role: &str) -> String {
        basic(&create_token(&self.env, role, role).await)
    }

    /// A token with exactly `permissions`, as an Authorization header value.
    async fn permissions(&self, name: &str, permissions: &[&str]) -> String {
        let mut args = vec!["token", "create", "--name", name];
        for permission in permissions {
            args.extend(["--permission", permission]);
        }
        let (code, stdout, stderr) = run_command(&args, &self.env).await;
        assert_eq!(code, 0, "{stderr}");
        basic(stdout.trim())
    }

    /// Reads the mock rack directly (not through the gateway).
    async fn rack_get(&self, path: &str, request_id: &str) -> Value {
        let auth = basic(RACK_TOKEN);
        let reply = send(
            Method::GET,
            &format!("{}{path}", self.rack_url),
            &[("authorization", &auth), ("x-request-id", request_id)],
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        serde_json::from_str(&reply.body).expect("rack JSON")
    }

    /// The env of the app's newest release, straight from the rack.
    async fn rack_env(&self) -> BTreeMap<String, String> {
        let newest = self.newest_release().await;
        let release = self
            .rack_get(&format!("/apps/{APP}/releases/{newest}"), "test-read")
            .await;
        parse_env(release["env"].as_str().expect("env text"))
    }

    async fn newest_release(&self) -> String {
        let list = self
            .rack_get(&format!("/apps/{APP}/releases?limit=1"), "test-read")
            .await;
        list[0]["id"].as_str().expect("release id").to_owned()
    }

    async fn release_count(&self) -> usize {
        let list = self
            .rack_get(&format!("/apps/{APP}/releases"), "test-read")
            .await;
        list.as_array().expect("release list").len()
    }

    /// Every line the mock rack logged for requests with `request_id`: a sentinel request is
    /// sent and awaited first, so everything logged before it has been read.
    async fn rack_lines(&mut self, request_id: &str) -> Vec<String> {
        let sentinel = format!("sentinel-{}", uuid::Uuid::new_v4().simple());
        self.rack_get("/apps", &sentinel).await;
        self.rack.wait_for_line(&sentinel).await;
        let needle = format!("request_id={request_id}");
        self.rack
            .drain()
            .into_iter()
            .filter(|line| line.contains(&needle))
            .collect()
    }

    /// Every audit record, from `rack-gateway audit export`.
    async fn audit(&self) -> Vec<Value> {
        exported(&self.env, "jsonl")
            .await
            .lines()
            .map(|line| serde_json::from_str(line).expect("json line"))
            .collect()
    }

    /// Polls the export until `predicate` holds (reads and refusals are recorded asynchronously).
    async fn audit_when(&self, predicate: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.audit().await;
            if predicate(&rows) {
                return rows;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "audit records never appeared; have:\n{}",
                rows.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn exported(env: &HashMap<String, String>, format: &str) -> String {
    let (code, stdout, stderr) = run_command(&["audit", "export", "--format", format], env).await;
    assert_eq!(code, 0, "{stderr}");
    stdout
}

/// Sends one request with credentials and a request id.
async fn call(
    method: Method,
    url: &str,
    auth: &str,
    request_id: &str,
    body: Option<(&str, String)>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![("authorization", auth), ("x-request-id", request_id)];
    let (content_type, body) = body.unwrap_or(("", String::new()));
    if !content_type.is_empty() {
        headers.push(("content-type", content_type));
    }
    headers.extend_from_slice(extra);
    send(method, url, &headers, Bytes::from(body)).await
}

async fn put_env(d: &Deployment, auth: &str, request_id: &str, body: &Value) -> Reply {
    call(
        Method::PUT,
        &d.env_api(""),
        auth,
        request_id,
        Some(("application/json", body.to_string())),
        &[],
    )
    .await
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|_| panic!("not JSON ({}): {}", reply.status, reply.body))
}

/// The `{"env": {…}}` of an env API answer.
fn env_of(reply: &Reply) -> BTreeMap<String, String> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    json_of(reply)["env"]
        .as_object()
        .expect("env object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
        .collect()
}

fn error_of(reply: &Reply) -> String {
    json_of(reply)["error"]
        .as_str()
        .expect("error message")
        .to_owned()
}

fn assert_no_secret(text: &str, what: &str) {
    for secret in MockRack::secret_values() {
        assert!(
            !text.contains(secret),
            "{what} contains {secret:?}:\n{text}"
        );
    }
}

/// The seeded env, read from the rack, checked against what the mock says its secrets are.
fn check_seed(env: &BTreeMap<String, String>) {
    for key in [
        "DATABASE_URL",
        "SECRET_KEY",
        "STRIPE_API_KEY",
        "NODE_ENV",
        "PORT",
    ] {
        assert!(env.contains_key(key), "seeded env lacks {key}");
    }
    for secret in ["DATABASE_URL", "SECRET_KEY", "STRIPE_API_KEY"] {
        assert!(MockRack::secret_values().contains(&env[secret].as_str()));
    }
    assert_eq!(env["NODE_ENV"], "production");
}

/// What an ops user (env:read, no secret:read) must see for the seeded env.
fn assert_ops_view(shown: &BTreeMap<String, String>, stored: &BTreeMap<String, String>) {
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        stored.keys().collect::<Vec<_>>()
    );
    assert_eq!(shown["NODE_ENV"], "production");
    assert_eq!(shown["PORT"], "3000");
    assert_eq!(shown["SECRET_KEY"], MASK);
    assert_eq!(shown["STRIPE_API_KEY"], MASK);
    assert_eq!(
        shown["DATABASE_URL"],
        format!("postgres://app:{MASK}@db.internal:5432/app")
    );
}

fn records<'a>(rows: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|row| row["request_id"] == request_id)
        .collect()
}

#[tokio::test]
async fn a_viewer_cannot_read_a_release_and_a_release_reader_sees_every_value_masked() {
    let d = Deployment::start(&[]).await;
    let stored = d.rack_env().await;
    check_seed(&stored);
    let release = d.newest_release().await;
    let path = format!("/apps/{APP}/releases/{release}");

    // The role matrix gives viewers no convox:release:read: the release is not shown at all.
    let viewer = d.role("viewer").await;
    let reply = call(Method::GET, &d.proxy(&path), &viewer, "viewer-1", None, &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_no_secret(&reply.body, "viewer's refusal");
    assert!(!reply.body.contains("production"), "{}", reply.body);
    let reply = call(Method::GET, &d.env_api(""), &viewer, "viewer-2", None, &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&reply), ENV_READ_DENIED);

    // Whoever may read releases without convox:env:read sees the keys, every value masked.
    let reader = d
        .permissions("release-reader", &["convox:release:read"])
        .await;
    let reply = call(Method::GET, &d.proxy(&path), &reader, "reader-1", None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let shown = parse_env(json_of(&reply)["env"].as_str().expect("env text"));
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        stored.keys().collect::<Vec<_>>()
    );
    for (key, value) in &shown {
        assert_eq!(value, MASK, "{key} is not masked");
    }
    assert_no_secret(&reply.body, "release reader's release");
    // …and the env API stays closed to them.
    let reply = call(Method::GET, &d.env_api(""), &reader, "reader-2", None, &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&reply), ENV_READ_DENIED);
    let rows = d
        .audit_when(|rows| !records(rows, "reader-2").is_empty())
        .await;
    let refused = records(&rows, "reader-2");
    assert_eq!(refused[0]["action"], "env.read");
    assert_eq!(refused[0]["decision"], "deny");
    assert_eq!(refused[0]["http_status"], 403);
}

#[tokio::test]
async fn an_ops_user_sees_plain_values_but_not_secrets_nor_the_database_password() {
    let d = Deployment::start(&[]).await;
    let stored = d.rack_env().await;
    check_seed(&stored);
    let ops = d.role("ops").await;

    // Ops may list releases (not read one by id): every listed env is masked for them.
    let path = format!("/apps/{APP}/releases");
    let reply = call(Method::GET, &d.proxy(&path), &ops, "ops-list", None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_no_secret(&reply.body, "ops' release list");
    let releases = json_of(&reply);
    let releases = releases.as_array().expect("release list");
    assert!(!releases.is_empty());
    for release in releases {
        assert_ops_view(
            &parse_env(release["env"].as_str().expect("env text")),
            &stored,
        );
    }

    // The env API shows the same.
    let reply = call(Method::GET, &d.env_api(""), &ops, "ops-env", None, &[]).await;
    assert_no_secret(&reply.body, "ops' env");
    assert_ops_view(&env_of(&reply), &stored);
    let reply = call(
        Method::GET,
        &d.env_api("?key=SECRET_KEY"),
        &ops,
        "ops-key",
        None,
        &[],
    )
    .await;
    assert_eq!(
        env_of(&reply),
        BTreeMap::from([("SECRET_KEY".to_owned(), MASK.to_owned())])
    );
}

#[tokio::test]
async fn an_admin_sees_secrets_with_secrets_true_and_that_read_is_audited() {
    let d = Deployment::start(&[]).await;
    let stored = d.rack_env().await;
    check_seed(&stored);
    let admin = d.role("admin").await;
    let ops = d.role("ops").await;

    // Without secrets=true even an admin gets the masked view.
    let reply = call(Method::GET, &d.env_api(""), &admin, "admin-env", None, &[]).await;
    assert_ops_view(&env_of(&reply), &stored);

    let reply = call(
        Method::GET,
        &d.env_api("?secrets=true"),
        &admin,
        "admin-secrets",
        None,
        &[],
    )
    .await;
    assert_eq!(env_of(&reply), stored);
    assert_eq!(
        reply
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );

    let reply = call(
        Method::GET,
        &d.env_api("?secrets=true"),
        &ops,
        "ops-secrets",
        None,
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&reply), SECRET_READ_DENIED);
    assert_no_secret(&reply.body, "ops' refusal");

    // The secret read was on the record before the answer left.
    let rows = d.audit().await;
    let read = records(&rows, "admin-secrets");
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0]["action"], "secret.read");
    assert_eq!(read[0]["decision"], "allow");
    assert_eq!(read[0]["resource"], APP);
    assert_eq!(read[0]["http_status"], 200);
    assert_eq!(read[0]["actor_kind"], "api_token");
    assert!(read[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("convox:secret:read")));
    let rows = d
        .audit_when(|rows| !records(rows, "ops-secrets").is_empty())
        .await;
    let refused = records(&rows, "ops-secrets");
    assert_eq!(refused[0]["action"], "secret.read");
    assert_eq!(refused[0]["decision"], "deny");
    assert_eq!(refused[0]["http_status"], 403);
    assert_no_secret(&exported(&d.env, "jsonl").await, "audit export");
}

#[tokio::test]
async fn a_deployer_changes_exactly_one_variable_by_sending_the_masked_env_back() {
    let d = Deployment::start(&[]).await;
    let before = d.rack_env().await;
    check_seed(&before);
    let releases_before = d.release_count().await;
    let current_before = d.rack_get(&format!("/apps/{APP}"), "test-read").await["release"].clone();
    let deployer = d.role("deployer").await;

    let reply = call(
        Method::GET,
        &d.env_api(""),
        &deployer,
        "dep-read",
        None,
        &[],
    )
    .await;
    let mut shown = env_of(&reply);
    assert_ops_view(&shown, &before);
    shown.insert("NODE_ENV".into(), "staging".into());
    let reply = put_env(&d, &deployer, "dep-set", &json!({ "set": shown })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_no_secret(&reply.body, "the update's answer");
    let answer = json_of(&reply);
    let release_id = answer["release_id"]
        .as_str()
        .expect("release_id")
        .to_owned();
    assert_eq!(answer["env"]["NODE_ENV"], "staging");
    assert_eq!(answer["env"]["SECRET_KEY"], MASK);

    // On the rack: one new release, not promoted, with exactly NODE_ENV changed.
    assert_eq!(d.newest_release().await, release_id);
    assert_eq!(d.release_count().await, releases_before + 1);
    let after = d.rack_env().await;
    let mut expected = before.clone();
    expected.insert("NODE_ENV".into(), "staging".into());
    assert_eq!(after, expected);
    for key in ["DATABASE_URL", "SECRET_KEY", "STRIPE_API_KEY"] {
        assert_eq!(after[key], before[key], "{key} kept its value");
    }
    let current = d.rack_get(&format!("/apps/{APP}"), "test-read").await["release"].clone();
    assert_eq!(current, current_before, "the release is not promoted");

    // One env.set event for that key, without values; nothing else changed on the record.
    let rows = d
        .audit_when(|rows| records(rows, "dep-set").len() >= 3)
        .await;
    let trail = records(&rows, "dep-set");
    let per_key: Vec<&&Value> = trail
        .iter()
        .filter(|row| {
            let action = row["action"].as_str().unwrap_or_default();
            action.starts_with("env.set")
                || action.starts_with("env.unset")
                || action.starts_with("secret.")
        })
        .collect();
    assert_eq!(per_key.len(), 1, "{trail:?}");
    assert_eq!(per_key[0]["action"], "env.set");
    assert_eq!(per_key[0]["resource"], format!("{APP}/NODE_ENV"));
    assert_eq!(per_key[0]["decision"], "allow");
    let text = per_key[0].to_string();
    assert!(
        !text.contains("staging") && !text.contains("production"),
        "{text}"
    );
    assert!(trail
        .iter()
        .any(|row| row["action"] == "env.update" && row["phase"] == "intent"));
    assert_no_secret(&exported(&d.env, "jsonl").await, "audit export");

    // Sending the same env again changes nothing and creates no release.
    let reply = put_env(&d, &deployer, "dep-same", &json!({ "set": shown })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(json_of(&reply).get("release_id").is_none());
    assert_eq!(d.release_count().await, releases_before + 1);
    let rows = d
        .audit_when(|rows| !records(rows, "dep-same").is_empty())
        .await;
    let same = records(&rows, "dep-same");
    assert_eq!(same.len(), 1);
    assert_eq!(same[0]["action"], "env.update");
    assert_eq!(same[0]["details"], r#"{"changes":"none"}"#);
}

#[tokio::test]
async fn changing_a_secret_without_secret_set_is_refused_with_a_reason_before_the_rack() {
    let mut d = Deployment::start(&[]).await;
    let before = d.rack_env().await;
    check_seed(&before);
    let releases_before = d.release_count().await;
    let deployer = d.role("deployer").await;
    let ops = d.role("ops").await;

    let mut masked =
        env_of(&call(Method::GET, &d.env_api(""), &deployer, "ref-0", None, &[]).await);
    masked.insert("SECRET_KEY".into(), "a-new-secret-value".into());
    let attempts = [
        json!({"set": {"SECRET_KEY": "a-new-secret-value"}}),
        json!({"set": masked}),
        json!({"remove": ["STRIPE_API_KEY"]}),
        json!({"set": {"NEW_API_TOKEN": "t-123"}}),
    ];
    for (i, body) in attempts.iter().enumerate() {
        let reply = put_env(&d, &deployer, &format!("ref-{}", i + 1), body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{body}: {}",
            reply.body
        );
        assert_eq!(error_of(&reply), SECRET_SET_DENIED);
    }
    // Without convox:env:set nothing changes at all.
    let reply = put_env(&d, &ops, "ref-5", &json!({"set": {"NODE_ENV": "dev"}})).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        error_of(&reply),
        "You don't have permission to modify environment variables."
    );
    // The proxy's release create refuses the same change.
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "env",
            &masked
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .finish();
    let reply = call(
        Method::POST,
        &d.proxy(&format!("/apps/{APP}/releases")),
        &deployer,
        "ref-6",
        Some(("application/x-www-form-urlencoded", form)),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.body.trim(), SECRET_SET_DENIED);

    // Nothing was written on the rack (the env read of ref-0 shows what reaching it looks like).
    assert!(
        d.rack_lines("ref-0")
            .await
            .iter()
            .any(|line| line.contains("method=GET")),
        "the rack's request log is readable"
    );
    for i in 0..=6 {
        let lines = d.rack_lines(&format!("ref-{i}")).await;
        assert!(
            lines.iter().all(|line| !line.contains("method=POST")),
            "ref-{i} reached the rack: {lines:?}"
        );
    }
    assert_eq!(d.rack_env().await, before);
    assert_eq!(d.release_count().await, releases_before);

    // Each refusal is on the record with its reason (keys and permission, no value).
    let rows = d
        .audit_when(|rows| (1..=6).all(|i| !records(rows, &format!("ref-{i}")).is_empty()))
        .await;
    for i in 1..=4 {
        let row = records(&rows, &format!("ref-{i}"))[0];
        assert_eq!(row["decision"], "deny");
        assert_eq!(row["action"], "env.update");
        let reason = row["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("convox:secret:set") && reason.contains(SECRET_SET_DENIED),
            "{reason}"
        );
        assert!(!row.to_string().contains("a-new-secret-value"), "{row}");
    }
    let row = records(&rows, "ref-6")
        .into_iter()
        .find(|row| row["phase"] == "complete")
        .expect("proxy refusal record");
    assert_eq!(row["decision"], "deny");
    assert!(row["reason"]
        .as_str()
        .is_some_and(|r| r.contains("SECRET_KEY")));
    assert_no_secret(&exported(&d.env, "jsonl").await, "audit export");
}

#[tokio::test]
async fn changing_a_protected_key_is_refused_with_its_name_before_the_rack() {
    // PORT protected in app `web` through the settings' environment override.
    let mut d = Deployment::start(&[("RGW_APP_WEB_SETTING_PROTECTED_ENV_VARS", "port")]).await;
    let before = d.rack_env().await;
    check_seed(&before);
    let releases_before = d.release_count().await;
    let admin = d.role("admin").await;
    let deployer = d.role("deployer").await;

    // A protected key is shown masked, like a secret.
    let reply = call(Method::GET, &d.env_api(""), &deployer, "prot-0", None, &[]).await;
    let shown = env_of(&reply);
    assert_eq!(shown["PORT"], MASK);
    assert_eq!(shown["NODE_ENV"], "production");

    // Not even an admin (who holds convox:secret:set) may change or remove it.
    let attempts = [
        (&admin, json!({"set": {"PORT": "8080"}})),
        (&admin, json!({"remove": ["PORT"]})),
        (&deployer, json!({"set": {"PORT": "8080", "NODE_ENV": "x"}})),
    ];
    for (i, (auth, body)) in attempts.iter().enumerate() {
        let reply = put_env(&d, auth, &format!("prot-{}", i + 1), body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{body}: {}",
            reply.body
        );
        assert_eq!(
            error_of(&reply),
            "Environment variable PORT is protected and cannot be changed."
        );
    }
    // The proxy's release create refuses it too.
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("env", "NODE_ENV=production\nPORT=8080")
        .finish();
    let reply = call(
        Method::POST,
        &d.proxy(&format!("/apps/{APP}/releases")),
        &admin,
        "prot-4",
        Some(("application/x-www-form-urlencoded", form)),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.body.contains("PORT is protected"), "{}", reply.body);

    // Sending it back masked keeps it: no change, no release.
    let reply = put_env(&d, &deployer, "prot-5", &json!({ "set": shown })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(json_of(&reply).get("release_id").is_none());

    assert!(!d.rack_lines("prot-0").await.is_empty());
    for i in 0..=5 {
        let lines = d.rack_lines(&format!("prot-{i}")).await;
        assert!(
            lines.iter().all(|line| !line.contains("method=POST")),
            "prot-{i} reached the rack: {lines:?}"
        );
    }
    assert_eq!(d.rack_env().await, before);
    assert_eq!(d.release_count().await, releases_before);
    let rows = d
        .audit_when(|rows| (1..=4).all(|i| !records(rows, &format!("prot-{i}")).is_empty()))
        .await;
    for i in 1..=3 {
        let row = records(&rows, &format!("prot-{i}"))[0];
        assert_eq!(row["decision"], "deny");
        assert_eq!(row["http_status"], 403);
        assert!(row["reason"]
            .as_str()
            .is_some_and(|r| r.contains("PORT is protected")));
    }
}

#[tokio::test]
async fn no_secret_of_the_rack_reaches_the_logs_or_the_audit_export() {
    // Debug level, so that nothing the gateway logs at any level escapes the search.
    let mut d = Deployment::start(&[("RUST_LOG", "debug")]).await;
    let stored = d.rack_env().await;
    check_seed(&stored);
    let secret = stored["SECRET_KEY"].clone();
    let new_secret = "admin-rotated-secret-Zq81Kx";
    let release = d.newest_release().await;
    let roles = ["viewer", "ops", "deployer", "admin"];
    let mut tokens = HashMap::new();
    for role in roles {
        tokens.insert(role, d.role(role).await);
    }
    tokens.insert(
        "reader",
        d.permissions("reader", &["convox:release:read", "convox:release:list"])
            .await,
    );
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("grep-{n}")
    };

    for (who, auth) in &tokens {
        // Releases through the proxy: list, read, with a secret-looking query string.
        for path in [
            format!("/apps/{APP}/releases"),
            format!("/apps/{APP}/releases/{release}"),
            format!("/apps/{APP}/releases?limit=1&password={secret}&token={secret}"),
        ] {
            let reply = call(Method::GET, &d.proxy(&path), auth, &id(), None, &[]).await;
            if *who != "admin" {
                assert_no_secret(&reply.body, &format!("{who} {path}"));
            }
        }
        // The env API, with and without secrets, one key, and a bad query.
        for query in [
            "",
            "?secrets=true",
            "?secrets=true&key=SECRET_KEY",
            "?key=DATABASE_URL",
            "?secrets=maybe",
        ] {
            let reply = call(Method::GET, &d.env_api(query), auth, &id(), None, &[]).await;
            if !(*who == "admin" && query.contains("secrets=true")) {
                assert_no_secret(&reply.body, &format!("{who} env{query}"));
            }
        }
        // Env headers on a process start (allowed only with convox:env:set).
        let header = format!("SECRET_KEY={secret}");
        call(
            Method::POST,
            &d.proxy(&format!("/apps/{APP}/services/web/processes")),
            auth,
            &id(),
            None,
            &[("environment", header.as_str()), ("command", "env")],
        )
        .await;
    }

    let deployer = tokens["deployer"].clone();
    let admin = tokens["admin"].clone();
    // A deployer's update from the masked env, a refused secret change, and malformed bodies
    // that carry secrets.
    let mut masked = env_of(&call(Method::GET, &d.env_api(""), &deployer, &id(), None, &[]).await);
    masked.insert("NODE_ENV".into(), "staging".into());
    let reply = put_env(&d, &deployer, &id(), &json!({ "set": masked })).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // The right value and a wrong one get the same refusal: nothing to learn by guessing.
    let right = put_env(
        &d,
        &deployer,
        &id(),
        &json!({"set": {"SECRET_KEY": secret}}),
    )
    .await;
    assert_eq!(right.status, StatusCode::FORBIDDEN, "{}", right.body);
    let wrong = put_env(
        &d,
        &deployer,
        &id(),
        &json!({"set": {"SECRET_KEY": new_secret}}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(right.body, wrong.body);
    for body in [
        format!("{{\"set\": {{\"SECRET_KEY\": \"{secret}\""),
        format!("{{\"set\": {{\"{secret}\": \"x\"}}}}"),
        format!("{{\"unset\": [\"{secret}\"]}}"),
        format!("{{\"set\": {{\"SECRET_KEY\": \"{secret}\\nX=1\"}}}}"),
    ] {
        let reply = call(
            Method::PUT,
            &d.env_api(""),
            &deployer,
            &id(),
            Some(("application/json", body)),
            &[],
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    // An admin rotates the secret, removes a key, then reads everything in clear.
    let reply = put_env(
        &d,
        &admin,
        &id(),
        &json!({"set": {"SECRET_KEY": new_secret}, "remove": ["PORT"]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(!reply.body.contains(new_secret));
    let reply = call(
        Method::GET,
        &d.env_api("?secrets=true"),
        &admin,
        &id(),
        None,
        &[],
    )
    .await;
    assert_eq!(env_of(&reply)["SECRET_KEY"], new_secret);

    // Release creates through the proxy: the masked env back with one change (allowed), and a
    // secret in clear (refused for the deployer).
    let released = call(
        Method::GET,
        &d.proxy(&format!("/apps/{APP}/releases?limit=1")),
        &deployer,
        &id(),
        None,
        &[],
    )
    .await;
    let masked_text = json_of(&released)[0]["env"]
        .as_str()
        .expect("env text")
        .replace("NODE_ENV=staging", "NODE_ENV=production");
    for (env_text, expected) in [
        (masked_text.clone(), StatusCode::OK),
        (
            format!(
                "{masked_text}\nOTHER_SECRET={}",
                MockRack::secret_values()[3]
            ),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("env", &env_text)
            .append_pair("description", "grep test")
            .finish();
        let reply = call(
            Method::POST,
            &d.proxy(&format!("/apps/{APP}/releases")),
            &deployer,
            &id(),
            Some(("application/x-www-form-urlencoded", form)),
            &[],
        )
        .await;
        assert_eq!(reply.status, expected, "{}", reply.body);
        assert_no_secret(&reply.body, "release create answer");
    }
    let stored_now = d.rack_env().await;
    assert_eq!(stored_now["SECRET_KEY"], new_secret);
    assert_eq!(stored_now["NODE_ENV"], "production");
    assert_eq!(stored_now["DATABASE_URL"], stored["DATABASE_URL"]);

    // Wait until every request is on the record, then search everything.
    let last = id();
    call(Method::GET, &d.env_api(""), &admin, &last, None, &[]).await;
    d.audit_when(|rows| !records(rows, &last).is_empty()).await;
    let mut haystack = Vec::new();
    haystack.extend(d.gateway.drain());
    haystack.extend(d.rack.drain());
    haystack.push(exported(&d.env, "jsonl").await);
    haystack.push(exported(&d.env, "csv").await);
    let text = haystack.join("\n");
    assert!(
        text.contains("grep-1") && text.contains(&last),
        "the search covers the run"
    );
    let mut secrets: Vec<&str> = MockRack::secret_values().to_vec();
    secrets.push(new_secret);
    for secret in secrets {
        let hits: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "{secret:?} found in:\n{}", hits.join("\n"));
    }
}

/// The env text of a map, as the Convox CLI posts it.
fn env_text(env: &BTreeMap<String, String>) -> String {
    env.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_release_create_that_is_not_exactly_one_plain_form_never_reaches_the_rack() {
    let mut d = Deployment::start(&[]).await;
    let before = d.rack_env().await;
    check_seed(&before);
    let releases_before = d.release_count().await;
    let deployer = d.role("deployer").await;
    // What a deployer would like to store: every secret and protected value replaced.
    let mut hostile = before.clone();
    for value in hostile.values_mut() {
        *value = "overwritten".into();
    }
    let env = env_text(&hostile);
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("env", &env)
        .finish();
    let json_body = json!({ "env": env }).to_string();
    let url = d.proxy(&format!("/apps/{APP}/releases"));
    // (name, headers, body, expected status)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, StatusCode);
    let cases: Vec<Case<'_>> = vec![
        (
            "json",
            vec![("content-type", "application/json")],
            json_body.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "text",
            vec![("content-type", "text/plain")],
            form.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "none",
            vec![],
            form.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "list",
            vec![(
                "content-type",
                "application/x-www-form-urlencoded, application/json",
            )],
            form.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "twice",
            vec![
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-type", "application/json"),
            ],
            form.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "charset-json",
            vec![(
                "content-type",
                "application/x-www-form-urlencoded; charset=json",
            )],
            json_body.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "semicolon",
            vec![("content-type", "application/x-www-form-urlencoded")],
            format!("description=x;{form}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad-escape",
            vec![("content-type", "application/x-www-form-urlencoded")],
            format!("{form}&x=%zz"),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (name, headers, body, status) in &cases {
        let id = format!("nonform-{name}");
        let mut all = vec![
            ("authorization", deployer.as_str()),
            ("x-request-id", id.as_str()),
        ];
        all.extend(headers.iter().copied());
        let reply = send(Method::POST, &url, &all, Bytes::from(body.clone())).await;
        assert_eq!(reply.status, *status, "{name}: {}", reply.body);
    }
    // The rack saw none of them, and nothing changed there.
    for (name, ..) in &cases {
        let lines = d.rack_lines(&format!("nonform-{name}")).await;
        assert!(lines.is_empty(), "{name} reached the rack: {lines:?}");
    }
    assert_eq!(d.rack_env().await, before);
    assert_eq!(d.release_count().await, releases_before);
    // Each refusal is on the record, with no per-key change records.
    let rows = d
        .audit_when(|rows| {
            cases
                .iter()
                .all(|(name, ..)| !records(rows, &format!("nonform-{name}")).is_empty())
        })
        .await;
    for (name, _, _, status) in &cases {
        let trail = records(&rows, &format!("nonform-{name}"));
        assert_eq!(trail.len(), 1, "{name}: {trail:?}");
        assert_eq!(trail[0]["action"], "release.create");
        assert_eq!(trail[0]["http_status"], status.as_u16());
        assert_ne!(trail[0]["decision"], "allow");
    }

    // The plain form still works, and what the rack stores is what the gateway merged.
    let mut changed = env_of(
        &call(
            Method::GET,
            &d.env_api(""),
            &deployer,
            "nonform-read",
            None,
            &[],
        )
        .await,
    );
    changed.insert("NODE_ENV".into(), "staging".into());
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("env", &env_text(&changed))
        .finish();
    let reply = call(
        Method::POST,
        &url,
        &deployer,
        "nonform-ok",
        Some(("application/x-www-form-urlencoded; charset=utf-8", form)),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut expected = before.clone();
    expected.insert("NODE_ENV".into(), "staging".into());
    assert_eq!(d.rack_env().await, expected);
    // Its per-key record is durable with its intent, before the complete record.
    let rows = d
        .audit_when(|rows| {
            records(rows, "nonform-ok")
                .iter()
                .any(|r| r["phase"] == "complete")
        })
        .await;
    let trail = records(&rows, "nonform-ok");
    let phases: Vec<(&str, &str)> = trail
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["phase"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("release.create", "intent"),
            ("env.set", "intent"),
            ("release.create", "complete")
        ],
        "{trail:?}"
    );
}

#[tokio::test]
async fn a_deployer_cannot_tell_a_right_secret_guess_from_a_wrong_one() {
    let mut d = Deployment::start(&[]).await;
    let before = d.rack_env().await;
    check_seed(&before);
    let releases_before = d.release_count().await;
    let deployer = d.role("deployer").await;
    let shown = env_of(
        &call(
            Method::GET,
            &d.env_api(""),
            &deployer,
            "guess-read",
            None,
            &[],
        )
        .await,
    );
    assert_eq!(shown["SECRET_KEY"], MASK);
    let url = d.proxy(&format!("/apps/{APP}/releases"));
    let mut answers = Vec::new();
    for (id, guess) in [
        ("guess-right", before["SECRET_KEY"].as_str()),
        ("guess-wrong", "not-it"),
    ] {
        // Through the proxy, as `convox env set` would send it…
        let mut posted = shown.clone();
        posted.insert("SECRET_KEY".into(), guess.to_owned());
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("env", &env_text(&posted))
            .finish();
        let proxy = call(
            Method::POST,
            &url,
            &deployer,
            id,
            Some(("application/x-www-form-urlencoded", form)),
            &[],
        )
        .await;
        // …and through the env API.
        let api = put_env(
            &d,
            &deployer,
            &format!("{id}-api"),
            &json!({"set": {"SECRET_KEY": guess}}),
        )
        .await;
        answers.push(((proxy.status, proxy.body), (api.status, api.body)));
    }
    assert_eq!(
        answers[0], answers[1],
        "a right guess answers differently from a wrong one"
    );
    assert_eq!(answers[0].0 .0, StatusCode::FORBIDDEN);
    assert_eq!(answers[0].1 .0, StatusCode::FORBIDDEN);
    for id in [
        "guess-right",
        "guess-wrong",
        "guess-right-api",
        "guess-wrong-api",
    ] {
        let lines = d.rack_lines(id).await;
        assert!(
            lines.iter().all(|l| !l.contains("method=POST")),
            "{id}: {lines:?}"
        );
    }
    assert_eq!(d.rack_env().await, before);
    assert_eq!(d.release_count().await, releases_before);
}

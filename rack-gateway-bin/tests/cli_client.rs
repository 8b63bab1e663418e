//! The CLI client (`login`, `racks`, `switch`, `logout`, `convox`) as a user runs it: the real
//! binary against a stand-in gateway that implements the sign-in, logout and proxy contract,
//! with its credentials in a temporary directory.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use common::process::run_command;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// What the stand-in does with a sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Pending twice, then the session.
    SignsIn,
    /// 403 with a reason, as when the user may not use the gateway.
    Refused,
    /// 400 "login expired" from the gateway.
    ExpiredByGateway,
    /// Pending until the sign-in's short expiry passes.
    NeverFinished,
    /// 503 on start: no identity provider configured.
    NotConfigured,
}

const REFUSAL: &str = "alice@example.com is not a user of this gateway;\nask an administrator";
const APPS: &str = r#"[{"name":"web","status":"running"}]"#;

/// What the stand-in gateway saw and handed out.
#[derive(Default)]
struct Seen {
    /// Device names sent to start.
    device_names: Vec<String>,
    /// The sign-ins started: state → (code verifier, polls so far).
    sign_ins: HashMap<String, (String, usize)>,
    /// The sign-in URL of each start, in order.
    auth_urls: Vec<String>,
    /// Tokens issued and still valid.
    live_tokens: Vec<String>,
    /// Bearer credentials the logout endpoint got.
    logout_bearers: Vec<String>,
    /// Basic passwords the proxy got.
    proxy_passwords: Vec<String>,
}

struct Gateway {
    scenario: Scenario,
    base: String,
    seen: Mutex<Seen>,
}

type Shared = Arc<Gateway>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn start(State(gateway): State<Shared>, Json(body): Json<Value>) -> Response {
    if gateway.scenario == Scenario::NotConfigured {
        return error(StatusCode::SERVICE_UNAVAILABLE, "sign-in is not configured");
    }
    let mut seen = gateway.seen.lock().expect("lock");
    let number = seen.sign_ins.len();
    let state = format!("state-{number}-{}", uuid::Uuid::new_v4().simple());
    let verifier = format!("verifier-{}", uuid::Uuid::new_v4().simple());
    let auth_url = format!("{}/idp/authorize?client_id=cli&state={state}", gateway.base);
    seen.device_names
        .push(body["device_name"].as_str().unwrap_or_default().to_owned());
    seen.sign_ins.insert(state.clone(), (verifier.clone(), 0));
    seen.auth_urls.push(auth_url.clone());
    let lifetime = if gateway.scenario == Scenario::NeverFinished {
        chrono::Duration::seconds(2)
    } else {
        chrono::Duration::minutes(10)
    };
    Json(json!({
        "auth_url": auth_url,
        "state": state,
        "code_verifier": verifier,
        "expires_at": (Utc::now() + lifetime).to_rfc3339(),
        "poll_interval_ms": 100,
    }))
    .into_response()
}

async fn complete(State(gateway): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut seen = gateway.seen.lock().expect("lock");
    let state = body["state"].as_str().unwrap_or_default();
    let verifier = body["code_verifier"].as_str().unwrap_or_default();
    let polls = match seen.sign_ins.get_mut(state) {
        Some((expected, polls)) if expected == verifier => {
            *polls += 1;
            *polls
        }
        _ => return error(StatusCode::BAD_REQUEST, "unknown login"),
    };
    match gateway.scenario {
        Scenario::Refused => error(StatusCode::FORBIDDEN, REFUSAL),
        Scenario::ExpiredByGateway => error(StatusCode::BAD_REQUEST, "login expired"),
        Scenario::NeverFinished | Scenario::NotConfigured => pending(),
        Scenario::SignsIn if polls <= 2 => pending(),
        Scenario::SignsIn => {
            seen.sign_ins.remove(state);
            let token = format!("rgs_{}", uuid::Uuid::new_v4().simple());
            seen.live_tokens.push(token.clone());
            Json(json!({
                "token": token,
                "email": "alice@example.com",
                "name": "Alice Example",
                "expires_at": (Utc::now() + chrono::Duration::days(90)).to_rfc3339(),
                "session_id": uuid::Uuid::new_v4().to_string(),
            }))
            .into_response()
        }
    }
}

fn pending() -> Response {
    (StatusCode::ACCEPTED, Json(json!({ "status": "pending" }))).into_response()
}

async fn logout(State(gateway): State<Shared>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let mut seen = gateway.seen.lock().expect("lock");
    seen.logout_bearers.push(bearer.clone());
    let before = seen.live_tokens.len();
    seen.live_tokens.retain(|token| *token != bearer);
    if seen.live_tokens.len() < before {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::UNAUTHORIZED, "session not found")
    }
}

async fn proxy_apps(State(gateway): State<Shared>, headers: HeaderMap) -> Response {
    let password = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_owned()))
        .unwrap_or_default();
    let mut seen = gateway.seen.lock().expect("lock");
    seen.proxy_passwords.push(password.clone());
    if seen.live_tokens.contains(&password) {
        (StatusCode::OK, APPS).into_response()
    } else {
        error(StatusCode::UNAUTHORIZED, "invalid credential")
    }
}

/// Starts a stand-in gateway on 127.0.0.1.
async fn stand_in(scenario: Scenario) -> Arc<Gateway> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let gateway = Arc::new(Gateway {
        scenario,
        base: format!("http://{addr}"),
        seen: Mutex::new(Seen::default()),
    });
    let router = Router::new()
        .route("/api/v1/auth/cli/start", post(start))
        .route("/api/v1/auth/cli/complete", post(complete))
        .route("/api/v1/auth/web/logout", post(logout))
        .route("/api/v1/rack-proxy/apps", get(proxy_apps))
        .with_state(Arc::clone(&gateway));
    tokio::spawn(async move { axum::serve(listener, router).await });
    gateway
}

/// A user's environment: a config directory that does not exist yet, and no HOME or DISPLAY.
struct User {
    root: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl User {
    fn new() -> User {
        let root = tempfile::tempdir().expect("tempdir");
        let mut env = HashMap::new();
        env.insert(
            "RACK_GATEWAY_CONFIG_DIR".to_owned(),
            root.path()
                .join("config/rack-gateway")
                .display()
                .to_string(),
        );
        User { root, env }
    }

    fn config_dir(&self) -> PathBuf {
        PathBuf::from(&self.env["RACK_GATEWAY_CONFIG_DIR"])
    }

    fn config_file(&self) -> PathBuf {
        self.config_dir().join("config.json")
    }

    fn config(&self) -> Value {
        let text = std::fs::read_to_string(self.config_file()).expect("config.json");
        serde_json::from_str(&text).expect("config JSON")
    }

    /// Writes `config.json` as a previous run would have (0700 directory, 0600 file).
    fn write_config(&self, config: &Value) {
        std::fs::create_dir_all(self.config_dir()).expect("mkdir");
        set_mode(&self.config_dir(), 0o700);
        std::fs::write(self.config_file(), config.to_string()).expect("write");
        set_mode(&self.config_file(), 0o600);
    }

    /// A stand-in `convox` that prints its arguments and calls `$RACK_URL/apps` as the Convox
    /// CLI does (Basic credentials from the URL's user info), printing the answer.
    fn install_convox(&mut self) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        assert!(
            std::env::split_paths(&path).any(|dir| dir.join("curl").is_file()),
            "these tests need curl on PATH: the stand-in convox calls the gateway with it"
        );
        let script = self.root.path().join("convox");
        std::fs::write(
            &script,
            "#!/bin/sh\n\
             printf 'args:'; printf ' [%s]' \"$@\"; echo\n\
             if [ \"$1\" = fail ]; then exit 3; fi\n\
             exec curl --silent --show-error --fail-with-body \"$RACK_URL/$1\"\n",
        )
        .expect("write convox");
        set_mode(&script, 0o755);
        self.env.insert(
            "RACK_GATEWAY_CONVOX_BIN".to_owned(),
            script.display().to_string(),
        );
    }

    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        tokio::time::timeout(Duration::from_secs(60), run_command(args, &self.env))
            .await
            .expect("rack-gateway finished within a minute")
    }

    /// Signs in to `gateway` as `rack`; returns the token the gateway issued.
    async fn login(&self, rack: &str, gateway: &Gateway) -> String {
        let (code, stdout, stderr) = self
            .run(&["login", rack, &gateway.base, "--no-browser"])
            .await;
        assert_eq!(code, 0, "login failed:\n{stdout}\n{stderr}");
        let token = gateway
            .seen
            .lock()
            .expect("lock")
            .live_tokens
            .last()
            .cloned()
            .expect("a token was issued");
        assert_no_token(&token, &stdout, &stderr);
        token
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn assert_no_token(token: &str, stdout: &str, stderr: &str) {
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "the token was printed:\n{stdout}\n{stderr}"
    );
}

/// A stored credential for `url`, expiring at `expires_at`.
fn stored(url: &str, token: &str, expires_at: DateTime<Utc>) -> Value {
    json!({
        "url": url,
        "token": token,
        "email": "alice@example.com",
        "expires_at": expires_at.to_rfc3339(),
        "session_id": "0b7e8d3c-2f61-4a59-9c1e-5d2f3a4b6c7d",
    })
}

#[tokio::test]
async fn login_polls_until_signed_in_and_stores_the_session_privately() {
    let gateway = stand_in(Scenario::SignsIn).await;
    let user = User::new();

    let (code, stdout, stderr) = user
        .run(&["login", "prod", &gateway.base, "--no-browser"])
        .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let seen = gateway.seen.lock().expect("lock");
    let auth_url = seen.auth_urls[0].clone();
    assert!(
        stdout.lines().any(|line| line == auth_url),
        "the sign-in URL must be on a line of its own:\n{stdout}"
    );
    assert!(stderr.contains("open this URL"), "{stderr}");
    assert!(
        !seen.device_names[0].is_empty(),
        "start names the device: {:?}",
        seen.device_names
    );
    assert!(seen.sign_ins.is_empty(), "polled until the token came");
    let token = seen.live_tokens[0].clone();
    drop(seen);
    assert_no_token(&token, &stdout, &stderr);
    assert!(stdout.contains("alice@example.com"), "{stdout}");

    assert_eq!(mode(&user.config_dir()), 0o700);
    assert_eq!(mode(&user.config_file()), 0o600);
    let config = user.config();
    assert_eq!(config["current"], "prod");
    let prod = &config["racks"]["prod"];
    assert_eq!(prod["url"], gateway.base.as_str());
    assert_eq!(prod["token"], token.as_str());
    assert_eq!(prod["email"], "alice@example.com");
    assert!(prod["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    let expires: DateTime<Utc> = prod["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("RFC 3339");
    assert!(expires > Utc::now() + chrono::Duration::days(89));
}

#[tokio::test]
async fn racks_switch_and_logout_manage_the_stored_sessions() {
    let gateway = stand_in(Scenario::SignsIn).await;
    let user = User::new();
    let prod_token = user.login("prod", &gateway).await;
    let staging_token = user.login("staging", &gateway).await;

    let (code, stdout, stderr) = user.run(&["racks"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_no_token(&prod_token, &stdout, &stderr);
    let current: Vec<&str> = stdout.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(current.len(), 1, "{stdout}");
    assert!(
        current[0].contains("staging"),
        "the last login is current:\n{stdout}"
    );
    assert!(current[0].contains("alice@example.com"), "{stdout}");
    assert!(
        current[0].contains(" UTC"),
        "the expiry is shown:\n{stdout}"
    );
    assert!(!stdout.contains("expired"), "{stdout}");

    let (code, _, stderr) = user.run(&["switch", "prod"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (_, stdout, _) = user.run(&["racks"]).await;
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with('*') && l.contains("prod")),
        "{stdout}"
    );
    let (code, _, stderr) = user.run(&["switch", "qa"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no rack named qa; known racks: prod, staging"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    // Logout without --rack ends the current rack's session and leaves no rack current.
    let (code, stdout, stderr) = user.run(&["logout"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_no_token(&prod_token, &stdout, &stderr);
    assert_eq!(
        gateway.seen.lock().expect("lock").logout_bearers,
        std::slice::from_ref(&prod_token),
        "the session was revoked with its own token as Bearer"
    );
    let config = user.config();
    assert!(config["racks"].get("prod").is_none(), "{config}");
    assert!(config.get("current").is_none(), "{config}");
    assert_eq!(config["racks"]["staging"]["token"], staging_token.as_str());

    let (code, _, stderr) = user.run(&["logout"]).await;
    assert_eq!(code, 2, "no current rack any more: {stderr}");
    assert!(stderr.contains("no current rack"), "{stderr}");
    let (code, stdout, stderr) = user.run(&["logout", "--rack", "staging"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        gateway.seen.lock().expect("lock").logout_bearers,
        [prod_token, staging_token]
    );
    assert_eq!(user.config()["racks"], json!({}));
}

#[tokio::test]
async fn convox_runs_through_the_gateway_with_the_stored_session() {
    let gateway = stand_in(Scenario::SignsIn).await;
    let mut user = User::new();
    user.install_convox();
    // Without --no-browser and without a display: no browser is tried, and login still works.
    let (code, stdout, stderr) = user.run(&["login", "prod", &gateway.base]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let token = gateway.seen.lock().expect("lock").live_tokens[0].clone();

    let (code, stdout, stderr) = user.run(&["convox", "apps", "--help", "-a", "x y"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("args: [apps] [--help] [-a] [x y]"),
        "arguments reach convox as they are:\n{stdout}"
    );
    assert!(
        stdout.contains(APPS),
        "convox printed the gateway's answer:\n{stdout}"
    );
    assert_eq!(
        gateway.seen.lock().expect("lock").proxy_passwords,
        std::slice::from_ref(&token),
        "the Basic password is the stored token"
    );

    let (code, stdout, _) = user.run(&["convox", "fail"]).await;
    assert_eq!(code, 3, "convox's exit status is passed on: {stdout}");

    // --rack picks a rack other than the current one.
    let mut config = user.config();
    config["racks"]["dead"] = stored(
        &gateway.base,
        "rgs_revoked",
        Utc::now() + chrono::Duration::days(1),
    );
    user.write_config(&config);
    let (code, stdout, stderr) = user.run(&["convox", "--rack", "dead", "apps"]).await;
    assert_eq!(
        code, 22,
        "curl --fail-with-body exits 22 on the gateway's 401: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("invalid credential"), "{stdout}");

    // After logout the gateway refuses the old token, and there is no current rack.
    let (code, _, stderr) = user.run(&["logout"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = user.run(&["convox", "apps"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no current rack"), "{stderr}");
}

#[tokio::test]
async fn a_refused_sign_in_reports_the_gateways_reason_on_one_line() {
    let gateway = stand_in(Scenario::Refused).await;
    let user = User::new();
    let (code, stdout, stderr) = user
        .run(&["login", "prod", &gateway.base, "--no-browser"])
        .await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let last = stderr.lines().last().expect("an error line");
    assert_eq!(
        last,
        "error: sign-in refused: alice@example.com is not a user of this gateway; ask an administrator"
    );
    assert!(!user.config_file().exists(), "nothing is stored");
}

#[tokio::test]
async fn a_sign_in_the_gateway_calls_expired_fails() {
    let gateway = stand_in(Scenario::ExpiredByGateway).await;
    let user = User::new();
    let (code, _, stderr) = user
        .run(&["login", "prod", &gateway.base, "--no-browser"])
        .await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("error: sign-in failed: login expired")
    );
}

#[tokio::test]
async fn a_sign_in_nobody_finishes_is_given_up_at_its_expiry() {
    let gateway = stand_in(Scenario::NeverFinished).await;
    let user = User::new();
    let started = std::time::Instant::now();
    let (code, _, stderr) = user
        .run(&["login", "prod", &gateway.base, "--no-browser"])
        .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let last = stderr.lines().last().expect("an error line");
    assert!(
        last.contains("not finished in the browser before it expired")
            && last.contains("rack-gateway login"),
        "{stderr}"
    );
    assert!(gateway
        .seen
        .lock()
        .expect("lock")
        .sign_ins
        .values()
        .all(|(_, polls)| *polls >= 2));
}

#[tokio::test]
async fn a_gateway_without_sign_in_is_reported() {
    let gateway = stand_in(Scenario::NotConfigured).await;
    let user = User::new();
    let (code, _, stderr) = user
        .run(&["login", "prod", &gateway.base, "--no-browser"])
        .await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("error: this gateway does not offer sign-in: sign-in is not configured")
    );
}

#[tokio::test]
async fn a_missing_convox_cli_is_a_configuration_error() {
    let user = User::new();
    user.write_config(&json!({
        "current": "prod",
        "racks": { "prod": stored("http://127.0.0.1:9", "rgs_x", Utc::now() + chrono::Duration::days(1)) },
    }));
    let (code, _, stderr) = user.run(&["convox", "apps"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("install it") && stderr.contains("RACK_GATEWAY_CONVOX_BIN"),
        "{stderr}"
    );

    let mut pointed = User::new();
    pointed.env.clone_from(&user.env);
    pointed.env.insert(
        "RACK_GATEWAY_CONVOX_BIN".to_owned(),
        "/nonexistent/convox".to_owned(),
    );
    let (code, _, stderr) = pointed.run(&["convox", "apps"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent/convox"), "{stderr}");
}

#[tokio::test]
async fn an_expired_session_is_refused_before_convox_runs() {
    let mut user = User::new();
    user.install_convox();
    user.write_config(&json!({
        "current": "prod",
        "racks": { "prod": stored("http://127.0.0.1:9", "rgs_old", Utc::now() - chrono::Duration::hours(1)) },
    }));
    let (code, stdout, stderr) = user.run(&["convox", "apps"]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(!stdout.contains("args:"), "convox must not run: {stdout}");
    assert!(
        stderr.contains("expired") && stderr.contains("rack-gateway login prod http://127.0.0.1:9"),
        "{stderr}"
    );
    let (_, stdout, _) = user.run(&["racks"]).await;
    assert!(stdout.contains("(expired)"), "{stdout}");
}

#[tokio::test]
async fn logout_forgets_the_session_even_when_the_gateway_is_unreachable() {
    let user = User::new();
    user.write_config(&json!({
        "current": "prod",
        "racks": { "prod": stored("http://127.0.0.1:9", "rgs_unsent", Utc::now() + chrono::Duration::days(1)) },
    }));
    let (code, stdout, stderr) = user.run(&["logout"]).await;
    assert_eq!(code, 1, "the revocation failed: {stdout}\n{stderr}");
    assert!(
        stderr.contains("forgotten here") && stderr.contains("could not be ended"),
        "{stderr}"
    );
    assert_no_token("rgs_unsent", &stdout, &stderr);
    assert_eq!(user.config()["racks"], json!({}));
}

#[tokio::test]
async fn a_config_file_others_can_read_is_refused() {
    let user = User::new();
    user.write_config(&json!({ "racks": {} }));
    set_mode(&user.config_file(), 0o644);
    let (code, _, stderr) = user.run(&["racks"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn unknown_fields_in_the_config_file_are_kept() {
    let user = User::new();
    user.write_config(&json!({
        "current": "prod",
        "mfa_preference": "webauthn",
        "racks": {
            "prod": stored("https://gw.example.com", "rgs_a", Utc::now() + chrono::Duration::days(1)),
            "eu": { "device_id": "d-1", "url": "https://eu.example.com", "token": "rgs_b",
                    "email": "a@example.com", "expires_at": "2099-01-01T00:00:00Z", "session_id": "s" },
        },
    }));
    let (code, _, stderr) = user.run(&["switch", "eu"]).await;
    assert_eq!(code, 0, "{stderr}");
    let config = user.config();
    assert_eq!(config["current"], "eu");
    assert_eq!(config["mfa_preference"], "webauthn");
    assert_eq!(config["racks"]["eu"]["device_id"], "d-1");
}

#[tokio::test]
async fn without_home_or_config_dir_there_is_one_clear_line() {
    let mut user = User::new();
    user.env.clear();
    let (code, _, stderr) = user.run(&["racks"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: HOME is not set, so there is no default place for rack-gateway's credentials: set HOME or RACK_GATEWAY_CONFIG_DIR"
    );
}

#[tokio::test]
async fn login_refuses_a_bad_rack_name_or_plain_http_to_another_host() {
    let user = User::new();
    let (code, _, stderr) = user.run(&["login", "Prod", "https://gw.example.com"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not a rack name"), "{stderr}");
    let (code, _, stderr) = user.run(&["login", "prod", "http://gw.example.com"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("must use https"), "{stderr}");
}

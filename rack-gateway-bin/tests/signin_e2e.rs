//! Human sign-in end to end: `rack-gateway serve` on PostgreSQL, a mock rack, and a real OIDC
//! provider process (oidc-provider-mock) behind a tap that records the PKCE verifier and can
//! spoil signatures. The browser is a cookie jar over real sockets; the CLI is the real binary.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use common::audit::{exported_when, of_request};
use common::deploy::{create_token, fresh_database, gateway_env, start_gateway, start_mock_rack};
use common::http::{send, Reply};
use common::oidc::{free_port, OidcProvider};
use common::oidc_tap::ProviderTap;
use common::process::{run_command, DevGateway, Running};

const DOMAIN: &str = "example.com";

/// A gateway with Google sign-in pointed at a local provider, and what it runs on.
struct Deployment {
    provider: OidcProvider,
    tap: ProviderTap,
    base: String,
    env: HashMap<String, String>,
    database_url: String,
    _gateway: Running,
    _rack: Running,
}

impl Deployment {
    /// Users: ann (admin), bob (admin, but another Workspace), carol (admin, with an address in
    /// another domain), dave (admin, unverified), vic and frank (viewers).
    async fn start(extra: &[(&str, &str)]) -> Deployment {
        let provider = OidcProvider::start().await;
        let tap = ProviderTap::start(&provider, false).await;
        let database_url = fresh_database().await;
        let (rack, rack_url) = start_mock_rack().await;
        let port = free_port().to_string();
        let mut env = gateway_env(&database_url, &rack_url);
        let host = format!("127.0.0.1:{port}");
        for (key, value) in [
            ("PORT", port.as_str()),
            ("DOMAIN", host.as_str()),
            ("DEV_MODE", "true"),
            ("GOOGLE_CLIENT_ID", "rack-gateway-e2e"),
            ("GOOGLE_CLIENT_SECRET", "e2e-client-secret"),
            ("GOOGLE_OAUTH_BASE_URL", tap.url.as_str()),
            ("GOOGLE_ALLOWED_DOMAIN", DOMAIN),
            (
                "ADMIN_USERS",
                "Ann@Example.com,bob@example.com,carol@other.com,dave@example.com",
            ),
            ("VIEWER_USERS", "vic@example.com,frank@example.com"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            env.insert(key.to_owned(), value.to_owned());
        }
        let (gateway, base) = start_gateway(&env).await;
        let deployment = Deployment {
            provider,
            tap,
            base,
            env,
            database_url,
            _gateway: gateway,
            _rack: rack,
        };
        for user in ["ann", "vic", "frank"] {
            deployment
                .provider
                .set_user(user, workspace(&format!("{user}@example.com")))
                .await;
        }
        deployment
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn origin(&self) -> &str {
        &self.base
    }

    /// The whole browser flow for `sub`: login, the provider, the callback. Returns the
    /// callback's reply (the browser keeps the cookies).
    async fn browser_sign_in(&self, browser: &mut Browser, sub: &str, return_to: &str) -> Reply {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("returnTo", return_to)
            .finish();
        let start = browser
            .get(&self.url(&format!("/api/v1/auth/web/login?{query}")))
            .await;
        assert_eq!(start.status, StatusCode::FOUND, "{}", start.body);
        let to_provider = location(&start);
        let back = self.provider.authorize(&to_provider, sub).await;
        browser.get(&back).await
    }

    /// A signed-in browser for `sub`.
    async fn signed_in_browser(&self, sub: &str) -> Browser {
        let mut browser = Browser::default();
        let reply = self.browser_sign_in(&mut browser, sub, "/app/").await;
        assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
        assert!(browser.session().is_some(), "a session cookie");
        browser
    }

    /// The audit records of the request that got `reply`.
    async fn records_of(&self, reply: &Reply) -> Vec<Value> {
        let id = reply
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("x-request-id")
            .to_owned();
        let rows = exported_when(&self.env, |rows| !of_request(rows, &id).is_empty()).await;
        of_request(&rows, &id).into_iter().cloned().collect()
    }
}

/// A verified Workspace account of example.com.
fn workspace(email: &str) -> Value {
    json!({"email": email, "email_verified": true, "hd": DOMAIN, "name": email.split('@').next()})
}

fn location(reply: &Reply) -> String {
    reply
        .headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("JSON: {}", reply.body))
}

/// A browser's cookie jar (names only: the gateway's cookies are all for this one host).
#[derive(Default)]
struct Browser {
    jar: HashMap<String, String>,
}

impl Browser {
    async fn get(&mut self, url: &str) -> Reply {
        self.request(Method::GET, url, &[], Bytes::new()).await
    }

    async fn request(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let cookie = self
            .jar
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("cookie", &cookie));
        }
        let reply = send(method, url, &all, body).await;
        for set in set_cookies(&reply) {
            let pair = set.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if value.is_empty() || set.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        reply
    }

    fn session(&self) -> Option<&String> {
        self.jar.get("session_token")
    }
}

#[tokio::test]
async fn a_user_signs_in_in_the_browser_and_the_cookie_works_only_on_the_api() {
    let gw = Deployment::start(&[]).await;
    let mut browser = Browser::default();

    let start = browser
        .get(&gw.url("/api/v1/auth/web/login?returnTo=%2Fapp%2Fapps%3Ftab%3D1"))
        .await;
    assert_eq!(start.status, StatusCode::FOUND);
    let to_provider = url::Url::parse(&location(&start)).expect("URL");
    let query: HashMap<String, String> = to_provider.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["redirect_uri"],
        gw.url("/api/v1/auth/web/callback"),
        "http:// on DOMAIN with DEV_MODE"
    );
    let login_cookie = set_cookies(&start).join("\n");
    assert!(
        login_cookie.contains("rgw_login=") && login_cookie.contains("HttpOnly"),
        "the sign-in is bound to this browser: {login_cookie}"
    );
    let back = gw.provider.authorize(to_provider.as_str(), "ann").await;
    let callback = browser.get(&back).await;
    assert_eq!(callback.status, StatusCode::FOUND, "{}", callback.body);
    assert_eq!(location(&callback), "/app/apps?tab=1");
    let session_cookie = set_cookies(&callback)
        .into_iter()
        .find(|c| c.starts_with("session_token="))
        .expect("a session cookie");
    assert!(
        session_cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "HttpOnly, SameSite=Lax, Path=/, not Secure in DEV_MODE: {session_cookie}"
    );
    let secret = browser.session().cloned().expect("session");
    assert!(
        !browser.jar.contains_key("rgw_login"),
        "the login cookie is cleared"
    );
    // Only the hash of the secret is stored.
    let (client, connection) = tokio_postgres::connect(&gw.database_url, tokio_postgres::NoTls)
        .await
        .expect("pg");
    tokio::spawn(connection);
    let dump = client
        .query_one("SELECT string_agg(s::text, ' ') FROM sessions s", &[])
        .await
        .expect("sessions")
        .get::<_, Option<String>>(0)
        .unwrap_or_default();
    assert!(!dump.contains(&secret), "the session secret is not stored");

    let me = browser.get(&gw.url("/api/v1/me")).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let me = json_of(&me);
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["roles"], json!(["admin"]));
    assert!(me["permissions"].as_array().is_some_and(|p| !p.is_empty()));
    assert_eq!(me["session"]["kind"], "web");
    assert!(me["session"]["expires_at"].is_string());
    let csrf = me["csrf_token"].as_str().expect("a CSRF token").to_owned();

    let record = gw.records_of(&callback).await;
    assert_eq!(record.len(), 1);
    assert_eq!(record[0]["action"], "auth.login");
    assert_eq!(record[0]["decision"], "allow");
    assert_eq!(record[0]["actor_email"], "ann@example.com");
    let recorded = record[0].to_string();
    assert!(
        !recorded.contains(&secret) && !recorded.contains("code="),
        "no secret, code or state in the record: {recorded}"
    );

    // The cookie is no credential for the rack proxy.
    let proxied = browser.get(&gw.url("/api/v1/rack-proxy/apps")).await;
    assert_eq!(proxied.status, StatusCode::UNAUTHORIZED, "{}", proxied.body);
    assert!(
        proxied.body.contains("cookie"),
        "with a reason: {}",
        proxied.body
    );

    // CSRF: the token and the gateway's own Origin are both required.
    let own = gw.origin().to_owned();
    let logout = gw.url("/api/v1/auth/web/logout");
    for (headers, why) in [
        (vec![("origin", own.as_str())], "no token"),
        (
            vec![("origin", own.as_str()), ("x-csrf-token", "forged")],
            "a wrong token",
        ),
        (
            vec![("origin", "https://evil.example"), ("x-csrf-token", &csrf)],
            "a foreign Origin",
        ),
        (
            vec![
                ("referer", "https://evil.example/page"),
                ("x-csrf-token", &csrf),
            ],
            "a foreign Referer",
        ),
        (
            vec![("x-csrf-token", csrf.as_str())],
            "neither Origin nor Referer",
        ),
    ] {
        let refused = browser
            .request(Method::POST, &logout, &headers, Bytes::new())
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{why}: {}",
            refused.body
        );
    }
    let still = browser.get(&gw.url("/api/v1/me")).await;
    assert_eq!(
        still.status,
        StatusCode::OK,
        "refused sign-outs did nothing"
    );

    let done = browser
        .request(
            Method::POST,
            &logout,
            &[("origin", &own), ("x-csrf-token", &csrf)],
            Bytes::new(),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    assert!(browser.session().is_none(), "the cookie is cleared");
    let gone = send(
        Method::GET,
        &gw.url("/api/v1/me"),
        &[("cookie", &format!("session_token={secret}"))],
        Bytes::new(),
    )
    .await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "revoked server-side");
    let record = gw.records_of(&done).await;
    assert_eq!(record[0]["action"], "auth.logout");
}

/// One refused browser sign-in: its status, that the reason is shown, and that no session
/// cookie is set; returns the reply.
async fn refused(gw: &Deployment, sub: &str, status: StatusCode, reason: &str) -> Reply {
    let mut browser = Browser::default();
    let reply = gw.browser_sign_in(&mut browser, sub, "/app/").await;
    assert_eq!(reply.status, status, "{sub}: {}", reply.body);
    assert!(reply.body.contains(reason), "{sub}: {}", reply.body);
    assert!(
        set_cookies(&reply)
            .iter()
            .all(|c| !c.starts_with("session_token=")),
        "{sub}: no session cookie"
    );
    assert!(browser.session().is_none());
    let records = gw.records_of(&reply).await;
    assert_eq!(records.len(), 1, "{sub}");
    assert_eq!(records[0]["action"], "auth.login", "{sub}");
    assert_eq!(records[0]["decision"], "deny", "{sub}");
    assert!(
        records[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(reason)),
        "{sub}: recorded reason {}",
        records[0]["reason"]
    );
    reply
}

#[tokio::test]
async fn each_unacceptable_sign_in_is_refused_with_its_reason_and_recorded() {
    let gw = Deployment::start(&[]).await;
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            "bob",
            json!({"email": "bob@example.com", "email_verified": true, "hd": "other.com"}),
            "Google Workspace domain",
        ),
        (
            "carol",
            json!({"email": "carol@other.com", "email_verified": true, "hd": DOMAIN}),
            "not in the organisation's domain",
        ),
        (
            "dave",
            json!({"email": "dave@example.com", "email_verified": false, "hd": DOMAIN}),
            "not verified",
        ),
        ("erin", workspace("erin@example.com"), "unknown user"),
        (
            "aud",
            json!({"email": "ann@example.com", "email_verified": true, "hd": DOMAIN, "aud": "another-app"}),
            "issued for another application",
        ),
        (
            "iss",
            json!({"email": "ann@example.com", "email_verified": true, "hd": DOMAIN, "iss": "http://127.0.0.1:9/evil"}),
            "unexpected provider",
        ),
        (
            "expired",
            json!({"email": "ann@example.com", "email_verified": true, "hd": DOMAIN, "exp": now - 600, "iat": now - 1200}),
            "expired",
        ),
        (
            "nonce",
            json!({"email": "ann@example.com", "email_verified": true, "hd": DOMAIN, "nonce": "another-attempt"}),
            "does not belong to this sign-in attempt",
        ),
    ];
    for (sub, claims, reason) in cases {
        gw.provider.set_user(sub, claims).await;
        refused(&gw, sub, StatusCode::FORBIDDEN, reason).await;
    }

    // A locked user.
    let (code, _, stderr) = run_command(&["user", "lock", "frank@example.com"], &gw.env).await;
    assert_eq!(code, 0, "{stderr}");
    refused(&gw, "frank", StatusCode::FORBIDDEN, "locked").await;

    // A mis-signed ID token.
    gw.tap.spoil_signatures(true);
    refused(&gw, "ann", StatusCode::FORBIDDEN, "signature is not valid").await;
    gw.tap.spoil_signatures(false);

    // A replayed callback: the state is single use.
    let mut browser = Browser::default();
    let start = browser.get(&gw.url("/api/v1/auth/web/login")).await;
    let back = gw.provider.authorize(&location(&start), "ann").await;
    let login_cookie = browser.jar.get("rgw_login").cloned().expect("login cookie");
    assert_eq!(browser.get(&back).await.status, StatusCode::FOUND);
    let replay = send(
        Method::GET,
        &back,
        &[("cookie", &format!("rgw_login={login_cookie}"))],
        Bytes::new(),
    )
    .await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("replayed state"), "{}", replay.body);
    assert!(set_cookies(&replay)
        .iter()
        .all(|c| !c.starts_with("session_token=")));
    let records = gw.records_of(&replay).await;
    assert_eq!(records[0]["decision"], "deny");

    // A callback in another browser (no login cookie): login CSRF is refused.
    let start = Browser::default()
        .get(&gw.url("/api/v1/auth/web/login"))
        .await;
    let back = gw.provider.authorize(&location(&start), "ann").await;
    let elsewhere = Browser::default().get(&back).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::FORBIDDEN,
        "{}",
        elsewhere.body
    );
    assert!(elsewhere.body.contains("another browser"));

    // An expired state: ten minutes pass (moved in the database).
    let mut browser = Browser::default();
    let start = browser.get(&gw.url("/api/v1/auth/web/login")).await;
    let back = gw.provider.authorize(&location(&start), "ann").await;
    let (client, connection) = tokio_postgres::connect(&gw.database_url, tokio_postgres::NoTls)
        .await
        .expect("pg");
    tokio::spawn(connection);
    client
        .execute(
            "UPDATE login_states SET expires_at = now() - interval '1 second' \
             WHERE consumed_at IS NULL",
            &[],
        )
        .await
        .expect("age the sign-in");
    let late = browser.get(&back).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.body);
    assert!(late.body.contains("expired"), "{}", late.body);
    assert!(browser.session().is_none());
    let records = gw.records_of(&late).await;
    assert_eq!(records[0]["decision"], "deny");

    // A returnTo pointing off-site: the sign-in works and lands at home; the start says why.
    for off_site in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
    ] {
        let mut browser = Browser::default();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("returnTo", off_site)
            .finish();
        let start = browser
            .get(&gw.url(&format!("/api/v1/auth/web/login?{query}")))
            .await;
        let records = gw.records_of(&start).await;
        assert_eq!(records[0]["action"], "auth.login.start");
        assert!(
            records[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not a local path")),
            "{off_site}: {}",
            records[0]["reason"]
        );
        let back = gw.provider.authorize(&location(&start), "ann").await;
        let landed = browser.get(&back).await;
        assert_eq!(landed.status, StatusCode::FOUND);
        assert_eq!(location(&landed), "/app/", "{off_site}");
    }

    // A callback with a parameter given twice is refused before anything is used.
    let twice = send(
        Method::GET,
        &gw.url("/api/v1/auth/web/callback?state=a&state=b&code=c"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
}

/// A stand-in `convox` that calls `$RACK_URL/<first argument>` the way the Convox CLI does
/// (Basic credentials from the URL's user info).
fn install_convox(dir: &std::path::Path) -> String {
    let script = dir.join("convox");
    std::fs::write(
        &script,
        "#!/bin/sh\nexec curl --silent --show-error --fail-with-body \"$RACK_URL/$1\"\n",
    )
    .expect("write convox");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script.display().to_string()
}

#[tokio::test]
async fn the_cli_signs_in_runs_convox_and_signs_out() {
    let gw = Deployment::start(&[]).await;
    let home = tempfile::tempdir().expect("tempdir");
    let config_dir = home.path().join("config");
    let mut user_env = HashMap::from([
        (
            "RACK_GATEWAY_CONFIG_DIR".to_owned(),
            config_dir.display().to_string(),
        ),
        (
            "RACK_GATEWAY_CONVOX_BIN".to_owned(),
            install_convox(home.path()),
        ),
    ]);
    user_env.insert("HOME".to_owned(), home.path().display().to_string());

    let mut login = Running::start(&["login", "prod", &gw.base, "--no-browser"], &user_env);
    let auth_url = login
        .wait_for_line("/oauth2/authorize")
        .await
        .trim()
        .to_owned();
    let back = gw.provider.authorize(&auth_url, "ann").await;
    assert!(
        back.starts_with(&gw.url("/api/v1/auth/cli/callback")),
        "{back}"
    );
    let page = send(Method::GET, &back, &[], Bytes::new()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("ann@example.com"));
    let status = tokio::time::timeout(Duration::from_secs(30), login.child.wait())
        .await
        .expect("login finished")
        .expect("status");
    assert!(status.success(), "login: {}", login.drain().join("\n"));

    // The PKCE verifier went to the provider and is the one the challenge was made from.
    let challenge = url::Url::parse(&auth_url)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == "code_challenge")
        .map(|(_, v)| v.into_owned())
        .expect("challenge");
    let sent = gw.tap.verifiers();
    assert_eq!(sent.len(), 1, "one code exchange");
    let digest = ring::digest::digest(&ring::digest::SHA256, sent[0].as_bytes());
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()),
        challenge
    );

    // The stored credential is a CLI session token, private to the user.
    let config_file = config_dir.join("config.json");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&config_dir), 0o700);
    assert_eq!(mode(&config_file), 0o600);
    let stored = std::fs::read_to_string(&config_file).expect("config");
    let token = stored
        .split('"')
        .find(|part| part.starts_with("rgs_"))
        .expect("a session token in the config")
        .to_owned();

    let (code, stdout, stderr) = run_command(&["convox", "apps"], &user_env).await;
    assert_eq!(code, 0, "convox apps: {stdout}\n{stderr}");
    let apps: Value = serde_json::from_str(stdout.trim()).expect("the rack's JSON");
    assert!(apps.as_array().is_some_and(|a| !a.is_empty()), "{stdout}");

    // As Bearer on the API too; a CLI session needs no CSRF token.
    let me = send(
        Method::GET,
        &gw.url("/api/v1/me"),
        &[("authorization", &format!("Bearer {token}"))],
        Bytes::new(),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(json_of(&me)["session"]["kind"], "cli");
    assert_eq!(json_of(&me)["csrf_token"], Value::Null);
    // A CLI token is not a cookie.
    let as_cookie = send(
        Method::GET,
        &gw.url("/api/v1/me"),
        &[("cookie", &format!("session_token={token}"))],
        Bytes::new(),
    )
    .await;
    assert_eq!(as_cookie.status, StatusCode::UNAUTHORIZED);

    let (code, _, stderr) = run_command(&["logout"], &user_env).await;
    assert_eq!(code, 0, "logout: {stderr}");
    let after = common::http::get(&gw.url("/api/v1/rack-proxy/apps"), Some(&token)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
}

#[tokio::test]
async fn the_cli_sign_in_checks_its_verifier_and_reports_refusals() {
    let gw = Deployment::start(&[]).await;
    let post = |path: &str, body: Value| {
        let url = gw.url(path);
        async move {
            send(
                Method::POST,
                &url,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
        }
    };
    let start = post("/api/v1/auth/cli/start", json!({"device_name": "laptop"})).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let started = json_of(&start);
    let state = started["state"].as_str().expect("state").to_owned();
    let verifier = started["code_verifier"]
        .as_str()
        .expect("verifier")
        .to_owned();
    let complete = |verifier: String| {
        post(
            "/api/v1/auth/cli/complete",
            json!({"state": state, "code_verifier": verifier}),
        )
    };

    let pending = complete(verifier.clone()).await;
    assert_eq!(pending.status, StatusCode::ACCEPTED);
    let back = gw
        .provider
        .authorize(started["auth_url"].as_str().expect("url"), "ann")
        .await;
    assert_eq!(
        send(Method::GET, &back, &[], Bytes::new()).await.status,
        StatusCode::OK
    );

    // Someone who saw the URL but not the verifier cannot collect the session.
    let mut wrong = verifier.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    let stolen = complete(wrong).await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST, "{}", stolen.body);
    assert!(json_of(&stolen)["error"]
        .as_str()
        .is_some_and(|e| e.contains("code_verifier")));
    let records = gw.records_of(&stolen).await;
    assert_eq!(records[0]["decision"], "deny");

    let done = complete(verifier.clone()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let done = json_of(&done);
    assert_eq!(done["email"], "ann@example.com");
    assert!(done["token"]
        .as_str()
        .is_some_and(|t| t.starts_with("rgs_")));
    // Handed out once.
    assert_eq!(complete(verifier).await.status, StatusCode::BAD_REQUEST);
    // The session list shows the device.
    let sessions = send(
        Method::GET,
        &gw.url("/api/v1/sessions"),
        &[(
            "authorization",
            &format!("Bearer {}", done["token"].as_str().unwrap()),
        )],
        Bytes::new(),
    )
    .await;
    let sessions = json_of(&sessions);
    assert_eq!(sessions["sessions"][0]["device_name"], "laptop");
    assert_eq!(sessions["sessions"][0]["current"], true);

    // A refused CLI sign-in: the browser is told, and so is the polling CLI.
    let start = json_of(&post("/api/v1/auth/cli/start", json!({})).await);
    gw.provider
        .set_user("erin", workspace("erin@example.com"))
        .await;
    let back = gw
        .provider
        .authorize(start["auth_url"].as_str().expect("url"), "erin")
        .await;
    let page = send(Method::GET, &back, &[], Bytes::new()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("unknown user"));
    let told = post(
        "/api/v1/auth/cli/complete",
        json!({"state": start["state"], "code_verifier": start["code_verifier"]}),
    )
    .await;
    assert_eq!(told.status, StatusCode::FORBIDDEN);
    assert!(json_of(&told)["error"]
        .as_str()
        .is_some_and(|e| e.contains("unknown user")));

    // Bodies that are not the expected JSON are refused with a reason.
    let text = send(
        Method::POST,
        &gw.url("/api/v1/auth/cli/start"),
        &[("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let extra = post(
        "/api/v1/auth/cli/start",
        json!({"device_name": "x", "role": "admin"}),
    )
    .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn locking_a_user_ends_their_live_sessions_within_a_second() {
    let gw = Deployment::start(&[]).await;
    let mut browser = gw.signed_in_browser("vic").await;
    assert_eq!(
        browser.get(&gw.url("/api/v1/me")).await.status,
        StatusCode::OK
    );

    let (code, _, stderr) = run_command(&["user", "lock", "vic@example.com"], &gw.env).await;
    assert_eq!(code, 0, "{stderr}");
    let locked_at = Instant::now();
    loop {
        let me = browser.get(&gw.url("/api/v1/me")).await;
        if me.status == StatusCode::UNAUTHORIZED {
            assert!(me.body.contains("locked"), "{}", me.body);
            break;
        }
        assert!(
            locked_at.elapsed() < Duration::from_secs(1),
            "still signed in {:?} after the lock",
            locked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn administrators_list_and_revoke_other_users_sessions() {
    let gw = Deployment::start(&[]).await;
    let mut vic = gw.signed_in_browser("vic").await;
    let mut vic_again = gw.signed_in_browser("vic").await;
    let admin = create_token(&gw.env, "admin-e2e", "admin").await;
    let viewer = create_token(&gw.env, "viewer-e2e", "viewer").await;
    let call = |method: Method, path: &str, token: &str| {
        let url = gw.url(path);
        let auth = format!("Bearer {token}");
        async move { send(method, &url, &[("authorization", &auth)], Bytes::new()).await }
    };

    let listed = call(
        Method::GET,
        "/api/v1/users/vic@example.com/sessions",
        &admin,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let sessions = json_of(&listed)["sessions"]
        .as_array()
        .cloned()
        .expect("sessions");
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s["kind"] == "web"));
    let denied = call(
        Method::GET,
        "/api/v1/users/vic@example.com/sessions",
        &viewer,
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let first = sessions[0]["id"].as_str().expect("id");
    let revoke = format!("/api/v1/users/vic@example.com/sessions/{first}/revoke");
    assert_eq!(
        call(Method::POST, &revoke, &viewer).await.status,
        StatusCode::FORBIDDEN
    );
    let revoked = call(Method::POST, &revoke, &admin).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let records = gw.records_of(&revoked).await;
    assert_eq!(records[0]["action"], "session.revoke");
    let statuses = [
        vic.get(&gw.url("/api/v1/me")).await.status,
        vic_again.get(&gw.url("/api/v1/me")).await.status,
    ];
    assert!(
        statuses.contains(&StatusCode::UNAUTHORIZED) && statuses.contains(&StatusCode::OK),
        "exactly the revoked session ends: {statuses:?}"
    );

    let all = call(
        Method::POST,
        "/api/v1/users/vic@example.com/sessions/revoke_all",
        &admin,
    )
    .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(json_of(&all)["revoked"], 1);
    assert_eq!(
        vic.get(&gw.url("/api/v1/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        vic_again.get(&gw.url("/api/v1/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let records = gw.records_of(&all).await;
    assert!(
        records
            .iter()
            .filter(|r| r["action"] == "session.revoke")
            .count()
            >= 2
    );
}

#[tokio::test]
async fn an_idle_session_ends_after_the_timeout_and_its_expiry_is_recorded() {
    let gw = Deployment::start(&[("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "1")]).await;
    let mut browser = gw.signed_in_browser("ann").await;
    let me = json_of(&browser.get(&gw.url("/api/v1/me")).await);
    let expires_at: chrono::DateTime<chrono::Utc> = me["session"]["expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("time");
    let left = expires_at - chrono::Utc::now();
    assert!(
        left <= chrono::TimeDelta::seconds(61) && left > chrono::TimeDelta::seconds(20),
        "a one-minute idle limit: {left}"
    );
    tokio::time::sleep(Duration::from_secs(65)).await;
    let me = browser.get(&gw.url("/api/v1/me")).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    assert!(me.body.contains("expired"), "{}", me.body);
    let rows = exported_when(&gw.env, |rows| {
        rows.iter().any(|r| r["action"] == "session.expire")
    })
    .await;
    assert!(
        rows.iter().any(|r| r["action"] == "session.expire"
            && r["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("idle"))),
        "the expiry is an audit record"
    );
}

#[tokio::test]
async fn the_dev_link_opens_one_web_session_and_serve_has_no_such_route() {
    let mut dev = DevGateway::start().await;
    let line = dev.process.wait_for_line("sign in:").await;
    let link = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("a link")
        .to_owned();
    let mut browser = Browser::default();
    let first = browser.get(&link).await;
    assert_eq!(first.status, StatusCode::FOUND, "{}", first.body);
    let me = browser.get(&format!("{}/api/v1/me", dev.base)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(json_of(&me)["email"], "admin@dev.local");
    assert_eq!(json_of(&me)["session"]["kind"], "web");
    let again = Browser::default().get(&link).await;
    assert_eq!(
        again.status,
        StatusCode::FORBIDDEN,
        "one use: {}",
        again.body
    );

    let gw = Deployment::start(&[]).await;
    let path = link
        .split_once("/api/")
        .map(|(_, rest)| format!("/api/{rest}"))
        .expect("path");
    let absent = send(Method::GET, &gw.url(&path), &[], Bytes::new()).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND, "{}", absent.body);
}

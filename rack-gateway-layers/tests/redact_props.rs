//! Property: whatever env a release carries, the release read and list responses the
//! RedactLayer returns to an ops-level caller (`convox:env:read`, no `convox:secret:read`) never
//! contain a secret value or a URL password, and the viewer-level caller sees only masks.
//!
//! Secrets and passwords are drawn from upper-case `N`–`Z` runs (at least 8 characters in all),
//! which no other generated text uses, so "does not appear" cannot be an accident.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use rack_gateway_core::identity::{Principal, TokenPrincipal, UserPrincipal};
use rack_gateway_core::rbac::{Permission, Role};
use rack_gateway_core::redact::{EnvMap, SecretRules, MASK};
use rack_gateway_core::routes::RouteTable;
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::body::{self, Body};
use rack_gateway_layers::forward::{OriginPolicy, RackForward, RackTarget, RackTls};
use rack_gateway_layers::redact::{RedactLayer, StaticEnvPolicy};
use rack_gateway_layers::BoxError;
use serde_json::{json, Value};
use tower::{service_fn, ServiceBuilder, ServiceExt as _};

const PREFIX: &str = "/api/v1/rack-proxy";

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

const SECRET_KEYS: &[&str] = &[
    "DB_PASSWORD",
    "API_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "STRIPE_KEY",
    "AWS_ACCESS_KEY_ID",
    "private_pem",
    "Gcp_Credentials",
    "MYSQL_PASSWD",
    "license_blob",
    "APP_SECRET_ONLY",
];

const PLAIN_KEYS: &[&str] = &[
    "PORT",
    "NAME",
    "DATABASE_URL",
    "REDIS_URLS",
    "HOST",
    "MONKEY",
    "KEYS",
    "ÜBER",
];

/// A distinctive secret: `N`–`Z` runs around a few awkward characters.
fn secret() -> impl Strategy<Value = String> {
    "[N-Z]{4,8}[N-Z@:/?#!%+=&é日]{0,4}[N-Z]{4,8}"
        .prop_filter("no nested ://", |s| !s.contains("://"))
}

/// Plain text: never upper-case `N`–`Z`, never `@`, `:` or `/`.
fn plain() -> impl Strategy<Value = String> {
    "[a-m0-9 =._é日-]{0,12}"
}

/// A URL with credentials; yields the URL and its password.
fn credential_url() -> impl Strategy<Value = (String, String)> {
    let scheme = prop::sample::select(vec!["postgres", "redis", "mysql", "amqps", "x+y"]);
    let host = prop::sample::select(vec!["db", "db.internal:5432", "[::1]:5432", "h1,h2:27017"]);
    let path = prop::sample::select(vec![
        "",
        "/app",
        "/db?sslmode=require",
        "/x?mail=a@b.example",
    ]);
    (scheme, "[a-m]{0,6}", secret(), host, path).prop_map(|(scheme, user, password, host, path)| {
        (
            format!("{scheme}://{user}:{password}@{host}{path}"),
            password,
        )
    })
}

/// A value of URLs with credentials and plain text; yields it and the passwords in it.
fn url_list() -> impl Strategy<Value = (String, Vec<String>)> {
    let item = prop_oneof![
        credential_url().prop_map(|(url, password)| (url, vec![password])),
        plain().prop_map(|text| (text, Vec::new())),
    ];
    let separator = prop::sample::select(vec![",", " ", ";"]);
    (prop::collection::vec(item, 1..4), separator).prop_map(|(items, separator)| {
        let value = items
            .iter()
            .map(|(text, _)| text.as_str())
            .collect::<Vec<_>>()
            .join(separator);
        (value, items.into_iter().flat_map(|(_, s)| s).collect())
    })
}

/// One env entry: key, value, and the secrets the value holds.
fn env_entry() -> impl Strategy<Value = (String, String, Vec<String>)> {
    let secret_value = prop_oneof![
        secret().prop_map(|s| (s.clone(), vec![s])),
        url_list().prop_filter("holds a secret", |(_, secrets)| !secrets.is_empty()),
    ];
    let plain_value = prop_oneof![plain().prop_map(|text| (text, Vec::new())), url_list()];
    prop_oneof![
        (prop::sample::select(SECRET_KEYS), secret_value).prop_map(|(key, (value, secrets))| (
            key.to_owned(),
            value,
            secrets
        )),
        (prop::sample::select(PLAIN_KEYS), plain_value).prop_map(|(key, (value, secrets))| (
            key.to_owned(),
            value,
            secrets
        )),
    ]
}

fn env_text(entries: &[(String, String, Vec<String>)], crlf: bool) -> String {
    let newline = if crlf { "\r\n" } else { "\n" };
    entries
        .iter()
        .map(|(key, value, _)| format!("{key}={value}{newline}"))
        .collect()
}

fn ops() -> Principal {
    Principal::User(UserPrincipal {
        id: 1,
        email: "ops@example.com".into(),
        name: "Ops".into(),
        roles: vec![Role::Ops],
        session: None,
    })
}

fn token(permissions: &[&str]) -> Principal {
    Principal::ApiToken(TokenPrincipal {
        id: 2,
        public_id: uuid::Uuid::nil(),
        name: "t".into(),
        owner_email: None,
        owner_name: None,
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).expect("permission"))
            .collect(),
    })
}

fn rack() -> RackForward {
    RackForward::new(
        RackTarget {
            base: "http://127.0.0.1:9".parse().expect("base"),
            username: "convox".into(),
            token: "unused".into(),
            tls: RackTls::Verify,
            connect_timeout: Duration::from_secs(1),
            header_timeout: Duration::from_secs(1),
        },
        OriginPolicy::default(),
    )
    .expect("rack")
}

/// The body the RedactLayer returns to `principal` for `GET path`, the rack answering `answer`.
async fn through_layer(principal: Principal, path: &str, answer: Value) -> Value {
    let authorize = AuthorizeLayer::new(RouteTable::convox()).prefix(PREFIX);
    let policy = Arc::new(StaticEnvPolicy::new().secrets(["APP_SECRET_ONLY"]));
    let redact = RedactLayer::new(SecretRules::from_list("LICENSE_BLOB"), policy, rack());
    let upstream = service_fn(
        move |_request: Request<rack_gateway_layers::GatewayBody<Body>>| {
            let answer = answer.clone();
            async move {
                let mut response = Response::new(body::full(answer.to_string()));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                Ok::<_, BoxError>(response)
            }
        },
    );
    let service = ServiceBuilder::new()
        .layer(authorize)
        .layer(redact)
        .service(upstream);
    let mut request = Request::new(body::empty());
    *request.uri_mut() = format!("{PREFIX}{path}").parse().expect("uri");
    request.extensions_mut().insert(Arc::new(principal));
    let response = service.oneshot(request).await.expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("json")
}

/// No secret appears in `values`, whole or as a fragment (a run of 4+ `N`–`Z` letters).
fn assert_absent(values: &str, secrets: &[String]) -> Result<(), TestCaseError> {
    for secret in secrets {
        prop_assert!(
            !values.contains(secret.as_str()),
            "{secret:?} in {values:?}"
        );
    }
    let mut run = 0;
    for c in values.chars() {
        run = if ('N'..='Z').contains(&c) { run + 1 } else { 0 };
        prop_assert!(run < 4, "a secret fragment in {values:?}");
    }
    Ok(())
}

fn values(env: &EnvMap) -> String {
    env.iter().map(|(_, v)| v).collect::<Vec<_>>().join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ops_never_sees_a_secret(
        entries in prop::collection::vec(env_entry(), 0..12),
        crlf in any::<bool>(),
    ) {
        let secrets: Vec<String> = entries.iter().flat_map(|(_, _, s)| s.clone()).collect();
        let text = env_text(&entries, crlf);
        let release = json!({"id": "R1", "app": "web", "build": "B1", "env": text, "manifest": "", "description": "", "created": "2025-01-01T00:00:00Z"});

        // Ops lists releases (the matrix gives ops release:list, not release:read).
        let list = RUNTIME.block_on(through_layer(ops(), "/apps/web/releases", json!([release.clone(), release.clone()])));
        for item in list.as_array().expect("array") {
            let shown = EnvMap::parse(item["env"].as_str().expect("env"));
            assert_absent(&values(&shown), &secrets)?;
            prop_assert_eq!(shown.len(), EnvMap::parse(&text).len());
        }
        prop_assert!(secrets.iter().all(|s| !list.to_string().contains(s.as_str())));

        // A release read with the same env permissions.
        let reader = token(&["convox:release:read", "convox:env:read"]);
        let read = RUNTIME.block_on(through_layer(reader, "/apps/web/releases/R1", release.clone()));
        let shown = EnvMap::parse(read["env"].as_str().expect("env"));
        assert_absent(&values(&shown), &secrets)?;
        for (key, value) in shown.iter() {
            if SECRET_KEYS.contains(&key) {
                prop_assert_eq!(value, MASK);
            }
        }

        // Without convox:env:read, only masks.
        let blind = token(&["convox:release:read"]);
        let read = RUNTIME.block_on(through_layer(blind, "/apps/web/releases/R1", release));
        let shown = EnvMap::parse(read["env"].as_str().expect("env"));
        prop_assert!(shown.iter().all(|(_, v)| v == MASK));
    }
}

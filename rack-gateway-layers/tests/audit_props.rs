//! Property: whatever query string a request carries — fields with secret-looking names
//! (password, token, api_key, client_secret, session, auth, …) holding distinctive values, and
//! URLs with credentials in ordinary fields, written raw or percent-encoded — the records that
//! AuditLayer and AuditIntentLayer store (through a real AuditWriter over an EmbeddedStore) hold
//! no secret, raw or percent-decoded, and every request has exactly one record.
//!
//! Secrets are built around runs of at least five upper-case `N`–`Z` letters, which nothing else
//! in a record (names, hex MACs, ids, `[REDACTED]`, the mask) contains, so "no such run appears"
//! also catches a secret that leaked in pieces.

use std::collections::HashMap;
use std::sync::Arc;

use http::{Method, Request, Response};
use proptest::prelude::*;
use rack_gateway_core::audit::{AuditRecord, ChainKey, Phase};
use rack_gateway_core::redact::MASK;
use rack_gateway_core::store::{AuditFilter, AuditStore, EmbeddedStore, Store};
use rack_gateway_layers::audit::{
    AuditConfig, AuditIntentLayer, AuditLayer, AuditWriter, WriterConfig,
};
use rack_gateway_layers::body::{self, Body};
use rack_gateway_layers::BoxError;
use serde_json::Value;
use tower::{service_fn, ServiceBuilder, ServiceExt as _};

const PREFIX: &str = "/api/v1/rack-proxy";
const REDACTED: &str = "[REDACTED]";

/// Names the redaction must treat as sensitive (as they are sent, before any encoding).
const SENSITIVE_NAMES: &[&str] = &[
    "password",
    "Password",
    "PASSWD",
    "db_password",
    "token",
    "access_token",
    "refresh_token",
    "github_token",
    "api_key",
    "Api-Key",
    "x-api-key",
    "client_secret",
    "secret",
    "session",
    "sessionid",
    "auth",
    "authorization",
    "oauth_verifier",
    "cookie",
    "X-Amz-Signature",
    "private_key",
    "credentials",
    "env",
];

/// Ordinary names that get URLs with credentials.
const URL_NAMES: &[&str] = &[
    "db",
    "url",
    "next",
    "redirect_uri",
    "callback",
    "upstream",
    "dsn",
];

/// Ordinary names with ordinary values.
const PLAIN_NAMES: &[&str] = &[
    "app",
    "limit",
    "follow",
    "since",
    "service",
    "q",
    "description",
];

const PATHS: &[&str] = &[
    "/apps",
    "/apps/web/releases",
    "/apps/web/processes/p-1/exec",
    "/apps/api/builds/B1/logs",
    "/system",
];

/// How a name or value is written in the query string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// As is (only when the text is valid raw in a query value).
    Raw,
    /// Every byte but `A-Za-z0-9-._~` as `%XX`.
    Reserved,
    /// Every byte as `%XX`.
    Every,
    /// Every byte as `%xx` (lower-case hex).
    EveryLower,
    /// Only the byte at this position (modulo the length) as `%XX`.
    One(usize),
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Raw),
        Just(Encoding::Reserved),
        Just(Encoding::Every),
        Just(Encoding::EveryLower),
        any::<usize>().prop_map(Encoding::One),
    ]
}

fn encode(text: &str, encoding: Encoding) -> String {
    let escape = |byte: u8| format!("%{byte:02X}");
    let unreserved = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
    match encoding {
        Encoding::Raw => text.to_owned(),
        Encoding::Reserved => text
            .bytes()
            .map(|b| {
                if unreserved(b) {
                    char::from(b).to_string()
                } else {
                    escape(b)
                }
            })
            .collect(),
        Encoding::Every => text.bytes().map(escape).collect(),
        Encoding::EveryLower => text.bytes().map(|b| format!("%{b:02x}")).collect(),
        // A lone byte of a multi-byte character cannot be sent raw: encode such text whole.
        Encoding::One(_) if !text.is_ascii() => encode(text, Encoding::Reserved),
        Encoding::One(at) => {
            let at = at % text.len().max(1);
            text.bytes()
                .enumerate()
                .map(|(i, b)| {
                    if i == at {
                        escape(b)
                    } else {
                        char::from(b).to_string()
                    }
                })
                .collect()
        }
    }
}

/// Whether `value` may be sent raw as a query value: it cannot hold `&`, `#`, `%` or a space,
/// and the URI must parse.
fn raw_ok(value: &str) -> bool {
    !value.contains(['&', '#', '%', ' '])
        && value.is_ascii()
        && format!("/x?a={value}").parse::<http::Uri>().is_ok()
}

/// A value as sent: `encoding`, or Reserved when the value cannot go (mostly) raw.
fn encode_value(value: &str, encoding: Encoding) -> String {
    match encoding {
        Encoding::Raw | Encoding::One(_) if !raw_ok(value) => encode(value, Encoding::Reserved),
        other => encode(value, other),
    }
}

/// A distinctive secret: `N`–`Z` runs around a few awkward characters.
fn secret() -> impl Strategy<Value = String> {
    "[N-Z]{5,8}[N-Z!*~._:@/?$,;+&=#%'()\\[\\]{}|^` é日-]{0,4}[N-Z]{5,8}"
        .prop_filter("no nested ://", |s| !s.contains("://"))
}

/// A URL password: no whitespace, `"`, `<` or `>` (they end a URL), no nested `://`.
fn url_password() -> impl Strategy<Value = String> {
    "[N-Z]{5,8}[N-Z!*~._:@/?$,;+&=#%'()é日-]{0,4}[N-Z]{5,8}"
        .prop_filter("no nested ://", |s| !s.contains("://"))
}

/// A URL with credentials; yields the URL and its password.
fn credential_url() -> impl Strategy<Value = (String, String)> {
    let scheme = prop::sample::select(vec!["postgres", "redis", "mysql", "amqps", "mongodb+srv"]);
    let host = prop::sample::select(vec!["db", "db.internal:5432", "[::1]:5432", "cache:6379"]);
    let path = prop::sample::select(vec!["", "/app", "/db?sslmode=require", "/0"]);
    (scheme, "[a-m]{0,6}", url_password(), host, path).prop_map(
        |(scheme, user, password, host, path)| {
            (
                format!("{scheme}://{user}:{password}@{host}{path}"),
                password,
            )
        },
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A sensitive name: the value must become `[REDACTED]`.
    Sensitive,
    /// An ordinary name with a URL with credentials: the password must be masked.
    Url,
    /// An ordinary name and value: kept as sent.
    Plain,
}

#[derive(Clone, Debug)]
struct Field {
    /// The name as sent.
    name: String,
    /// The value as sent.
    value: String,
    kind: Kind,
    /// What must not appear in any record.
    secrets: Vec<String>,
}

impl Field {
    fn pair(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

fn field() -> impl Strategy<Value = Field> {
    let sensitive_name = prop::sample::select(SENSITIVE_NAMES);
    prop_oneof![
        (sensitive_name.clone(), encoding(), secret(), encoding()).prop_map(
            |(name, name_encoding, secret, value_encoding)| Field {
                name: encode(name, name_encoding),
                value: encode_value(&secret, value_encoding),
                kind: Kind::Sensitive,
                secrets: vec![secret],
            }
        ),
        (sensitive_name, encoding(), credential_url(), encoding()).prop_map(
            |(name, name_encoding, (url, password), value_encoding)| Field {
                name: encode(name, name_encoding),
                value: encode_value(&url, value_encoding),
                kind: Kind::Sensitive,
                secrets: vec![password],
            }
        ),
        (
            prop::sample::select(URL_NAMES),
            credential_url(),
            encoding()
        )
            .prop_map(|(name, (url, password), value_encoding)| Field {
                name: name.to_owned(),
                value: encode_value(&url, value_encoding),
                kind: Kind::Url,
                secrets: vec![password],
            }),
        (prop::sample::select(PLAIN_NAMES), "[a-m0-9._-]{0,8}").prop_map(|(name, value)| {
            Field {
                name: name.to_owned(),
                value,
                kind: Kind::Plain,
                secrets: Vec::new(),
            }
        }),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    method: Method,
    path: &'static str,
    fields: Vec<Field>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![Method::GET, Method::POST, Method::PUT, Method::DELETE]),
        prop::sample::select(PATHS),
        prop::collection::vec(field(), 1..7),
    )
        .prop_map(|(method, path, fields)| Case {
            method,
            path,
            fields,
        })
}

impl Case {
    fn query(&self) -> String {
        self.fields
            .iter()
            .map(Field::pair)
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Every request through AuditLayer → AuditIntentLayer → a trivial service; returns the stored
/// records once the writer has drained its queue and stopped.
async fn record(cases: &[Case]) -> Vec<AuditRecord> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).await.expect("store"));
    store.migrate().await.expect("migrate");
    let audit_store: Arc<dyn AuditStore> = store.clone();
    let (writer, task) = AuditWriter::spawn(
        audit_store,
        ChainKey::new(b"audit-props-test-key-0123456789abcdef"),
        WriterConfig::default(),
    );
    let inner = service_fn(|request: Request<Body>| async move {
        let status = if request.method() == Method::DELETE {
            http::StatusCode::NOT_FOUND
        } else {
            http::StatusCode::OK
        };
        let mut response = Response::new(body::full("ok"));
        *response.status_mut() = status;
        Ok::<_, BoxError>(response)
    });
    let stack = ServiceBuilder::new()
        .layer(AuditLayer::new(writer.clone(), AuditConfig::new(PREFIX)))
        .layer(AuditIntentLayer::new(writer.clone()))
        .service(inner);
    for (i, case) in cases.iter().enumerate() {
        let uri = format!("{PREFIX}{}?{}", case.path, case.query());
        let request = Request::builder()
            .method(case.method.clone())
            .uri(&uri)
            .header("x-request-id", format!("case-{i}"))
            .body(body::empty())
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let response = stack.clone().oneshot(request).await.expect("response");
        assert!(response.status().is_success() || response.status().is_client_error());
    }
    // Every writer handle goes: the task drains the queue and ends.
    drop(stack);
    drop(writer);
    task.finished().await;
    let filter = AuditFilter {
        oldest_first: true,
        ..AuditFilter::default()
    };
    store.audit_query(&filter, 100_000).await.expect("query")
}

/// Percent-decodes `text` once (malformed escapes kept), lossily as UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every string in `value` (keys too), and the strings inside JSON-in-a-string (`details`).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                serde_json::from_str::<Value>(text)
            {
                strings(&inner, out);
            }
            out.push(text.clone());
        }
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => {
            for (key, item) in map {
                out.push(key.clone());
                strings(item, out);
            }
        }
        _ => {}
    }
}

/// The longest run of `N`–`Z` letters in `text`.
fn longest_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if ('N'..='Z').contains(&c) { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

fn check(cases: &[Case], records: &[AuditRecord]) -> Result<(), TestCaseError> {
    // One `complete` record per request, and before it a durable `intent` for every request
    // that may change something: without the authorization layer there is no route to say
    // otherwise, so the method decides (fail closed).
    let writes = cases.iter().filter(|c| c.method != Method::GET).count();
    prop_assert_eq!(records.len(), cases.len() + writes, "records per request");
    let mut by_id: HashMap<&str, &AuditRecord> = HashMap::new();
    for record in records {
        if record.event.phase == Phase::Intent {
            continue;
        }
        prop_assert!(
            by_id
                .insert(record.event.request_id.as_str(), record)
                .is_none(),
            "two complete records for {}",
            record.event.request_id
        );
    }
    for (i, case) in cases.iter().enumerate() {
        let id = format!("case-{i}");
        let intents = records
            .iter()
            .filter(|r| r.event.request_id == id && r.event.phase == Phase::Intent)
            .count();
        prop_assert_eq!(
            intents,
            usize::from(case.method != Method::GET),
            "intents of {}",
            id
        );
    }

    // No secret anywhere, raw or percent-decoded, whole or in pieces.
    let secrets: Vec<&String> = cases
        .iter()
        .flat_map(|c| c.fields.iter().flat_map(|f| f.secrets.iter()))
        .collect();
    for record in records {
        let json = serde_json::to_value(record).expect("record serialises");
        let mut texts = Vec::new();
        strings(&json, &mut texts);
        for text in texts {
            for shown in [text.clone(), percent_decode(&text)] {
                for secret in &secrets {
                    prop_assert!(
                        !shown.contains(secret.as_str()),
                        "secret {:?} stored in {:?}",
                        secret,
                        shown
                    );
                }
                prop_assert!(
                    longest_run(&shown) < 5,
                    "a piece of a secret stored in {:?}",
                    shown
                );
            }
        }
    }

    // Each request's record: its path without the prefix, every pair kept in place, sensitive
    // values redacted, URL passwords masked, ordinary pairs unchanged.
    for (i, case) in cases.iter().enumerate() {
        let id = format!("case-{i}");
        let record = by_id.get(id.as_str());
        prop_assert!(record.is_some(), "no record for {}", id);
        let event = &record.expect("checked").event;
        prop_assert_eq!(event.method.as_deref(), Some(case.method.as_str()));
        let path = event.path.as_deref().unwrap_or_default();
        let (stored_path, stored_query) = path.split_once('?').unwrap_or((path, ""));
        prop_assert_eq!(stored_path, case.path);
        let pairs: Vec<&str> = stored_query.split('&').collect();
        prop_assert_eq!(pairs.len(), case.fields.len(), "pairs of {}", path);
        for (pair, field) in pairs.iter().zip(&case.fields) {
            match field.kind {
                Kind::Sensitive => {
                    prop_assert_eq!(*pair, format!("{}={REDACTED}", field.name))
                }
                Kind::Plain => prop_assert_eq!(*pair, field.pair()),
                Kind::Url => {
                    let prefix = format!("{}=", field.name);
                    prop_assert!(pair.starts_with(&prefix), "{} in {}", prefix, path);
                    prop_assert!(pair.contains(MASK), "no mask in {}", pair);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn no_secret_from_a_query_string_reaches_the_audit_trail(
        cases in prop::collection::vec(case(), 1..5),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let records = runtime.block_on(record(&cases));
        check(&cases, &records)?;
    }
}

#[test]
fn the_encodings_used_here_round_trip() {
    let text = "AB c/日&=%";
    for encoding in [Encoding::Reserved, Encoding::Every, Encoding::EveryLower] {
        assert_eq!(
            percent_decode(&encode(text, encoding)),
            text,
            "{encoding:?}"
        );
    }
    assert_eq!(encode("token", Encoding::One(1)), "t%6Fken");
    assert_eq!(percent_decode(&encode("a-b", Encoding::One(7))), "a-b");
    assert_eq!(encode("a b", Encoding::Raw), "a b");
    assert_eq!(encode_value("a b", Encoding::Raw), "a%20b");
    assert_eq!(percent_decode("%zz%4"), "%zz%4");
}

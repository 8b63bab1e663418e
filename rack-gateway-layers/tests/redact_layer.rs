//! RedactLayer over real sockets: a gateway stack (audit → rescue → test principal → authorize →
//! redact → audit intent → forward) in front of a small axum rack that stores posted release
//! envs verbatim, with a real AuditWriter over an embedded store.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::{Path, Query, Request as AxumRequest, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rack_gateway_core::audit::{AuditRecord, ChainKey};
use rack_gateway_core::identity::{Principal, TokenPrincipal, UserPrincipal};
use rack_gateway_core::rbac::{Permission, Role};
use rack_gateway_core::redact::{EnvMap, SecretRules, MASK};
use rack_gateway_core::routes::RouteTable;
use rack_gateway_core::store::{AuditFilter, AuditStore, EmbeddedStore, Store};
use rack_gateway_layers::audit::{
    AuditConfig, AuditDraft, AuditIntentLayer, AuditLayer, AuditWriter, WriterConfig,
};
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::forward::{OriginPolicy, RackForward, RackTarget, RackTls};
use rack_gateway_layers::redact::{RedactLayer, StaticEnvPolicy};
use rack_gateway_layers::rescue::RescueLayer;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

const PREFIX: &str = "/api/v1/rack-proxy";
const MIB: usize = 1024 * 1024;

const SECRET_KEY: &str = "mockrack-secret-key-3Fh8Lp1Zr6Tw";
const DB_PASSWORD: &str = "mockrack-db-pw-Q7xK2vN9";
const STRIPE_KEY: &str = "sk_live_mockrack-stripe-9Jd4Wq";
const RACK_PASSWORD: &str = "mockrack-param-pw-5Tg7";
const SECRET_VALUES: &[&str] = &[SECRET_KEY, DB_PASSWORD, STRIPE_KEY, RACK_PASSWORD];

fn seeded_env() -> String {
    format!(
        "NODE_ENV=production\nPORT=3000\nSECRET_KEY={SECRET_KEY}\n\
         DATABASE_URL=postgres://app:{DB_PASSWORD}@db.internal:5432/app\n\
         STRIPE_API_KEY={STRIPE_KEY}\nDB_HOST=db.internal\n"
    )
}

// ---------------------------------------------------------------------------------------------
// The fake rack.

#[derive(Default)]
struct RackState {
    /// Newest first.
    releases: Vec<Value>,
    posts: usize,
    /// Every request the rack saw: method, path and query, headers.
    seen: Vec<(String, String, HeaderMap)>,
}

type Shared = Arc<Mutex<RackState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, RackState> {
    state.lock().expect("rack state")
}

fn release(id: &str, env: &str) -> Value {
    json!({
        "id": id, "app": "web", "build": "B1", "env": env,
        "manifest": "services:\n  web:\n    port: 3000\n",
        "description": "", "created": "2025-01-01T00:00:00Z",
    })
}

async fn list_releases(
    State(state): State<Shared>,
    Path(app): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> AxumResponse {
    if app == "broken" {
        return (StatusCode::INTERNAL_SERVER_ERROR, "rack failure").into_response();
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let releases: Vec<Value> = lock(&state).releases.iter().take(limit).cloned().collect();
    Json(releases).into_response()
}

async fn get_release(
    State(state): State<Shared>,
    Path((_app, id)): Path<(String, String)>,
) -> AxumResponse {
    let found = lock(&state)
        .releases
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned();
    match found {
        Some(release) => Json(release).into_response(),
        None => (StatusCode::NOT_FOUND, "release not found").into_response(),
    }
}

async fn create_release(
    State(state): State<Shared>,
    Path(_app): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let mut state = lock(&state);
    state.posts += 1;
    let env = match form.get("env") {
        Some(env) => env.clone(),
        None => state.releases[0]["env"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    let new = release(&format!("R{}", state.releases.len() + 1), &env);
    state.releases.insert(0, new.clone());
    Json(new)
}

async fn system() -> Json<Value> {
    Json(json!({
        "name": "rack", "status": "running", "version": "3.21.0",
        "parameters": {"NodeType": "t3.large", "Password": RACK_PASSWORD, "LogDriver": "CloudWatch"},
    }))
}

async fn export_build() -> AxumResponse {
    let chunk = Bytes::from(vec![b'x'; MIB]);
    let stream =
        futures_util::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    (
        [(http::header::CONTENT_TYPE, "application/octet-stream")],
        AxumBody::from_stream(stream),
    )
        .into_response()
}

async fn start_process(headers: HeaderMap) -> Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    Json(json!({"id": "p-1", "environment": header("environment"), "env": header("env")}))
}

async fn record(State(state): State<Shared>, request: AxumRequest, next: Next) -> AxumResponse {
    let path = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_default();
    lock(&state).seen.push((
        request.method().to_string(),
        path,
        request.headers().clone(),
    ));
    next.run(request).await
}

fn rack_router(state: Shared) -> Router {
    Router::new()
        .route(
            "/apps/{app}/releases",
            get(list_releases).post(create_release),
        )
        .route("/apps/{app}/releases/{id}", get(get_release))
        .route("/apps/{app}/builds/{id}", get(export_build))
        .route(
            "/apps/{app}/services/{service}/processes",
            post(start_process),
        )
        .route("/apps/{app}/processes", get(|| async { Json(json!([])) }))
        .route("/system", get(system))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Callers.

fn user(email: &str, role: Role) -> Principal {
    Principal::User(UserPrincipal {
        id: 1,
        email: email.into(),
        name: email.into(),
        roles: vec![role],
        session: None,
    })
}

fn token(name: &str, permissions: &[&str]) -> Principal {
    Principal::ApiToken(TokenPrincipal {
        id: 7,
        public_id: uuid::Uuid::nil(),
        name: name.into(),
        owner_email: Some(format!("{name}@example.com")),
        owner_name: None,
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).expect("permission"))
            .collect(),
    })
}

/// Who the `x-test-as` header names.
fn caller(name: &str) -> Option<Principal> {
    Some(match name {
        "viewer" => user("viewer@example.com", Role::Viewer),
        "ops" => user("ops@example.com", Role::Ops),
        "deployer" => user("deployer@example.com", Role::Deployer),
        "admin" => user("admin@example.com", Role::Admin),
        // Reads releases but holds no env permission: every value masked.
        "reader" => token(
            "reader",
            &[
                "convox:release:read",
                "convox:release:list",
                "convox:rack:read",
            ],
        ),
        // Explicit secret:read.
        "secret-reader" => token(
            "secret-reader",
            &[
                "convox:release:read",
                "convox:release:list",
                "convox:env:read",
                "convox:secret:read",
            ],
        ),
        // Creates releases without env:set.
        "creator" => token(
            "creator",
            &[
                "convox:release:read",
                "convox:release:create",
                "convox:env:read",
            ],
        ),
        _ => return None,
    })
}

fn inject_principal(mut request: Request<AxumBody>) -> Request<AxumBody> {
    let principal = request
        .headers()
        .get("x-test-as")
        .and_then(|v| v.to_str().ok())
        .and_then(caller)
        .map(Arc::new);
    if let Some(principal) = principal {
        if let Some(note) = request.extensions().get::<AuditDraft>() {
            note.set_principal(Arc::clone(&principal));
        }
        request.extensions_mut().insert(principal);
    }
    request
}

// ---------------------------------------------------------------------------------------------
// The gateway.

struct Gateway {
    addr: SocketAddr,
    rack: Shared,
    store: Arc<EmbeddedStore>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

impl Gateway {
    async fn start(response_limit: usize) -> Gateway {
        let state: Shared = Arc::new(Mutex::new(RackState {
            releases: vec![release("R1", &seeded_env())],
            ..RackState::default()
        }));
        let rack_addr = serve(rack_router(state.clone())).await;

        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(EmbeddedStore::open(dir.path()).await.expect("store"));
        store.migrate().await.expect("migrate");
        let audit_store: Arc<dyn AuditStore> = store.clone();
        let (writer, _task) = AuditWriter::spawn(
            audit_store,
            ChainKey::new(b"redact-layer-test-key-0123456789abcdef"),
            WriterConfig::default(),
        );

        let forward = RackForward::new(
            RackTarget {
                base: format!("http://{rack_addr}").parse().expect("base"),
                username: "convox".into(),
                token: "rack-token".into(),
                tls: RackTls::Verify,
                connect_timeout: Duration::from_secs(2),
                header_timeout: Duration::from_secs(10),
            },
            OriginPolicy::default(),
        )
        .expect("forward");
        let authorize = AuthorizeLayer::new(RouteTable::convox()).prefix(PREFIX);
        let policy = Arc::new(StaticEnvPolicy::new().protected(["DB_HOST"]));
        let redact = RedactLayer::new(SecretRules::default(), policy, forward.clone())
            .response_limit(response_limit);
        let stack = ServiceBuilder::new()
            .layer(AuditLayer::new(writer.clone(), AuditConfig::new(PREFIX)))
            .layer(RescueLayer::new())
            .map_request(inject_principal)
            .layer(authorize)
            .layer(redact)
            .layer(AuditIntentLayer::new(writer))
            .service(forward);
        let addr = serve(Router::new().fallback_service(stack)).await;
        Gateway {
            addr,
            rack: state,
            store,
            client: Client::builder(TokioExecutor::new()).build_http(),
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        who: &str,
        headers: &[(&str, &str)],
        form: Option<String>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{PREFIX}{path}", self.addr))
            .header("x-test-as", who);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match form {
            Some(form) => {
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    request = request.header("content-type", "application/x-www-form-urlencoded");
                }
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self
            .client
            .request(request.body(body).expect("request"))
            .await
            .expect("gateway answered");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        if let Some(length) = parts.headers.get(http::header::CONTENT_LENGTH) {
            assert_eq!(
                length.to_str().expect("length"),
                body.len().to_string(),
                "Content-Length matches the body"
            );
        }
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn get(&self, path: &str, who: &str) -> Reply {
        self.send("GET", path, who, &[], None).await
    }

    async fn post_env(&self, who: &str, env: &str) -> Reply {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("description", "env change")
            .append_pair("env", env)
            .finish();
        self.send("POST", "/apps/web/releases", who, &[], Some(form))
            .await
    }

    fn stored_env(&self) -> EnvMap {
        let state = lock(&self.rack);
        EnvMap::parse(state.releases[0]["env"].as_str().expect("env"))
    }

    fn posts(&self) -> usize {
        lock(&self.rack).posts
    }

    /// Every audit record, once the writer has caught up with `expected` records at least.
    async fn records(&self, expected: usize) -> Vec<AuditRecord> {
        let filter = AuditFilter {
            oldest_first: true,
            ..AuditFilter::default()
        };
        let mut records = Vec::new();
        for _ in 0..100 {
            records = self
                .store
                .audit_query(&filter, 10_000)
                .await
                .expect("query");
            if records.len() >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        records
    }
}

fn env_of(value: &Value) -> EnvMap {
    EnvMap::parse(value["env"].as_str().expect("env string"))
}

fn assert_no_secrets(text: &str) {
    for secret in SECRET_VALUES {
        assert!(
            !text.contains(secret),
            "secret value {secret} leaked in: {text}"
        );
    }
}

/// The env as an ops or deployer user is shown it.
fn shown_env() -> String {
    seeded_env()
        .replace(SECRET_KEY, MASK)
        .replace(DB_PASSWORD, MASK)
        .replace(STRIPE_KEY, MASK)
        .replace("DB_HOST=db.internal", &format!("DB_HOST={MASK}"))
}

// ---------------------------------------------------------------------------------------------
// Responses.

#[tokio::test]
async fn release_reads_are_masked_per_caller() {
    let gw = Gateway::start(16 * MIB).await;

    // Without env:read every value is masked, in a read and in a list.
    let read = gw.get("/apps/web/releases/R1", "reader").await;
    assert_eq!(read.status, StatusCode::OK);
    let env = env_of(&read.json());
    assert_eq!(env.len(), 6);
    assert!(env.iter().all(|(_, v)| v == MASK), "{:?}", read.text());
    assert_eq!(read.json()["manifest"], release("R1", "")["manifest"]);
    let list = gw.get("/apps/web/releases", "reader").await;
    assert!(env_of(&list.json()[0]).iter().all(|(_, v)| v == MASK));
    assert_no_secrets(&list.text());

    // A viewer may not read releases at all (no convox:release:read / list in the matrix).
    assert_eq!(
        gw.get("/apps/web/releases/R1", "viewer").await.status,
        StatusCode::FORBIDDEN
    );

    // Ops lists releases: NODE_ENV visible, secrets, protected keys and URL passwords masked.
    let list = gw.get("/apps/web/releases", "ops").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_no_secrets(&list.text());
    let env = env_of(&list.json()[0]);
    assert_eq!(env.get("NODE_ENV"), Some("production"));
    assert_eq!(env.get("PORT"), Some("3000"));
    assert_eq!(env.get("SECRET_KEY"), Some(MASK));
    assert_eq!(env.get("STRIPE_API_KEY"), Some(MASK));
    assert_eq!(env.get("DB_HOST"), Some(MASK));
    assert_eq!(
        env.get("DATABASE_URL"),
        Some(format!("postgres://app:{MASK}@db.internal:5432/app").as_str())
    );

    // The deployer reads and lists the same way.
    for path in ["/apps/web/releases/R1", "/apps/web/releases?limit=1"] {
        let reply = gw.get(path, "deployer").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_no_secrets(&reply.text());
        let value = reply.json();
        let object = if value.is_array() { &value[0] } else { &value };
        assert_eq!(
            env_of(object).serialize(),
            EnvMap::parse(&shown_env()).serialize()
        );
    }

    // convox:secret:read (explicit token permission) sees every value.
    let read = gw.get("/apps/web/releases/R1", "secret-reader").await;
    assert_eq!(env_of(&read.json()), EnvMap::parse(&seeded_env()));
    assert!(read.text().contains(SECRET_KEY));
    // So does an admin.
    let read = gw.get("/apps/web/releases/R1", "admin").await;
    assert_eq!(env_of(&read.json()), EnvMap::parse(&seeded_env()));
}

#[tokio::test]
async fn rack_parameters_hide_secret_names() {
    let gw = Gateway::start(16 * MIB).await;
    let reply = gw.get("/system", "viewer").await;
    assert_eq!(reply.status, StatusCode::OK);
    let parameters = &reply.json()["parameters"];
    assert_eq!(parameters["NodeType"], "t3.large");
    assert_eq!(parameters["Password"], MASK);
    assert_no_secrets(&reply.text());
    let admin = gw.get("/system", "admin").await;
    assert_eq!(admin.json()["parameters"]["Password"], RACK_PASSWORD);
}

#[tokio::test]
async fn streams_without_env_are_not_buffered() {
    // With a 1 MiB buffer limit, a 64 MiB build export still passes: it is never buffered.
    let gw = Gateway::start(MIB).await;
    let request = Request::builder()
        .uri(format!("http://{}{PREFIX}/apps/web/builds/B1.tgz", gw.addr))
        .header("x-test-as", "viewer")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = gw.client.request(request).await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body().into_data_stream();
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.expect("chunk").len();
    }
    assert_eq!(total, 64 * MIB);

    // An env-bearing response over the limit is never relayed unmasked.
    let gw = Gateway::start(64).await;
    let reply = gw.get("/apps/web/releases/R1", "deployer").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(reply.text().contains("too large"), "{}", reply.text());
    assert_no_secrets(&reply.text());
}

// ---------------------------------------------------------------------------------------------
// Release create.

#[tokio::test]
async fn deployer_changes_one_variable_by_posting_the_masked_env_back() {
    let gw = Gateway::start(16 * MIB).await;
    let shown = gw.get("/apps/web/releases/R1", "deployer").await;
    let posted = env_of(&shown.json())
        .serialize()
        .replace("NODE_ENV=production", "NODE_ENV=staging");
    let reply = gw.post_env("deployer", &posted).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // The rack answers with the new release: masked too.
    assert_no_secrets(&reply.text());
    assert_eq!(env_of(&reply.json()).get("NODE_ENV"), Some("staging"));

    // Exactly that variable changed on the rack; every secret kept its value.
    let expected = EnvMap::parse(&seeded_env().replace("NODE_ENV=production", "NODE_ENV=staging"));
    assert_eq!(gw.stored_env(), expected);
    assert_eq!(gw.posts(), 1);
    let reads: Vec<String> = lock(&gw.rack)
        .seen
        .iter()
        .filter(|(m, _, _)| m == "GET")
        .map(|(_, p, _)| p.clone())
        .collect();
    assert!(
        reads.iter().any(|p| p == "/apps/web/releases?limit=1"),
        "{reads:?}"
    );

    // One env.set event for it, and no value in clear anywhere in the audit trail.
    let records = gw.records(4).await;
    let env_events: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.event.action.starts_with("env.") || r.event.action.starts_with("secret."))
        .collect();
    assert_eq!(env_events.len(), 1, "{env_events:?}");
    let event = &env_events[0].event;
    assert_eq!(event.action, "env.set");
    assert_eq!(event.resource.as_deref(), Some("web/NODE_ENV"));
    assert_eq!(event.details, r#"{"new":"[REDACTED]","old":"[REDACTED]"}"#);
    assert_eq!(event.actor_email, "deployer@example.com");
    assert!(event.reason.contains("convox:env:set"), "{}", event.reason);
    let all = serde_json::to_string(&records).expect("records");
    assert_no_secrets(&all);
    assert!(
        !all.contains("staging") && !all.contains("production"),
        "{all}"
    );
    assert!(records
        .iter()
        .any(|r| r.event.action == "release.create" && r.event.phase.as_str() == "intent"));
}

#[tokio::test]
async fn secret_changes_need_secret_set_and_nothing_reaches_the_rack() {
    let gw = Gateway::start(16 * MIB).await;
    let posted = shown_env().replace(&format!("SECRET_KEY={MASK}"), "SECRET_KEY=new-secret-value");
    let reply = gw.post_env("deployer", &posted).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.text(),
        "You don't have permission to modify secrets.\n"
    );
    assert_eq!(gw.posts(), 0, "the rack saw no POST");
    assert_eq!(gw.stored_env(), EnvMap::parse(&seeded_env()));

    // Refused before the intent: the trail holds one deny record, without the value.
    let records = gw.records(1).await;
    let creates: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.event.action == "release.create")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(creates[0].event.phase.as_str(), "complete");
    assert_eq!(creates[0].event.decision.as_str(), "deny");
    assert!(
        creates[0].event.reason.contains("SECRET_KEY"),
        "{}",
        creates[0].event.reason
    );
    assert!(!serde_json::to_string(&records)
        .expect("json")
        .contains("new-secret-value"));

    // An admin (convox:secret:set) may: one secret.set event.
    let reply = gw.post_env("admin", &posted).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(gw.stored_env().get("SECRET_KEY"), Some("new-secret-value"));
    assert_eq!(gw.stored_env().get("STRIPE_API_KEY"), Some(STRIPE_KEY));
    let records = gw.records(4).await;
    let secret_events: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.event.action == "secret.set")
        .collect();
    assert_eq!(secret_events.len(), 1);
    assert_eq!(
        secret_events[0].event.resource.as_deref(),
        Some("web/SECRET_KEY")
    );
    assert!(!serde_json::to_string(&records)
        .expect("json")
        .contains("new-secret-value"));
}

#[tokio::test]
async fn protected_keys_cannot_change() {
    let gw = Gateway::start(16 * MIB).await;
    let changed = shown_env().replace(&format!("DB_HOST={MASK}"), "DB_HOST=evil.example");
    let reply = gw.post_env("admin", &changed).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.text(),
        "Environment variable DB_HOST is protected and cannot be changed.\n"
    );
    let removed = shown_env().replace(&format!("DB_HOST={MASK}\n"), "");
    let reply = gw.post_env("deployer", &removed).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.text().contains("DB_HOST"));
    assert_eq!(gw.posts(), 0);
}

#[tokio::test]
async fn removal_rules() {
    let gw = Gateway::start(16 * MIB).await;
    // Without convox:env:set: unchanged is fine, a removal is not.
    let reply = gw.post_env("creator", &shown_env()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(gw.stored_env(), EnvMap::parse(&seeded_env()));
    let without_port = shown_env().replace("PORT=3000\n", "");
    let reply = gw.post_env("creator", &without_port).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.text(),
        "You don't have permission to modify environment variables.\n"
    );
    assert_eq!(gw.posts(), 1);

    // The deployer removes a plain key, not a secret.
    let reply = gw.post_env("deployer", &without_port).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(!gw.stored_env().contains_key("PORT"));
    assert_eq!(gw.stored_env().get("SECRET_KEY"), Some(SECRET_KEY));
    let without_secret = shown_env().replace(&format!("STRIPE_API_KEY={MASK}\n"), "");
    let reply = gw.post_env("deployer", &without_secret).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.text(),
        "You don't have permission to modify secrets.\n"
    );

    // A masked value for a key without a stored value is refused, not stored literally.
    let reply = gw
        .post_env("admin", &format!("{}NEW_TOKEN={MASK}\n", shown_env()))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("NEW_TOKEN"));

    let records = gw.records(8).await;
    let unsets: Vec<&str> = records
        .iter()
        .filter(|r| r.event.action.ends_with(".unset"))
        .filter_map(|r| r.event.resource.as_deref())
        .collect();
    assert_eq!(unsets, ["web/PORT"]);
    assert_no_secrets(&serde_json::to_string(&records).expect("json"));
}

#[tokio::test]
async fn env_outside_the_form_body_is_refused() {
    let gw = Gateway::start(16 * MIB).await;
    let reply = gw
        .send(
            "POST",
            "/apps/web/releases?env=SECRET_KEY%3Dx",
            "admin",
            &[],
            Some("description=x".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = gw
        .send(
            "POST",
            "/apps/web/releases",
            "deployer",
            &[("env", "SECRET_KEY=x")],
            Some("description=x".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = gw
        .send(
            "POST",
            "/apps/web/releases",
            "deployer",
            &[("content-type", "multipart/form-data; boundary=x")],
            Some("--x\r\nContent-Disposition: form-data; name=\"env\"\r\n\r\nSECRET_KEY=x\r\n--x--\r\n".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let twice = "env=A%3D1&env=SECRET_KEY%3Dx";
    let reply = gw
        .send(
            "POST",
            "/apps/web/releases",
            "deployer",
            &[],
            Some(twice.into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // Over the 1 MiB form limit.
    let huge = format!("description={}&env=A%3D1", "x".repeat(MIB + 1));
    let reply = gw
        .send("POST", "/apps/web/releases", "deployer", &[], Some(huge))
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // The current env cannot be read: 502, nothing posted.
    let reply = gw
        .send(
            "POST",
            "/apps/broken/releases",
            "deployer",
            &[],
            Some("env=A%3D1".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(reply.text().contains("500"), "{}", reply.text());
    assert_eq!(gw.posts(), 0);

    // Without an env field, the release create passes through untouched.
    let reply = gw
        .send(
            "POST",
            "/apps/web/releases",
            "deployer",
            &[],
            Some("build=B2".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(gw.posts(), 1);
    assert_eq!(gw.stored_env(), EnvMap::parse(&seeded_env()));
}

// ---------------------------------------------------------------------------------------------
// Env request headers.

#[tokio::test]
async fn env_headers_need_env_set() {
    let gw = Gateway::start(16 * MIB).await;
    let run = "/apps/web/services/web/processes";
    let reply = gw
        .send(
            "POST",
            run,
            "deployer",
            &[("environment", "FOO=bar&TOKEN=t0ps3cret")],
            Some(String::new()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["environment"], "FOO=bar&TOKEN=t0ps3cret");

    // Ops may start processes, but not with env.
    let reply = gw
        .send(
            "POST",
            run,
            "ops",
            &[("environment", "FOO=bar")],
            Some(String::new()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.text(),
        "You don't have permission to set environment variables.\n"
    );
    assert_eq!(
        reply.headers.get("x-error-reason").map(|v| v.as_bytes()),
        Some(&b"You don't have permission to set environment variables."[..])
    );
    // A viewer neither, on a route they may otherwise use.
    let reply = gw
        .send(
            "GET",
            "/apps/web/processes",
            "viewer",
            &[("env", "A=1")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = gw.get("/apps/web/processes", "viewer").await;
    assert_eq!(reply.status, StatusCode::OK);

    let starts = lock(&gw.rack)
        .seen
        .iter()
        .filter(|(_, path, _)| path.starts_with(run))
        .count();
    assert_eq!(starts, 1, "only the deployer's run reached the rack");

    // The header values never reach the audit trail.
    let records = gw.records(5).await;
    let all = serde_json::to_string(&records).expect("json");
    assert!(
        !all.contains("t0ps3cret") && !all.contains("FOO=bar"),
        "{all}"
    );
}

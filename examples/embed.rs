//! Embedding the rack-gateway layers in another Rust service.
//!
//! The layers are ordinary `tower` layers, so any service that takes `http::Request`s and
//! answers `http::Response<rack_gateway_layers::Body>` can sit behind them, not only
//! `RackForward`. This example is a small internal "rack status" service that answers
//! Convox-shaped read paths from its own in-memory data:
//!
//! ```text
//! GET /status/apps                    -> [{"name": "web", ...}, ...]   (needs convox:app:list)
//! GET /status/apps/{app}              -> {"name": "web", ...}          (needs convox:app:read)
//! GET /status/apps/{app}/processes    -> [{"id": ..., ...}, ...]       (needs convox:process:list)
//! ```
//!
//! It is wrapped, outermost first, in
//!
//! - `RescueLayer`: an `Err` from anything inside becomes a one-line 5xx; details are logged,
//!   never shown;
//! - `AuthenticateLayer`: `Authorization: Basic base64(convox:<token>)` or `Bearer <token>` is
//!   resolved (with a short-lived cache) against the identity store, or the request is 401;
//! - `AuthorizeLayer::new("/status", Policy::default())`: the prefix is removed and the rest of
//!   the path is classified against the gateway's Convox route allow-list and checked against
//!   the caller's permissions: 400 for an ambiguous path, 404 for a route outside the
//!   allow-list, 403 for a missing permission. The status service is only called for allowed
//!   requests.
//!
//! The identities live in an `EmbeddedStore` in a temporary directory. Two API tokens are made
//! directly through the `Store` trait: a viewer token (the `viewer` role's permissions) and a
//! "dashboard" token with an explicit list that can read apps but not processes. The service is
//! served on `127.0.0.1:0` with hyper-util, and a hyper client sends requests with and without
//! credentials and with too little permission. Each status and body is printed and checked;
//! the process exits non-zero if any answer is not as expected.
//!
//! `AuthorizeLayer` also puts a `RackPath` and a `Decision` in the request extensions for
//! `RackForward` and outer audit layers; the status service routes on its own path and ignores
//! them. It does read the `Arc<Principal>` that `AuthenticateLayer` inserted, to say who asked.
//!
//! ```sh
//! cargo run -p rack-gateway-examples --example embed
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use rack_gateway_core::identity::{ApiTokenSecret, IdentityResolver, NewApiToken, ResolverConfig};
use rack_gateway_core::rbac::{Policy, Role};
use rack_gateway_core::store::{EmbeddedStore, Store};
use rack_gateway_layers::authn::{principal_of, AuthenticateLayer};
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::rescue::RescueLayer;
use rack_gateway_layers::{body, Body, BoxError};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt as _};

/// Where the status service is mounted; `AuthorizeLayer` removes it before classifying.
const PREFIX: &str = "/status";

/// One app as the status service knows it.
struct App {
    name: &'static str,
    status: &'static str,
    release: &'static str,
    /// `None` when this app's process source is down (the service then fails with `Err`).
    processes: Option<Vec<Process>>,
}

/// One running process.
struct Process {
    id: &'static str,
    service: &'static str,
    status: &'static str,
    started: &'static str,
}

/// The status service's own in-memory data.
fn seed() -> Vec<App> {
    vec![
        App {
            name: "web",
            status: "running",
            release: "RWEB0003",
            processes: Some(vec![
                Process {
                    id: "web-7d9c5b8f4-k2x9q",
                    service: "web",
                    status: "running",
                    started: "2025-01-10T09:30:00Z",
                },
                Process {
                    id: "worker-5f6b7c8d9-m4p7r",
                    service: "worker",
                    status: "running",
                    started: "2025-01-10T09:30:05Z",
                },
            ]),
        },
        App {
            name: "billing",
            status: "running",
            release: "RBIL0012",
            processes: None,
        },
    ]
}

/// The embedding service itself: answers from `apps`, knows nothing about tokens or roles.
async fn status_service(
    apps: Arc<Vec<App>>,
    request: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let caller = principal_of(&request).map_or_else(|| "-".to_owned(), |p| p.label());
    let path = request.uri().path().strip_prefix(PREFIX).unwrap_or("");
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let find = |name: &str| apps.iter().find(|app| app.name == name);
    let (status, value) = match (request.method(), segments.as_slice()) {
        (&Method::GET, ["apps"]) => (
            StatusCode::OK,
            json!(apps.iter().map(app_json).collect::<Vec<_>>()),
        ),
        (&Method::GET, ["apps", name]) => match find(name) {
            Some(app) => (StatusCode::OK, app_json(app)),
            None => no_such_app(name),
        },
        (&Method::GET, ["apps", name, "processes"]) => match find(name) {
            Some(app) => {
                let processes = app.processes.as_ref().ok_or_else(|| {
                    // An infrastructure failure: RescueLayer turns it into a 500 and logs it.
                    BoxError::from(format!("process source for {} timed out", app.name))
                })?;
                let list: Vec<Value> = processes
                    .iter()
                    .map(|p| {
                        json!({
                            "id": p.id,
                            "app": app.name,
                            "name": p.service,
                            "release": app.release,
                            "status": p.status,
                            "started": p.started,
                        })
                    })
                    .collect();
                (StatusCode::OK, json!(list))
            }
            None => no_such_app(name),
        },
        _ => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
    };
    let mut response = Response::new(body::full(serde_json::to_vec(&value)?));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert("x-status-caller", HeaderValue::from_str(&caller)?);
    Ok(response)
}

fn app_json(app: &App) -> Value {
    json!({"name": app.name, "status": app.status, "release": app.release, "generation": "3"})
}

fn no_such_app(name: &str) -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"error": format!("no such app: {name}")}),
    )
}

/// Serves `service` on `listener` (HTTP/1.1 and HTTP/2) until the task is dropped.
async fn serve<S>(listener: TcpListener, service: S)
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            let per_connection =
                hyper::service::service_fn(move |request| service.clone().oneshot(request));
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), per_connection)
                .await;
        });
    }
}

/// Stores a token with `permissions` and returns its plaintext (shown only once).
async fn create_token(
    store: &dyn Store,
    name: &str,
    role: Option<Role>,
    permissions: Vec<String>,
) -> String {
    let secret = ApiTokenSecret::generate();
    store
        .insert_token(&NewApiToken {
            name: name.to_owned(),
            hash: secret.hash(),
            owner_id: None,
            permissions,
            role: role.map(|r| r.name().to_owned()),
            created_by: Some("embed example".to_owned()),
            expires_at: None,
        })
        .await
        .expect("storing a token in the embedded store");
    secret.expose().to_owned()
}

/// One request to send and what must come back.
struct Case {
    what: &'static str,
    method: Method,
    path: &'static str,
    authorization: Option<String>,
    status: StatusCode,
    body_contains: &'static str,
}

#[tokio::main]
async fn main() -> ExitCode {
    // 1. The identity store and the resolver (one per process, shared by every connection).
    let data_dir = tempfile::tempdir().expect("creating a temporary directory");
    let store = EmbeddedStore::open(data_dir.path())
        .await
        .expect("opening the embedded store");
    store.migrate().await.expect("migrating the embedded store");
    let store: Arc<dyn Store> = Arc::new(store);

    let viewer = create_token(
        store.as_ref(),
        "status-viewer",
        Some(Role::Viewer),
        Role::Viewer
            .permissions()
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
    )
    .await;
    let dashboard = create_token(
        store.as_ref(),
        "status-dashboard",
        None,
        vec!["convox:app:list".to_owned(), "convox:app:read".to_owned()],
    )
    .await;
    let resolver = IdentityResolver::start(Arc::clone(&store), ResolverConfig::default())
        .await
        .expect("starting the identity resolver");

    // 2. The stack: the layers around the service's own handler.
    let (authorize, _policy) = AuthorizeLayer::new(PREFIX, Policy::default());
    let apps = Arc::new(seed());
    let stack = ServiceBuilder::new()
        .layer(RescueLayer::new())
        .layer(AuthenticateLayer::new(resolver))
        .layer(authorize)
        .service_fn(move |request| status_service(Arc::clone(&apps), request));

    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("binding 127.0.0.1:0");
    let address: SocketAddr = listener.local_addr().expect("reading the bound address");
    let server = tokio::spawn(serve(listener, stack));
    println!("rack status service with the gateway layers on http://{address}{PREFIX}");
    println!();

    // 3. Requests, each checked.
    let basic = |token: &str| format!("Basic {}", STANDARD.encode(format!("convox:{token}")));
    let bearer = |token: &str| format!("Bearer {token}");
    let cases = [
        Case {
            what: "no credentials",
            method: Method::GET,
            path: "/status/apps",
            authorization: None,
            status: StatusCode::UNAUTHORIZED,
            body_contains: "missing authorization",
        },
        Case {
            what: "a well-formed token the store does not know",
            method: Method::GET,
            path: "/status/apps",
            authorization: Some(bearer(ApiTokenSecret::generate().expose())),
            status: StatusCode::UNAUTHORIZED,
            body_contains: "invalid API token",
        },
        Case {
            what: "viewer lists apps (Basic convox:<token>, as the Convox CLI sends it)",
            method: Method::GET,
            path: "/status/apps",
            authorization: Some(basic(&viewer)),
            status: StatusCode::OK,
            body_contains: r#""name":"web""#,
        },
        Case {
            what: "viewer lists processes (Bearer)",
            method: Method::GET,
            path: "/status/apps/web/processes",
            authorization: Some(bearer(&viewer)),
            status: StatusCode::OK,
            body_contains: r#""id":"web-7d9c5b8f4-k2x9q""#,
        },
        Case {
            what: "allowed, but the status service has no such app (its own 404)",
            method: Method::GET,
            path: "/status/apps/nope/processes",
            authorization: Some(bearer(&viewer)),
            status: StatusCode::NOT_FOUND,
            body_contains: "no such app: nope",
        },
        Case {
            what: "viewer may not restart an app (refused before the service is called)",
            method: Method::POST,
            path: "/status/apps/web/restart",
            authorization: Some(bearer(&viewer)),
            status: StatusCode::FORBIDDEN,
            body_contains: "permission denied: convox:app:restart required",
        },
        Case {
            what: "dashboard token reads an app",
            method: Method::GET,
            path: "/status/apps/web",
            authorization: Some(basic(&dashboard)),
            status: StatusCode::OK,
            body_contains: r#""release":"RWEB0003""#,
        },
        Case {
            what: "dashboard token lacks convox:process:list",
            method: Method::GET,
            path: "/status/apps/web/processes",
            authorization: Some(basic(&dashboard)),
            status: StatusCode::FORBIDDEN,
            body_contains: "convox:process:list required; not in the token's permissions",
        },
        Case {
            what: "a route outside the Convox allow-list",
            method: Method::GET,
            path: "/status/secrets",
            authorization: Some(bearer(&viewer)),
            status: StatusCode::NOT_FOUND,
            body_contains: "route not allowed by the gateway: GET /secrets",
        },
        Case {
            what: "an ambiguous path is refused, not normalised",
            method: Method::GET,
            path: "/status/apps/web/../../system",
            authorization: Some(bearer(&viewer)),
            status: StatusCode::BAD_REQUEST,
            body_contains: "dot segment",
        },
        Case {
            what: "the service fails: RescueLayer answers 500 and hides the details",
            method: Method::GET,
            path: "/status/apps/billing/processes",
            authorization: Some(bearer(&viewer)),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body_contains: "internal gateway error",
        },
    ];

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut failures = 0;
    for case in &cases {
        let mut request = Request::builder()
            .method(case.method.clone())
            .uri(format!("http://{address}{}", case.path));
        if let Some(authorization) = &case.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request.body(Empty::new()).expect("building a request");
        let response = client.request(request).await.expect("sending a request");
        let status = response.status();
        let caller = response
            .headers()
            .get("x-status-caller")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("reading a response body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_end();
        let ok = status == case.status && text.contains(case.body_contains);
        if !ok {
            failures += 1;
        }
        println!(
            "[{}] {}\n     {} {} -> {}{}",
            if ok { "ok" } else { "UNEXPECTED" },
            case.what,
            case.method,
            case.path,
            status,
            caller.map_or_else(String::new, |c| format!(" (served for {c})")),
        );
        println!("     {text}");
        if !ok {
            println!(
                "     expected {} with a body containing {:?}",
                case.status, case.body_contains
            );
        }
    }

    server.abort();
    println!();
    if failures == 0 {
        println!("all {} answers as expected", cases.len());
        ExitCode::SUCCESS
    } else {
        println!("{failures} of {} answers were not as expected", cases.len());
        ExitCode::FAILURE
    }
}

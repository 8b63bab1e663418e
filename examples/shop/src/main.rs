//! An order service of its own, written with axum, behind the rack-gateway layers: nothing here
//! is about Convox.
//!
//! ```text
//! GET  /api/orders              order.list    needs shop:order:list    (clerk, manager)
//! GET  /api/orders/{id}         order.read    needs shop:order:read    (clerk, manager)
//! POST /api/orders/{id}/refund  order.refund  needs shop:order:refund  (manager)
//! ```
//!
//! What it shows:
//!
//! - the shop's roles as data (a [`RoleSet`] read from TOML, `manager` inheriting `clerk`) and
//!   its route table built in code with [`RouteTable::builder`], checked against those roles
//!   so that a route naming a permission no role has stops start-up;
//! - the layers around an axum `Router`, outermost first: `AuditLayer` (one `complete` record
//!   per request, refusals included), `RescueLayer` (errors become 5xx, so axum gets the
//!   `Infallible` service it serves), `AuthenticateLayer`, `AuthorizeLayer` (the shop's table
//!   under `/api`) and `AuditIntentLayer` (a refund runs only once its `intent` record is
//!   durable). Each layer is generic over the body inside it; the one conversion to axum's body
//!   type is at the edge;
//! - the handlers reading what the layers left in the request extensions: the caller
//!   (`Arc<Principal>`), the route's `Decision` and the request's `AuditDraft` (the refund
//!   handler reads its intent's seq and adds the amount to the `complete` record); a refusal of
//!   the handler's own carries a `GatewayReason`, so that its record says `deny`, not `allow`;
//! - identities and the audit chain in the embedded SQLite store (`EmbeddedStore`, in a
//!   temporary directory); tokens issued through it with the permissions of a role.
//!
//! It serves on `127.0.0.1:0`, sends real HTTP requests over sockets (allowed, no credential,
//! too little permission, a refund twice, an unknown route), checks each answer, shuts the server down so that
//! the audit writer drains, then reads the records back with `AuditStore::audit_query`, checks
//! them request by request and verifies the HMAC chain with the core verifier. It prints what it
//! checked and exits non-zero if anything was not as expected.
//!
//! ```sh
//! cargo run -p rack-gateway-example-shop
//! ```
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router, ServiceExt as _};
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use rack_gateway_core::audit::{AuditDecision, AuditRecord, ChainKey, Keyring, Phase, Verifier};
use rack_gateway_core::identity::{
    ApiTokenSecret, IdentityResolver, NewApiToken, Principal, ResolverConfig,
};
use rack_gateway_core::rbac::RoleSet;
use rack_gateway_core::routes::{Route, RouteMethod, RouteTable, RouteTableError};
use rack_gateway_core::store::{AuditFilter, AuditStore, EmbeddedStore, Store};
use rack_gateway_layers::audit::{
    AuditConfig, AuditDraft, AuditIntentLayer, AuditLayer, AuditWriter, PeerAddr, WriterConfig,
};
use rack_gateway_layers::authn::AuthenticateLayer;
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::body::GatewayReason;
use rack_gateway_layers::decision::Decision;
use rack_gateway_layers::rescue::RescueLayer;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;

/// Where the shop's API is mounted. The authorization layer matches paths below it against the
/// table, and the audit layer records them without it.
const PREFIX: &str = "/api";

/// The shop's roles. `manager` inherits everything a `clerk` may do.
const ROLES: &str = r#"
[role.clerk]
permissions = ["shop:order:list", "shop:order:read"]

[role.manager]
inherits = ["clerk"]
permissions = ["shop:order:refund"]
"#;

/// The HMAC key of the audit chain. A real service reads it from a secret (32 bytes or more) and
/// keeps it: records can only be verified with the key that made them.
const AUDIT_KEY: &[u8] = b"shop example audit key, not a real secret";

/// The shop's routes: permission and audit action per row, checked against its roles.
fn route_table(roles: &RoleSet) -> Result<RouteTable, RouteTableError> {
    use RouteMethod::{Get, Post};
    RouteTable::builder()
        .route(Route::new(Get, "/orders", "shop:order:list", "order.list"))
        .route(Route::new(
            Get,
            "/orders/{id}",
            "shop:order:read",
            "order.read",
        ))
        // POST rows count as mutating: the intent layer makes their intent durable first.
        .route(Route::new(
            Post,
            "/orders/{id}/refund",
            "shop:order:refund",
            "order.refund",
        ))
        .check_permissions(roles)
        .build()
}

// ---------------------------------------------------------------------------------------------
// The shop itself: axum handlers, called only for requests the layers let through.

/// Orders by id; `refunded_by` is set once.
type Orders = Arc<Mutex<BTreeMap<String, Order>>>;

struct Order {
    item: &'static str,
    amount_cents: u64,
    refunded_by: Option<String>,
}

fn order_json(id: &str, order: &Order) -> Value {
    json!({
        "id": id,
        "item": order.item,
        "amount_cents": order.amount_cents,
        "refunded_by": order.refunded_by,
    })
}

fn no_such_order() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "no such order"})),
    )
        .into_response()
}

async fn list_orders(
    State(orders): State<Orders>,
    Extension(caller): Extension<Arc<Principal>>,
) -> Json<Value> {
    let orders = orders.lock().unwrap_or_else(PoisonError::into_inner);
    let list: Vec<Value> = orders.iter().map(|(id, o)| order_json(id, o)).collect();
    Json(json!({"caller": caller.label(), "orders": list}))
}

/// Also echoes what the authorization layer decided for this request.
async fn read_order(
    State(orders): State<Orders>,
    Path(id): Path<String>,
    Extension(caller): Extension<Arc<Principal>>,
    Extension(decision): Extension<Decision>,
) -> Response {
    let orders = orders.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(order) = orders.get(&id) else {
        return no_such_order();
    };
    let action = decision.route.as_ref().map(|m| m.route.action.to_string());
    Json(json!({
        "order": order_json(&id, order),
        "caller": caller.label(),
        "action": action,
        "grant": decision.reason,
    }))
    .into_response()
}

/// Runs only after the intent layer made this request's `intent` record durable.
async fn refund_order(
    State(orders): State<Orders>,
    Path(id): Path<String>,
    Extension(caller): Extension<Arc<Principal>>,
    Extension(draft): Extension<AuditDraft>,
) -> Response {
    let mut orders = orders.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(order) = orders.get_mut(&id) else {
        return no_such_order();
    };
    if order.refunded_by.is_some() {
        let mut refused = (
            StatusCode::CONFLICT,
            Json(json!({"error": "already refunded"})),
        )
            .into_response();
        // Without a `GatewayReason` the audit layer records a request the route allowed as
        // allowed, whatever the status; with one, as refused for this reason.
        refused
            .extensions_mut()
            .insert(GatewayReason(format!("order {id} is already refunded")));
        return refused;
    }
    order.refunded_by = Some(caller.label());
    // Goes into the request's `complete` record (details must hold no secret).
    draft.add_detail("amount_cents", json!(order.amount_cents));
    Json(json!({
        "order": order_json(&id, order),
        "intent_seq": draft.intent_seq(),
    }))
    .into_response()
}

fn handlers(orders: Orders) -> Router {
    let api = Router::new()
        .route("/orders", get(list_orders))
        .route("/orders/{id}", get(read_order))
        .route("/orders/{id}/refund", post(refund_order))
        .with_state(orders);
    Router::new().nest(PREFIX, api)
}

/// The audit layer records the client address from [`PeerAddr`], which the server must put in
/// each request; axum's connect info has it.
fn with_peer_addr<B>(mut request: Request<B>) -> Request<B> {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let peer = PeerAddr(*peer);
        request.extensions_mut().insert(peer);
    }
    request
}

// ---------------------------------------------------------------------------------------------
// The demonstration: issue tokens, serve, send requests, read the audit chain back.

/// Stores a token named `name` with the permissions of `role`; returns its plaintext, which
/// exists only here (the store keeps its SHA-256).
async fn issue_token(
    store: &EmbeddedStore,
    roles: &RoleSet,
    name: &str,
    role: &str,
) -> ApiTokenSecret {
    let permissions = roles
        .permissions_of(role)
        .expect("the role is in the role set")
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let secret = ApiTokenSecret::generate();
    store
        .insert_token(&NewApiToken {
            name: name.to_owned(),
            hash: secret.hash(),
            owner_id: None,
            permissions,
            role: Some(role.to_owned()),
            created_by: Some("shop example".to_owned()),
            expires_at: None,
        })
        .await
        .expect("storing a token in the embedded store");
    secret
}

/// One request to send and what it must leave behind.
struct Case<'a> {
    /// Sent as `x-request-id`, which the audit layer records as the request id (a real service
    /// sets one at its edge, e.g. with tower-http's request-id layer): it ties records to requests.
    request_id: &'static str,
    what: &'static str,
    method: Method,
    path: &'static str,
    token: Option<&'a ApiTokenSecret>,
    status: StatusCode,
    body_contains: &'static str,
    action: &'static str,
    decision: AuditDecision,
    /// Part of the reason the `complete` record gives.
    reason_contains: &'static str,
    /// Whether an `intent` record must precede the `complete` one.
    intent: bool,
}

/// Sends one request on a connection of its own and returns the status and body text.
async fn send(
    address: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&ApiTokenSecret>,
    request_id: &str,
) -> (StatusCode, String) {
    let stream = TcpStream::connect(address)
        .await
        .expect("connecting to the shop");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake with the shop");
    let connection = tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, address.to_string())
        .header("x-request-id", request_id);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {}", token.expose()));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .expect("building a request");
    let response = sender
        .send_request(request)
        .await
        .expect("sending a request to the shop");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("reading a response body")
        .to_bytes();
    // Closing our end ends the server's connection too: the graceful shutdown waits for that.
    drop(sender);
    let _ = connection.await;
    (status, String::from_utf8_lossy(&body).trim_end().to_owned())
}

/// Prints one line per check and counts the failures.
#[derive(Default)]
struct Checks {
    passed: usize,
    failed: usize,
}

impl Checks {
    fn that(&mut self, ok: bool, what: &str) {
        if ok {
            self.passed += 1;
            println!("    ok    {what}");
        } else {
            self.failed += 1;
            println!("    FAIL  {what}");
        }
    }

    fn equal<T: PartialEq + Debug>(&mut self, what: &str, got: T, expected: T) {
        if got == expected {
            self.that(true, &format!("{what}: {got:?}"));
        } else {
            self.that(
                false,
                &format!("{what}: got {got:?}, expected {expected:?}"),
            );
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let roles = RoleSet::from_toml(ROLES).expect("the shop's roles are valid");
    let table = route_table(&roles).expect("the shop's route table is valid");

    // Identities and the audit chain: the embedded store in a temporary directory.
    let data = tempfile::tempdir().expect("creating a temporary directory");
    let store = Arc::new(
        EmbeddedStore::open(data.path())
            .await
            .expect("opening the embedded store"),
    );
    store.migrate().await.expect("migrating the embedded store");
    let clerk = issue_token(&store, &roles, "clara-clerk", "clerk").await;
    let manager = issue_token(&store, &roles, "mo-manager", "manager").await;

    let resolver = IdentityResolver::start(Arc::clone(&store), ResolverConfig::default())
        .await
        .expect("starting the identity resolver");
    let key = ChainKey::new(AUDIT_KEY);
    let (writer, writer_task) =
        AuditWriter::spawn(store.clone(), key.clone(), WriterConfig::default());

    let orders: Orders = Arc::new(Mutex::new(BTreeMap::from([
        (
            "1001".to_owned(),
            Order {
                item: "teapot",
                amount_cents: 3_450,
                refunded_by: None,
            },
        ),
        (
            "1002".to_owned(),
            Order {
                item: "kettle",
                amount_cents: 5_900,
                refunded_by: None,
            },
        ),
    ])));

    let service = ServiceBuilder::new()
        // axum serves one body type: the layers' nested bodies become it here, once.
        .map_response(|response: http::Response<_>| response.map(axum::body::Body::new))
        .map_request(with_peer_addr::<axum::body::Body>)
        .layer(AuditLayer::new(writer.clone(), AuditConfig::new(PREFIX)))
        .layer(RescueLayer::new())
        .layer(AuthenticateLayer::new(resolver))
        .layer(AuthorizeLayer::new(Arc::new(table)).prefix(PREFIX))
        .layer(AuditIntentLayer::new(writer))
        .service(handlers(orders));

    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("binding 127.0.0.1:0");
    let address = listener.local_addr().expect("reading the bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            service.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    println!(
        "shop on http://{address}{PREFIX} (roles: clerk, manager; tokens: clara-clerk, mo-manager)"
    );

    let cases = [
        Case {
            request_id: "shop-1",
            what: "a clerk lists the orders",
            method: Method::GET,
            path: "/api/orders",
            token: Some(&clerk),
            status: StatusCode::OK,
            body_contains: r#""caller":"token:clara-clerk""#,
            action: "order.list",
            decision: AuditDecision::Allow,
            reason_contains: "shop:order:list granted by token permission shop:order:list",
            intent: false,
        },
        Case {
            request_id: "shop-2",
            what: "a clerk reads an order; the handler sees the route's decision",
            method: Method::GET,
            path: "/api/orders/1001",
            token: Some(&clerk),
            status: StatusCode::OK,
            body_contains: r#""grant":"shop:order:read granted by token permission shop:order:read""#,
            action: "order.read",
            decision: AuditDecision::Allow,
            reason_contains: "shop:order:read granted by token permission shop:order:read",
            intent: false,
        },
        Case {
            request_id: "shop-3",
            what: "no credential",
            method: Method::GET,
            path: "/api/orders",
            token: None,
            status: StatusCode::UNAUTHORIZED,
            body_contains: "missing authorization",
            action: "auth.failed",
            decision: AuditDecision::Deny,
            reason_contains: "authentication failed: missing authorization",
            intent: false,
        },
        Case {
            request_id: "shop-4",
            what: "a clerk may not refund (refused before the handler)",
            method: Method::POST,
            path: "/api/orders/1001/refund",
            token: Some(&clerk),
            status: StatusCode::FORBIDDEN,
            body_contains: "shop:order:refund required; not in the token's permissions",
            action: "order.refund",
            decision: AuditDecision::Deny,
            reason_contains: "shop:order:refund required",
            intent: false,
        },
        Case {
            request_id: "shop-5",
            what: "a manager refunds; its intent is durable before the handler runs",
            method: Method::POST,
            path: "/api/orders/1001/refund",
            token: Some(&manager),
            status: StatusCode::OK,
            body_contains: r#""refunded_by":"token:mo-manager""#,
            action: "order.refund",
            decision: AuditDecision::Allow,
            reason_contains: "shop:order:refund granted by token permission shop:order:refund",
            intent: true,
        },
        Case {
            request_id: "shop-6",
            what: "a manager refunds the same order again: the handler refuses",
            method: Method::POST,
            path: "/api/orders/1001/refund",
            token: Some(&manager),
            status: StatusCode::CONFLICT,
            body_contains: "already refunded",
            action: "order.refund",
            decision: AuditDecision::Deny,
            reason_contains: "order 1001 is already refunded",
            intent: true,
        },
        Case {
            request_id: "shop-7",
            what: "a route the table does not have",
            method: Method::GET,
            path: "/api/customers",
            token: Some(&manager),
            status: StatusCode::NOT_FOUND,
            body_contains: "route not allowed by the gateway: GET /customers",
            action: "route.unknown",
            decision: AuditDecision::Deny,
            reason_contains: "route not allowed by the gateway: GET /customers",
            intent: false,
        },
    ];

    let mut checks = Checks::default();
    let mut answers = Vec::new();
    println!("\nrequests:");
    for case in &cases {
        let (status, body) = send(
            address,
            case.method.clone(),
            case.path,
            case.token,
            case.request_id,
        )
        .await;
        println!(
            "  [{}] {}: {} {} -> {status}\n        {body}",
            case.request_id, case.what, case.method, case.path
        );
        checks.equal("status", status, case.status);
        checks.that(
            body.contains(case.body_contains),
            &format!("body contains {:?}", case.body_contains),
        );
        answers.push(body);
    }

    // Stop serving: the graceful shutdown waits for every connection, after which no clone of
    // the service (and so of the audit writer) is left, and the writer drains its queue.
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("serving the shop");
    writer_task.finished().await;

    let records = store
        .audit_query(
            &AuditFilter {
                oldest_first: true,
                ..AuditFilter::default()
            },
            1_000,
        )
        .await
        .expect("reading the audit records");
    println!("\naudit records ({}):", records.len());
    for record in &records {
        println!(
            "  seq {:>2}  {:<12} {:<8} {:<20} {:<5} {:>3}  {:<22} {}",
            record.seq,
            record.event.request_id,
            record.event.phase.as_str(),
            record.event.action,
            record.event.decision.as_str(),
            record.event.http_status,
            record.event.token_name.as_deref().unwrap_or("-"),
            record.event.details,
        );
    }

    println!("\nrecords per request:");
    for (case, answer) in cases.iter().zip(&answers) {
        println!("  [{}]", case.request_id);
        let mine: Vec<&AuditRecord> = records
            .iter()
            .filter(|r| r.event.request_id == case.request_id)
            .collect();
        let phases: Vec<Phase> = mine.iter().map(|r| r.event.phase).collect();
        let expected_phases = if case.intent {
            vec![Phase::Intent, Phase::Complete]
        } else {
            vec![Phase::Complete]
        };
        checks.equal("phases, in chain order", phases, expected_phases);
        let Some(complete) = mine.iter().find(|r| r.event.phase == Phase::Complete) else {
            continue;
        };
        checks.equal("action", complete.event.action.as_str(), case.action);
        checks.equal("decision", complete.event.decision, case.decision);
        checks.equal("status", complete.event.http_status, case.status.as_u16());
        checks.that(
            complete.event.reason.contains(case.reason_contains),
            &format!("reason: {:?}", complete.event.reason),
        );
        checks.equal(
            "client address",
            complete.event.client_ip.as_deref(),
            Some("127.0.0.1"),
        );
        let Some(intent) = mine.iter().find(|r| r.event.phase == Phase::Intent) else {
            continue;
        };
        let details: Value =
            serde_json::from_str(&complete.event.details).expect("details are JSON");
        checks.equal(
            "the complete record names the intent's seq",
            details["intent_seq"].as_u64(),
            Some(intent.seq),
        );
        if case.status == StatusCode::OK {
            checks.equal(
                "the handler saw the same seq",
                serde_json::from_str::<Value>(answer).expect("a JSON answer")["intent_seq"]
                    .as_u64(),
                Some(intent.seq),
            );
            checks.equal(
                "the handler's detail is recorded",
                details["amount_cents"].as_u64(),
                Some(3_450),
            );
        }
    }

    // The chain: every MAC recomputed, every link checked, from where the stored chain starts.
    let start = store
        .audit_start()
        .await
        .expect("reading where the chain starts");
    let mut verifier = Verifier::new(Keyring::new(key, vec![]), start);
    let verified = records
        .iter()
        .try_for_each(|record| verifier.check(record))
        .map(|()| verifier.checked());
    println!("\nchain:");
    checks.equal(
        "core verifier (records checked)",
        verified,
        Ok(records.len() as u64),
    );

    println!();
    if checks.failed == 0 {
        println!("all {} checks passed", checks.passed);
        ExitCode::SUCCESS
    } else {
        println!(
            "{} of {} checks FAILED",
            checks.failed,
            checks.passed + checks.failed
        );
        ExitCode::FAILURE
    }
}

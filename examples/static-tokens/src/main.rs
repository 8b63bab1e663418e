//! The rack-gateway layers over a plain hyper service, with storage of its own: no database, no
//! axum, no store backend in `rack-gateway-core`.
//!
//! The service is a trivial stock service (`GET /stock/{sku}`, `PUT /stock/{sku}`). Its route
//! table is a TOML text ([`RouteTable::from_toml`]). Around it, outermost first: `AuditLayer`,
//! `RescueLayer`, `AuthenticateLayer`, `AuthorizeLayer` and `AuditIntentLayer`. The layers need
//! two things from storage, each a narrow trait implemented here in a few dozen lines:
//!
//! - [`IdentitySource`](rack_gateway_core::identity::IdentitySource): [`token_file`], static API
//!   tokens read from a TOML file that holds only the SHA-256 of each token, its name, a public
//!   id and its permissions;
//! - [`AuditSink`](rack_gateway_core::audit::AuditSink): [`jsonl_chain`], the HMAC-chained
//!   audit records as JSON lines in a file, sealed with `rack_gateway_core::audit::seal` under a
//!   mutex.
//!
//! The example writes the token file, serves on `127.0.0.1:0`, sends real HTTP requests over
//! sockets (allowed, no credential, too little permission, an allowed write), stops the server
//! so that the audit writer drains, then reads the JSON lines back and verifies them with the
//! core verifier (accepted). Then it edits one field of one line, as someone hiding a refusal
//! would, and shows that the verifier rejects the chain at that record's seq. It prints what it
//! checked and exits non-zero if anything was not as expected.
//!
//! ```sh
//! cargo run -p rack-gateway-example-static-tokens
//! ```
#![forbid(unsafe_code)]

mod jsonl_chain;
mod token_file;

use std::convert::Infallible;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rack_gateway_core::audit::{
    AuditDecision, AuditRecord, ChainHead, ChainKey, Keyring, Phase, Tamper, Verifier,
};
use rack_gateway_core::identity::{ApiTokenSecret, IdentityResolver, ResolverConfig};
use rack_gateway_core::routes::RouteTable;
use rack_gateway_layers::audit::{
    AuditConfig, AuditIntentLayer, AuditLayer, AuditWriter, PeerAddr, WriterConfig,
};
use rack_gateway_layers::authn::{principal_of, AuthenticateLayer};
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::rescue::RescueLayer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::{ServiceBuilder, ServiceExt as _};

use jsonl_chain::JsonLinesChain;
use token_file::StaticTokens;

/// The stock service's routes, as a service would keep them in a configuration file.
const ROUTES: &str = r#"
[[route]]
method = "GET"
pattern = "/stock/{sku}"
permission = "inventory:stock:read"
action = "stock.read"

[[route]]
method = "PUT"
pattern = "/stock/{sku}"
permission = "inventory:stock:write"
action = "stock.write"
"#;

/// The HMAC key of the audit chain. A real service reads it from a secret (32 bytes or more).
const AUDIT_KEY: &[u8] = b"static-tokens example audit key, not a real secret";

/// The service being protected: it answers whatever reaches it; the layers decide what does.
async fn stock(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let caller = principal_of(&request).map_or_else(|| "-".to_owned(), |p| p.label());
    let sku = request.uri().path().rsplit('/').next().unwrap_or_default();
    let text = if request.method() == Method::PUT {
        format!("{sku}: restocked by {caller}\n")
    } else {
        format!("{sku}: 12 in stock (asked by {caller})\n")
    };
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Writes the token file: names, public ids, permissions and SHA-256 hashes, never the tokens.
fn write_token_file(path: &Path, tokens: &[(&str, &ApiTokenSecret, &[&str])]) {
    let mut text = String::from("# Static API tokens. Only hashes: this file grants nothing.\n");
    for (name, secret, permissions) in tokens {
        // Debug quoting is valid TOML for these plain names and permission strings.
        text.push_str(&format!(
            "\n[[token]]\nname = {name:?}\nid = \"{}\"\nsha256 = \"{}\"\npermissions = {permissions:?}\n",
            uuid::Uuid::new_v4(),
            secret.hash().to_hex(),
        ));
    }
    std::fs::write(path, text).expect("writing the token file");
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
        .expect("connecting to the service");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake with the service");
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
        .expect("sending a request to the service");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("reading a response body")
        .to_bytes();
    // Closing our end ends the server's connection task, which the shutdown waits for.
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

/// Checks every record from genesis; the first problem, or how many records verified.
fn verify(key: &ChainKey, records: &[AuditRecord]) -> Result<u64, Tamper> {
    let mut verifier = Verifier::new(Keyring::new(key.clone(), vec![]), ChainHead::genesis());
    for record in records {
        verifier.check(record)?;
    }
    Ok(verifier.checked())
}

#[tokio::main]
async fn main() -> ExitCode {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let tokens_path = dir.path().join("tokens.toml");
    let audit_path = dir.path().join("audit.jsonl");

    // The tokens exist in plaintext only here, to be sent; the file gets their hashes.
    let dashboard = ApiTokenSecret::generate();
    let restocker = ApiTokenSecret::generate();
    write_token_file(
        &tokens_path,
        &[
            ("dashboard", &dashboard, &["inventory:stock:read"]),
            (
                "restock-bot",
                &restocker,
                &["inventory:stock:read", "inventory:stock:write"],
            ),
        ],
    );
    let file = std::fs::read_to_string(&tokens_path).expect("reading the token file back");
    println!("{}:\n{}\n", tokens_path.display(), file.trim_end());
    let mut checks = Checks::default();
    checks.that(
        !file.contains(dashboard.expose()) && !file.contains(restocker.expose()),
        "the token file holds no token, only hashes",
    );
    let tokens = StaticTokens::load(&tokens_path).expect("reading the token file");
    let resolver = IdentityResolver::start(Arc::new(tokens), ResolverConfig::default())
        .await
        .expect("starting the identity resolver");

    let chain = Arc::new(JsonLinesChain::new(audit_path.clone()));
    let key = ChainKey::new(AUDIT_KEY);
    let (writer, writer_task) =
        AuditWriter::spawn(chain.clone(), key.clone(), WriterConfig::default());

    let table = RouteTable::from_toml(ROUTES).expect("the route table is valid");
    let stack = ServiceBuilder::new()
        .layer(AuditLayer::new(writer.clone(), AuditConfig::new("")))
        .layer(RescueLayer::new())
        .layer(AuthenticateLayer::new(resolver))
        .layer(AuthorizeLayer::new(Arc::new(table)))
        .layer(AuditIntentLayer::new(writer))
        .service_fn(stock);

    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("binding 127.0.0.1:0");
    let address = listener.local_addr().expect("reading the bound address");
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    // A plain hyper server: one task per connection, each with a clone of the stack. No body
    // is boxed anywhere: hyper writes the layers' nested `GatewayBody<…<Full<Bytes>>>`.
    let server = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let stack = stack.clone();
                    let per_request = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                        // The audit layer records the client address from this.
                        request.extensions_mut().insert(PeerAddr(peer));
                        stack.clone().oneshot(request)
                    });
                    connections.spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), per_request)
                            .await;
                    });
                }
                _ = &mut stopped => break,
            }
        }
        // Each connection holds a clone of the stack, and so of the audit writer: once this
        // one is dropped and the connections have ended, the writer drains and stops.
        drop(stack);
        while connections.join_next().await.is_some() {}
    });
    println!("\nstock service on http://{address}");

    let cases = [
        Case {
            request_id: "stock-1",
            what: "the dashboard reads stock",
            method: Method::GET,
            path: "/stock/widget",
            token: Some(&dashboard),
            status: StatusCode::OK,
            body_contains: "widget: 12 in stock (asked by token:dashboard)",
            action: "stock.read",
            decision: AuditDecision::Allow,
            intent: false,
        },
        Case {
            request_id: "stock-2",
            what: "no credential",
            method: Method::GET,
            path: "/stock/widget",
            token: None,
            status: StatusCode::UNAUTHORIZED,
            body_contains: "missing authorization",
            action: "auth.failed",
            decision: AuditDecision::Deny,
            intent: false,
        },
        Case {
            request_id: "stock-3",
            what: "the dashboard may not restock",
            method: Method::PUT,
            path: "/stock/widget",
            token: Some(&dashboard),
            status: StatusCode::FORBIDDEN,
            body_contains: "inventory:stock:write required; not in the token's permissions",
            action: "stock.write",
            decision: AuditDecision::Deny,
            intent: false,
        },
        Case {
            request_id: "stock-4",
            what: "the restock bot restocks (its intent is durable first)",
            method: Method::PUT,
            path: "/stock/widget",
            token: Some(&restocker),
            status: StatusCode::OK,
            body_contains: "widget: restocked by token:restock-bot",
            action: "stock.write",
            decision: AuditDecision::Allow,
            intent: true,
        },
    ];

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
    }

    let _ = stop.send(());
    server.await.expect("the server task");
    writer_task.finished().await;

    let records = chain.read_all().await.expect("reading the audit file");
    println!("\n{} ({} lines):", audit_path.display(), records.len());
    for record in &records {
        println!(
            "  seq {}  {:<8} {:<8} {:<12} {:<5} {:>3}  {}",
            record.seq,
            record.event.request_id,
            record.event.phase.as_str(),
            record.event.action,
            record.event.decision.as_str(),
            record.event.http_status,
            record.event.token_name.as_deref().unwrap_or("-"),
        );
    }
    println!("\nrecords per request:");
    for case in &cases {
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
        if let Some(complete) = mine.iter().find(|r| r.event.phase == Phase::Complete) {
            checks.equal("action", complete.event.action.as_str(), case.action);
            checks.equal("decision", complete.event.decision, case.decision);
            checks.equal("status", complete.event.http_status, case.status.as_u16());
        }
    }

    println!("\nthe chain as written:");
    checks.equal(
        "core verifier",
        verify(&key, &records),
        Ok(records.len() as u64),
    );

    // Someone with write access to the file turns the refusal into a success.
    let refused = records
        .iter()
        .find(|r| r.event.http_status == 403)
        .map(|r| r.seq)
        .expect("a refused request is on record");
    let text = std::fs::read_to_string(&audit_path).expect("reading the audit file");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let index = usize::try_from(refused - 1).expect("a small seq");
    let original = lines[index].clone();
    println!("  line {}: {original}", index + 1);
    lines[index] = original.replacen(r#""http_status":403"#, r#""http_status":200"#, 1);
    checks.that(
        lines[index] != original,
        &format!(
            "line {} edited: \"http_status\":403 -> \"http_status\":200",
            index + 1
        ),
    );
    std::fs::write(&audit_path, lines.join("\n") + "\n").expect("writing the audit file");

    println!("\nthe chain after the edit:");
    let edited = chain.read_all().await.expect("reading the edited file");
    let outcome = verify(&key, &edited);
    checks.equal(
        "core verifier rejects it at the edited seq",
        outcome.as_ref().map_err(|tamper| tamper.seq),
        Err(refused),
    );
    if let Err(tamper) = outcome {
        println!("          ({tamper})");
    }

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

//! What a hostile client or a rack unlike our mock does on the wire, against the real binary:
//! upgrade framing, CONNECT, a rack's own signal headers, malformed client bodies, credential
//! challenges, and requests whose client goes away. Each case failed before the fix it guards.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::audit::{exported_when, of_request, verify_cli};
use common::deploy::{create_token, fresh_database, gateway_env, start_gateway};
use common::http::{basic, send};
use common::process::Running;
use common::standin::{json, Act, StandIn};
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway (`serve`, PostgreSQL) in front of `rack`, and an admin token.
struct Setup {
    _gateway: Running,
    base: String,
    env: HashMap<String, String>,
    admin: String,
}

async fn setup(rack: &StandIn) -> Setup {
    let database_url = fresh_database().await;
    let env = gateway_env(&database_url, &rack.url);
    let admin = create_token(&env, "admin-wire", "admin").await;
    let (gateway, base) = start_gateway(&env).await;
    Setup {
        _gateway: gateway,
        base,
        env,
        admin,
    }
}

impl Setup {
    fn address(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Sends raw bytes on a fresh connection and reads until the gateway closes it or `limit`
    /// passes; returns what came back.
    async fn raw(&self, request: &[u8], limit: Duration) -> String {
        let mut stream = TcpStream::connect(self.address()).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(limit, async {
            let mut chunk = [0u8; 4096];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        answer.extend_from_slice(&chunk[..n]);
                        // One response is enough: stop at the end of its declared body.
                        if complete(&answer) {
                            break;
                        }
                    }
                }
            }
        })
        .await;
        String::from_utf8_lossy(&answer).into_owned()
    }
}

/// Whether `bytes` hold a whole response with a Content-Length body.
fn complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    length.is_some_and(|length| body.len() >= length)
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

const EXEC: &str = "/api/v1/rack-proxy/apps/web/processes/p1/exec";

#[tokio::test]
async fn websocket_upgrades_carry_no_body_and_never_share_a_rack_connection() {
    // This rack declines upgrades, then reads the rest of that connection as a byte stream
    // (never answering on it again); it reads a body whenever Content-Length announces one.
    let rack = StandIn::start(|seen| {
        if seen.line().contains("/exec") {
            Act::AnswerThenSwallow(json("400 Bad Request", r#"{"error":"no exec here"}"#))
        } else {
            Act::Answer(json("200 OK", "[]"))
        }
    })
    .await;
    let s = setup(&rack).await;
    let auth = basic(&s.admin);
    let upgrade = |extra: &str| {
        format!(
            "GET {EXEC} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Request-ID: {}\r\n{extra}\r\n",
            uuid::Uuid::new_v4()
        )
    };

    // An upgrade announcing a body is refused and never reaches the rack.
    let answer = s
        .raw(
            format!("{}hello", upgrade("Content-Length: 5\r\n")).as_bytes(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("must not carry a body"), "{answer}");
    let chunked = s
        .raw(
            format!(
                "{}5\r\nhello\r\n0\r\n\r\n",
                upgrade("Transfer-Encoding: chunked\r\n")
            )
            .as_bytes(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(status_of(&chunked), 400, "{chunked}");
    assert!(rack.seen_with("/exec").is_empty(), "{:?}", rack.seen());

    // A zero length is no body: forwarded, without any length for the rack to wait on.
    let answer = s
        .raw(
            upgrade("Content-Length: 0\r\n").as_bytes(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(status_of(&answer), 400, "the rack's own refusal: {answer}");
    let execs = rack.seen_with("/exec");
    assert_eq!(execs.len(), 1);
    assert!(
        execs[0].header("content-length").is_empty(),
        "{}",
        execs[0].head
    );
    assert!(
        execs[0].header("transfer-encoding").is_empty(),
        "{}",
        execs[0].head
    );

    // The declined upgrade's connection is not reused: the next requests are answered, each
    // on a connection the rack did not swallow.
    for _ in 0..3 {
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            send(
                Method::GET,
                &format!("{}/api/v1/rack-proxy/apps/web/processes", s.base),
                &[("authorization", auth.as_str())],
                "",
            ),
        )
        .await
        .expect("answered, not swallowed by the rack");
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let swallowed = execs[0].connection;
    let reads = rack.seen_with("/processes HTTP");
    assert_eq!(reads.len(), 3);
    assert!(reads.iter().all(|r| r.connection != swallowed));
}

#[tokio::test]
async fn connect_is_never_authorized_as_a_websocket_nor_forwarded() {
    let rack = StandIn::start(|_| Act::Answer(json("200 OK", "[]"))).await;
    let s = setup(&rack).await;
    let auth = basic(&s.admin);
    for target in [
        "/api/v1/rack-proxy/apps/web/processes/p1/logs",
        "/api/v1/rack-proxy/apps/web/logs",
    ] {
        let request = format!(
            "CONNECT {target} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let answer = s.raw(request.as_bytes(), Duration::from_secs(10)).await;
        let status = status_of(&answer);
        assert!(
            status == 404 || status == 405 || status == 400,
            "{target}: {answer}"
        );
    }
    // Only the gateway's own readiness probe reached the rack.
    assert!(
        rack.seen()
            .iter()
            .all(|seen| seen.line() == "GET /system HTTP/1.1"),
        "forwarded: {:?}",
        rack.seen()
    );
}

#[tokio::test]
async fn a_racks_signal_headers_and_cookies_reach_neither_the_client_nor_the_record() {
    let rack = StandIn::start(|_| {
        let body = r#"{"error":"rack says no"}"#;
        Act::Answer(
            format!(
                "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-error-reason: forged by the rack\r\nx-mfa-required: true\r\nset-cookie: session_token=planted; Path=/\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
    .await;
    let s = setup(&rack).await;
    let reply = send(
        Method::GET,
        &format!("{}/api/v1/rack-proxy/apps", s.base),
        &[
            ("authorization", basic(&s.admin).as_str()),
            ("x-request-id", "rack-signals"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    for name in ["x-error-reason", "x-mfa-required", "set-cookie"] {
        assert!(reply.headers.get(name).is_none(), "{name} relayed");
    }
    let rows = exported_when(&s.env, |rows| !of_request(rows, "rack-signals").is_empty()).await;
    let record = of_request(&rows, "rack-signals")[0];
    assert_eq!(
        record["decision"], "allow",
        "the gateway allowed it: {record}"
    );
    assert!(
        !record.to_string().contains("forged"),
        "the rack's header became the record's reason: {record}"
    );
}

#[tokio::test]
async fn a_malformed_client_body_is_400_and_names_no_rack_address() {
    // The rack takes its time, so the client's broken body is found while sending it.
    let rack = StandIn::start(|_| {
        Act::AnswerAfter(Duration::from_secs(3), json("200 OK", r#"{"id":"B1"}"#))
    })
    .await;
    let s = setup(&rack).await;
    let port = rack.url.rsplit(':').next().unwrap_or_default().to_owned();
    let request = format!(
        "POST /api/v1/rack-proxy/apps/web/builds HTTP/1.1\r\nHost: gw\r\nAuthorization: {}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz-not-a-size\r\n",
        basic(&s.admin)
    );
    let answer = s.raw(request.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(
        !answer.contains(&port),
        "the rack's address leaked: {answer}"
    );
    assert!(!answer.contains("127.0.0.1"), "{answer}");
}

#[tokio::test]
async fn only_basic_callers_get_a_basic_challenge() {
    let rack = StandIn::start(|_| Act::Answer(json("200 OK", "[]"))).await;
    let s = setup(&rack).await;
    let url = format!("{}/api/v1/rack-proxy/apps", s.base);
    let bad_basic = basic("rgw_not-a-real-token-0000000000000000000000000000");
    for (auth, challenged) in [
        (Some(bad_basic.as_str()), true),
        (Some("Bearer rgw_not-a-real-token"), false),
        (None, false),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let reply = send(Method::GET, &url, &headers, "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.headers.contains_key("www-authenticate"),
            challenged,
            "{auth:?}"
        );
    }
}

#[tokio::test]
async fn requests_whose_client_goes_away_are_recorded() {
    let rack = StandIn::start(|seen| {
        if seen.line().contains("/slow") || seen.line().contains("/restart") {
            Act::AnswerAfter(Duration::from_secs(3), json("200 OK", "{}"))
        } else {
            Act::Answer(json("200 OK", "[]"))
        }
    })
    .await;
    let s = setup(&rack).await;
    let auth = basic(&s.admin);
    // A read and a write, each abandoned by its client while the rack is still answering.
    for (method, path, id) in [
        ("GET", "/api/v1/rack-proxy/apps/slow", "gone-read"),
        ("POST", "/api/v1/rack-proxy/apps/web/restart", "gone-write"),
    ] {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nX-Request-ID: {id}\r\nContent-Length: 0\r\n\r\n"
        );
        let answer = s.raw(request.as_bytes(), Duration::from_millis(500)).await;
        assert!(answer.is_empty(), "answered too early: {answer}");
    }
    let rows = exported_when(&s.env, |rows| {
        ["gone-read", "gone-write"].iter().all(|id| {
            of_request(rows, id)
                .iter()
                .any(|r| r["phase"] == "complete")
        })
    })
    .await;
    for id in ["gone-read", "gone-write"] {
        let records = of_request(&rows, id);
        let complete: Vec<_> = records
            .iter()
            .filter(|r| r["phase"] == "complete")
            .collect();
        assert_eq!(complete.len(), 1, "{id}: {records:?}");
        assert_eq!(complete[0]["http_status"], 499, "{id}");
        assert!(
            complete[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("client closed")),
            "{id}: {}",
            complete[0]
        );
    }
    assert_eq!(
        of_request(&rows, "gone-write")
            .iter()
            .filter(|r| r["phase"] == "intent")
            .count(),
        1
    );
    let (code, report) = verify_cli(&s.env).await;
    assert_eq!(code, 0, "{report}");
}

//! Requests that used to leave no audit record, against the real binary: JSON API calls refused
//! before any handler ran, a secret read while the audit store was down, and websocket sessions
//! open when the gateway shuts down. Each case failed before the fix it guards.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::audit::{exported, exported_when, of_request, verify_cli};
use common::deploy::{
    create_database, create_token, fresh_database, gateway_env, start_gateway, start_mock_rack,
};
use common::http::{basic, send};
use common::postgres::TempPostgres;
use futures_util::StreamExt as _;
use http::{Method, StatusCode};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn api_calls_refused_before_any_handler_are_recorded() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let admin = basic(&create_token(&env, "admin-api", "admin").await);
    let (_gateway, base) = start_gateway(&env).await;
    let huge = format!(r#"{{"set": {{"A": "{}"}}}}"#, "x".repeat(3 * 1024 * 1024));
    // (id, method, path, body, expected status)
    let cases: [(&str, Method, &str, String, StatusCode); 6] = [
        (
            "api-too-large",
            Method::PUT,
            "/api/v1/apps/web/env",
            huge,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "api-bad-path",
            Method::GET,
            "/api/v1/apps/a%2Fb/env",
            String::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "api-dot-path",
            Method::GET,
            "/api/v1/apps/../audit-logs",
            String::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "api-wrong-method",
            Method::POST,
            "/api/v1/audit-logs",
            String::new(),
            StatusCode::NOT_FOUND,
        ),
        (
            "api-unknown",
            Method::GET,
            "/api/v1/no-such-endpoint",
            String::new(),
            StatusCode::NOT_FOUND,
        ),
        (
            "api-anonymous",
            Method::GET,
            "/api/v1/settings",
            String::new(),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (id, method, path, body, status) in &cases {
        let mut headers = vec![("x-request-id", *id), ("content-type", "application/json")];
        if *id != "api-anonymous" {
            headers.push(("authorization", admin.as_str()));
        }
        let reply = send(
            method.clone(),
            &format!("{base}{path}"),
            &headers,
            Bytes::from(body.clone()),
        )
        .await;
        assert_eq!(reply.status, *status, "{id}: {}", reply.body);
        let error: serde_json::Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|_| panic!("{id}: not JSON: {}", reply.body));
        assert!(error["error"].is_string(), "{id}: {}", reply.body);
    }
    let rows = exported_when(&env, |rows| {
        cases
            .iter()
            .all(|(id, ..)| !of_request(rows, id).is_empty())
    })
    .await;
    for (id, method, path, _, status) in &cases {
        let records = of_request(&rows, id);
        assert_eq!(records.len(), 1, "{id}: {records:?}");
        let record = records[0];
        assert_eq!(record["http_status"], status.as_u16(), "{id}");
        assert_eq!(record["decision"], "deny", "{id}: {record}");
        assert_eq!(record["method"], method.as_str(), "{id}");
        assert_eq!(record["path"], *path, "{id}");
        assert!(
            !record["reason"].as_str().unwrap_or_default().is_empty(),
            "{id}: {record}"
        );
    }
    // Nothing of the 3 MB body is in the record.
    assert!(of_request(&rows, "api-too-large")[0].to_string().len() < 2048);
    let (code, report) = verify_cli(&env).await;
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn a_secret_read_while_the_audit_store_is_down_is_withheld_and_recorded() {
    let cluster = TempPostgres::start();
    let database_url = create_database(&cluster.url()).await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let admin = basic(&create_token(&env, "admin-secrets", "admin").await);
    let (_gateway, base) = start_gateway(&env).await;
    let url = format!("{base}/api/v1/apps/web/env?secrets=true");
    // While the store is up the secrets are shown (and the identity cache is warm).
    let reply = send(
        Method::GET,
        &url,
        &[
            ("authorization", admin.as_str()),
            ("x-request-id", "secrets-up"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    cluster.stop();
    let reply = send(
        Method::GET,
        &url,
        &[
            ("authorization", admin.as_str()),
            ("x-request-id", "secrets-down"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        !reply.body.contains("sk_"),
        "a secret left without its record: {}",
        reply.body
    );
    cluster.resume();

    let rows = exported_when(&env, |rows| !of_request(rows, "secrets-down").is_empty()).await;
    let records = of_request(&rows, "secrets-down");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "secret.read");
    assert_eq!(records[0]["decision"], "error");
    assert_eq!(records[0]["http_status"], 503);
    let up = of_request(&rows, "secrets-up");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0]["http_status"], 200);
    let (code, report) = verify_cli(&env).await;
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn shutdown_closes_open_websocket_sessions_with_a_close_frame_and_records_them() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let admin = create_token(&env, "admin-ws", "admin").await;
    let (mut gateway, base) = start_gateway(&env).await;
    let processes = send(
        Method::GET,
        &format!("{base}/api/v1/rack-proxy/apps/web/processes"),
        &[("authorization", basic(&admin).as_str())],
        Bytes::new(),
    )
    .await;
    let processes: serde_json::Value = serde_json::from_str(&processes.body).expect("processes");
    let pid = processes[0]["id"].as_str().expect("pid").to_owned();

    let mut sockets = Vec::new();
    for (id, path) in [
        ("ws-exec", format!("/apps/web/processes/{pid}/exec")),
        ("ws-logs", "/apps/web/logs".to_owned()),
    ] {
        let url = format!(
            "{}/api/v1/rack-proxy{path}",
            base.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().expect("ws request");
        let headers = request.headers_mut();
        headers.insert("authorization", basic(&admin).parse().expect("header"));
        headers.insert("x-request-id", id.parse().expect("header"));
        headers.insert("command", "cat".parse().expect("header"));
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        sockets.push((id, socket));
    }

    let pid = gateway.child.id().expect("running");
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    for (id, socket) in &mut sockets {
        let close = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(message) = socket.next().await {
                match message {
                    Ok(Message::Close(frame)) => return frame,
                    Ok(_) => continue,
                    Err(error) => panic!("{id}: {error}"),
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("{id}: no close frame after SIGTERM"));
        let frame = close.unwrap_or_else(|| panic!("{id}: connection ended without a close frame"));
        assert_eq!(frame.code, CloseCode::Away, "{id}");
    }
    let status = tokio::time::timeout(Duration::from_secs(30), gateway.child.wait())
        .await
        .expect("the gateway exits after SIGTERM")
        .expect("exit status");
    assert!(status.success(), "{status:?}");

    let rows = exported(&env).await;
    for (id, _) in &sockets {
        let complete: Vec<_> = of_request(&rows, id)
            .into_iter()
            .filter(|r| r["phase"] == "complete")
            .collect();
        assert_eq!(complete.len(), 1, "{id}: {rows:?}");
        let details: serde_json::Value =
            serde_json::from_str(complete[0]["details"].as_str().unwrap_or("{}")).expect("details");
        assert_eq!(
            details["websocket"]["closed_by_gateway"], true,
            "{id}: {details}"
        );
    }
    let (code, report) = verify_cli(&env).await;
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn gateway_credentials_and_secret_assignments_never_reach_a_record() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let admin = create_token(&env, "admin-creds", "admin").await;
    let other = create_token(&env, "viewer-creds", "viewer").await;
    let (_gateway, base) = start_gateway(&env).await;
    let auth = basic(&admin);
    let escaped = other.replacen('_', "%5F", 1);
    // A token under any query name, escaped or not, in the User-Agent, in the request id, and
    // in an API filter (recorded in the details).
    for (id, url, agent) in [
        (
            "creds-query",
            format!("{base}/api/v1/rack-proxy/apps?t={other}&x={escaped}"),
            "curl/8".to_owned(),
        ),
        (
            "creds-agent",
            format!("{base}/api/v1/rack-proxy/apps"),
            format!("script token={other}"),
        ),
        (
            "creds-api",
            format!("{base}/api/v1/audit-logs?actor={other}"),
            "curl/8".to_owned(),
        ),
    ] {
        let reply = send(
            Method::GET,
            &url,
            &[
                ("authorization", auth.as_str()),
                ("x-request-id", id),
                ("user-agent", agent.as_str()),
            ],
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{id}: {}", reply.body);
    }
    let spoofed_id = format!("id-{other}");
    let reply = send(
        Method::GET,
        &format!("{base}/api/v1/rack-proxy/apps"),
        &[
            ("authorization", auth.as_str()),
            ("x-request-id", spoofed_id.as_str()),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // An exec whose command line carries a secret assignment.
    let processes: serde_json::Value = serde_json::from_str(
        &send(
            Method::GET,
            &format!("{base}/api/v1/rack-proxy/apps/web/processes"),
            &[("authorization", auth.as_str())],
            Bytes::new(),
        )
        .await
        .body,
    )
    .expect("processes");
    let pid = processes[0]["id"].as_str().expect("pid");
    let url = format!(
        "{}/api/v1/rack-proxy/apps/web/processes/{pid}/exec",
        base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().expect("ws request");
    let headers = request.headers_mut();
    headers.insert("authorization", auth.parse().expect("header"));
    headers.insert("x-request-id", "creds-exec".parse().expect("header"));
    headers.insert(
        "command",
        "env STRIPE_SECRET_KEY=hunter2-live-value DATABASE_URL=postgres://app:pw-hunter3@db/app bin/console"
            .parse()
            .expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    socket.close(None).await.expect("close");
    while let Some(Ok(_)) = socket.next().await {}

    let rows = exported_when(&env, |rows| {
        ["creds-query", "creds-agent", "creds-api"]
            .iter()
            .all(|id| !of_request(rows, id).is_empty())
            && of_request(rows, "creds-exec")
                .iter()
                .any(|r| r["phase"] == "complete")
    })
    .await;
    let text = serde_json::to_string(&rows).expect("rows");
    let body = other.trim_start_matches("rgw_");
    for secret in [body, "hunter2-live-value", "pw-hunter3"] {
        assert!(!text.contains(secret), "{secret} stored in the audit trail");
    }
    assert!(text.contains("rgw_[REDACTED]"), "the redaction is visible");
    let exec = of_request(&rows, "creds-exec")[0];
    assert!(
        exec["details"]
            .as_str()
            .unwrap_or_default()
            .contains("STRIPE_SECRET_KEY=[REDACTED]"),
        "{exec}"
    );
    let (code, report) = verify_cli(&env).await;
    assert_eq!(code, 0, "{report}");
}

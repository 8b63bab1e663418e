//! The audit trail over a gateway's life, with real processes on PostgreSQL: a SIGTERM under
//! load drains the audit queue before the process exits; websocket sessions leave an intent
//! when they open and a complete record with their traffic when they close; and operator
//! commands leave `system` records that never hold a token secret.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::audit::{
    assert_contiguous_from_one, call, client, export_text, exported, exported_when, json_of,
    of_request, verify_cli,
};
use common::deploy::{create_token, fresh_database, gateway_env, start_gateway, start_mock_rack};
use common::http::basic;
use common::process::run_command;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_the_audit_queue_before_exiting() {
    const REQUESTS: usize = 3_000;
    const IN_FLIGHT: usize = 128;
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (mut gateway, base) = start_gateway(&env).await;
    let auth = basic(&create_token(&env, "drain-admin", "admin").await);
    let url = format!("{base}/api/v1/rack-proxy/apps");

    let completed = Arc::new(AtomicUsize::new(0));
    let signalled = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (completed, signalled) = (Arc::clone(&completed), Arc::clone(&signalled));
        let client = client();
        async move {
            futures_util::stream::iter(0..REQUESTS)
                .map(|i| {
                    let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
                    let (completed, signalled) = (Arc::clone(&completed), Arc::clone(&signalled));
                    async move {
                        let id = format!("drain-{i}");
                        let request = Request::get(&url)
                            .header("authorization", auth.as_str())
                            .header("x-request-id", id.as_str())
                            .body(Full::new(Bytes::new()))
                            .expect("request");
                        let ok = match client.request(request).await {
                            Ok(response) => {
                                let status = response.status();
                                let body = response.into_body().collect().await;
                                status == StatusCode::OK && body.is_ok()
                            }
                            Err(_) => false,
                        };
                        completed.fetch_add(1, Ordering::SeqCst);
                        ok.then(|| (id, signalled.load(Ordering::SeqCst)))
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .filter_map(|answered| async move { answered })
                .collect::<Vec<(String, bool)>>()
                .await
        }
    });

    // SIGTERM once a tenth of the requests are answered, with the rest still coming.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while completed.load(Ordering::SeqCst) < REQUESTS / 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load did not start"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pid = gateway.child.id().expect("running");
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    // Answers from now on came after the signal was delivered.
    signalled.store(true, Ordering::SeqCst);
    let signalled_at = tokio::time::Instant::now();
    let exit = tokio::time::timeout(Duration::from_secs(60), gateway.child.wait())
        .await
        .expect("the gateway exits after SIGTERM")
        .expect("wait");
    let shutdown_took = signalled_at.elapsed();
    let answered = load.await.expect("load task");
    let lines = gateway.drain();
    assert_eq!(
        exit.code(),
        Some(0),
        "exit status {exit:?}; output:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().all(|l| !l.contains("not drained")),
        "the audit queue was not drained:\n{}",
        lines.join("\n")
    );
    assert!(
        shutdown_took < Duration::from_secs(20),
        "shutdown took {shutdown_took:?}"
    );
    let late = answered.iter().filter(|(_, late)| *late).count();
    assert!(
        answered.len() >= REQUESTS / 10,
        "{} answered",
        answered.len()
    );
    assert!(
        late > 0,
        "no request completed after the SIGTERM ({} answered before)",
        answered.len()
    );
    assert!(
        answered.len() < REQUESTS,
        "every request was answered: the SIGTERM came too late to test anything"
    );

    // The gateway is gone: whatever it acknowledged must be in the database already.
    let rows = exported(&env).await;
    assert_contiguous_from_one(&rows);
    let mut per_request: std::collections::HashMap<&str, Vec<&Value>> =
        std::collections::HashMap::new();
    for row in &rows {
        if let Some(id) = row["request_id"].as_str() {
            per_request.entry(id).or_default().push(row);
        }
    }
    let missing: Vec<&str> = answered
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| !per_request.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests ({late} after SIGTERM) have no record, e.g. {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
    for (id, _) in &answered {
        let records = &per_request[id.as_str()];
        assert_eq!(records.len(), 1, "{id}: {records:?}");
        assert_eq!(records[0]["phase"], "complete", "{id}");
        assert_eq!(records[0]["decision"], "allow", "{id}");
        assert_eq!(records[0]["http_status"], 200, "{id}");
        assert_eq!(records[0]["action"], "app.list", "{id}");
    }
    let (code, report) = verify_cli(&env).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["intact"], true, "{report}");
}

fn ws_request(
    base: &str,
    path: &str,
    token: &str,
    headers: &[(&'static str, &str)],
) -> http::Request<()> {
    let url = format!(
        "{}/api/v1/rack-proxy{path}",
        base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().expect("ws request");
    let map = request.headers_mut();
    map.insert("authorization", basic(token).parse().expect("header"));
    for (name, value) in headers {
        map.insert(*name, value.parse().expect("header"));
    }
    request
}

fn websocket_stats(record: &Value) -> Value {
    let details: Value = serde_json::from_str(record["details"].as_str().expect("details"))
        .unwrap_or_else(|e| panic!("details are not JSON ({e}): {record}"));
    details
}

#[tokio::test]
async fn websocket_sessions_leave_an_intent_at_open_and_their_traffic_at_close() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_gateway, base) = start_gateway(&env).await;
    let admin = create_token(&env, "ws-admin", "admin").await;
    let viewer = create_token(&env, "ws-viewer", "viewer").await;
    let http = client();

    let processes = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1/rack-proxy/apps/web/processes"),
        Some(&admin),
        "ws-processes",
    )
    .await;
    assert_eq!(processes.status, StatusCode::OK, "{}", processes.body);
    let pid = json_of(&processes)[0]["id"]
        .as_str()
        .expect("process id")
        .to_owned();
    let exec_path = format!("/apps/web/processes/{pid}/exec");

    // Exec: `cat` echoes a text and a binary message, then the client closes.
    const TEXT: &str = "hello through the gateway";
    const BINARY: &[u8] = &[0, 1, 2, 255, 254];
    let request = ws_request(
        &base,
        &exec_path,
        &admin,
        &[("command", "cat"), ("x-request-id", "ws-exec")],
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("exec upgrade");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
        .send(Message::Text(TEXT.into()))
        .await
        .expect("send text");
    socket
        .send(Message::Binary(Bytes::from_static(BINARY)))
        .await
        .expect("send binary");
    let mut echoed = Vec::new();
    while echoed.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("echo in time")
        {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => echoed.push(message),
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed[0], Message::Text(TEXT.into()));
    assert_eq!(echoed[1], Message::Binary(Bytes::from_static(BINARY)));
    socket.close(None).await.expect("close");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("close failed: {error}"),
        }
    }
    drop(socket);

    // A log stream that ends by itself (Follow: false).
    let request = ws_request(
        &base,
        "/apps/web/logs",
        &admin,
        &[("follow", "false"), ("x-request-id", "ws-logs")],
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("logs upgrade");
    let mut log_bytes = 0;
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("log in time")
    {
        match message.expect("frame") {
            Message::Text(text) => log_bytes += text.len(),
            Message::Binary(data) => log_bytes += data.len(),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(log_bytes > 0, "no log lines");
    drop(socket);

    // A refused exec: one complete record, no intent.
    let request = ws_request(
        &base,
        &exec_path,
        &viewer,
        &[("command", "cat"), ("x-request-id", "ws-exec-denied")],
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN)
        }
        other => panic!(
            "a viewer's exec should be refused, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }

    let rows = exported_when(&env, |rows| {
        ["ws-exec", "ws-logs", "ws-exec-denied"].iter().all(|id| {
            rows.iter()
                .any(|r| r["request_id"] == *id && r["phase"] == "complete")
        })
    })
    .await;

    for (id, action) in [("ws-exec", "process.exec"), ("ws-logs", "log.read")] {
        let records = of_request(&rows, id);
        let phases: Vec<&str> = records
            .iter()
            .map(|r| r["phase"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(phases, ["intent", "complete"], "{id}: {records:?}");
        let (intent, complete) = (records[0], records[1]);
        for record in [intent, complete] {
            assert_eq!(record["action"], action, "{id}");
            assert_eq!(record["decision"], "allow", "{id}");
            assert_eq!(record["method"], "SOCKET", "{id}");
            assert_eq!(record["token_name"], "ws-admin", "{id}");
        }
        assert_eq!(intent["http_status"], 0, "{id}");
        assert_eq!(complete["http_status"], 101, "{id}");
        let details = websocket_stats(complete);
        let stats = &details["websocket"];
        assert!(
            stats["duration_ms"].is_u64(),
            "{id}: no websocket duration in {details}"
        );
        assert!(
            stats["bytes_to_client"].as_u64() > Some(0),
            "{id}: bytes_to_client in {details}"
        );
        assert!(
            stats["bytes_from_client"].is_u64(),
            "{id}: bytes_from_client in {details}"
        );
        assert!(
            websocket_stats(intent).get("websocket").is_none(),
            "{id}: the intent has no traffic yet"
        );
    }
    let exec = of_request(&rows, "ws-exec");
    let details = websocket_stats(exec[1]);
    let stats = &details["websocket"];
    let sent = (TEXT.len() + BINARY.len()) as u64;
    assert!(
        stats["bytes_from_client"].as_u64() >= Some(sent),
        "exec bytes_from_client below the {sent} payload bytes sent: {details}"
    );
    assert!(
        stats["bytes_to_client"].as_u64() >= Some(sent),
        "exec bytes_to_client below the {sent} payload bytes echoed: {details}"
    );
    assert_eq!(details["command"], "cat", "{details}");
    // The exec was mutating: its intent was durable, and the complete record points at it.
    assert_eq!(details["intent_seq"], exec[0]["seq"], "{details}");
    let logs = of_request(&rows, "ws-logs");
    let details = websocket_stats(logs[1]);
    assert!(
        details["websocket"]["bytes_to_client"].as_u64() >= Some(log_bytes as u64),
        "log bytes_to_client below the {log_bytes} bytes received: {details}"
    );

    let denied = of_request(&rows, "ws-exec-denied");
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["phase"], "complete");
    assert_eq!(denied[0]["decision"], "deny");
    assert_eq!(denied[0]["http_status"], 403);

    let (code, report) = verify_cli(&env).await;
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn operator_commands_leave_system_records_without_the_token_secret() {
    const USER: &str = "carol@example.com";
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_gateway, base) = start_gateway(&env).await;
    let admin = create_token(&env, "lifecycle-admin", "admin").await;
    let http = client();

    let token = create_token(&env, "ops-bot", "ops").await;
    assert!(token.starts_with("rgw_"), "{token}");
    let apps = format!("{base}/api/v1/rack-proxy/apps");
    let reply = call(&http, Method::GET, &apps, Some(&token), "op-use").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // A careless client puts the token in the query string too: it is redacted.
    let reply = call(
        &http,
        Method::GET,
        &format!("{apps}?token={token}&access_token={token}"),
        Some(&token),
        "op-use-query",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let (code, _, stderr) = run_command(&["token", "revoke", "ops-bot"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    let mut revoked = false;
    for _ in 0..100 {
        let reply = call(&http, Method::GET, &apps, Some(&token), "op-after-revoke").await;
        if reply.status == StatusCode::UNAUTHORIZED {
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(revoked, "the revoked token still works");

    for args in [
        &["user", "add", USER, "--role", "viewer"][..],
        &["user", "lock", USER, "--reason", "left the team"],
        &["user", "unlock", USER],
    ] {
        let (code, _, stderr) = run_command(args, &env).await;
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }

    let rows = exported_when(&env, |rows| {
        rows.iter().any(|r| r["request_id"] == "op-after-revoke")
            && rows.iter().any(|r| r["action"] == "user.unlock")
    })
    .await;
    assert_contiguous_from_one(&rows);
    let mut seqs = Vec::new();
    for (action, resource) in [
        ("token.create", "ops-bot"),
        ("token.revoke", "ops-bot"),
        ("user.add", USER),
        ("user.lock", USER),
        ("user.unlock", USER),
    ] {
        let records: Vec<&Value> = rows
            .iter()
            .filter(|r| r["action"] == action && r["resource"] == resource)
            .collect();
        assert_eq!(
            records.len(),
            1,
            "{action} {resource}: {records:?}\nactions present: {:?}",
            rows.iter()
                .map(|r| r["action"].as_str().unwrap_or_default())
                .collect::<HashSet<_>>()
        );
        let record = records[0];
        assert_eq!(record["actor_kind"], "system", "{record}");
        assert_eq!(record["phase"], "complete", "{record}");
        assert_eq!(record["decision"], "allow", "{record}");
        seqs.push(record["seq"].as_u64().expect("seq"));
    }
    assert!(seqs[0] < seqs[1], "token.create before token.revoke");
    assert!(
        seqs[2] < seqs[3] && seqs[3] < seqs[4],
        "user.add, user.lock, user.unlock in order"
    );
    // The token's own requests are attributed to it, by name and public id only.
    let used = of_request(&rows, "op-use");
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["token_name"], "ops-bot");
    assert!(used[0]["token_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    let in_query = of_request(&rows, "op-use-query");
    assert_eq!(in_query.len(), 1);
    assert!(
        in_query[0]["path"].as_str().is_some_and(
            |p| p.contains("token=[REDACTED]") && p.contains("access_token=[REDACTED]")
        ),
        "{}",
        in_query[0]
    );

    // No export, whatever the format or the route, holds the secret or its random part.
    let random_part = token.trim_start_matches("rgw_");
    assert!(random_part.len() >= 20);
    let jsonl = export_text(&env, "jsonl", &[]).await;
    let csv = export_text(&env, "csv", &[]).await;
    let api_export = call(
        &http,
        Method::GET,
        &format!("{base}/api/v1/audit-logs/export?format=jsonl"),
        Some(&admin),
        "op-export",
    )
    .await;
    assert_eq!(api_export.status, StatusCode::OK, "{}", api_export.body);
    for (name, text) in [
        ("CLI jsonl", &jsonl),
        ("CLI csv", &csv),
        ("API jsonl", &api_export.body),
    ] {
        assert!(text.contains("token.create"), "{name} lacks token.create");
        assert!(!text.contains(&token), "{name} holds the token");
        assert!(
            !text.contains(random_part),
            "{name} holds the token's secret part"
        );
    }

    let (code, report) = verify_cli(&env).await;
    assert_eq!(code, 0, "{report}");
}

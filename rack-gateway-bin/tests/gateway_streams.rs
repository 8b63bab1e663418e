//! Streams through `rack-gateway dev`: websocket exec and logs with a real websocket client,
//! and a 100 MiB upload that must not be held in the gateway's memory.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::http::{basic, get};
use common::process::DevGateway;
use futures_util::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

async fn first_process(gateway: &DevGateway) -> (String, String) {
    let apps: serde_json::Value = serde_json::from_str(
        &get(&gateway.proxy("/apps"), Some(&gateway.admin_token))
            .await
            .body,
    )
    .expect("apps");
    let app = apps[0]["name"].as_str().expect("app").to_owned();
    let reply = get(
        &gateway.proxy(&format!("/apps/{app}/processes")),
        Some(&gateway.admin_token),
    )
    .await;
    let processes: serde_json::Value = serde_json::from_str(&reply.body).expect("processes");
    let pid = processes[0]["id"].as_str().expect("pid").to_owned();
    (app, pid)
}

fn ws_request(
    gateway: &DevGateway,
    path: &str,
    token: &str,
    extra: &[(&'static str, &str)],
) -> http::Request<()> {
    let url = format!(
        "{}/api/v1/rack-proxy{path}",
        gateway.base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().expect("ws request");
    let headers = request.headers_mut();
    headers.insert("authorization", basic(token).parse().expect("header"));
    for (name, value) in extra {
        headers.insert(*name, value.parse().expect("header"));
    }
    request
}

#[tokio::test]
async fn websocket_exec_relays_text_binary_and_close() {
    let gateway = DevGateway::start().await;
    let (app, pid) = first_process(&gateway).await;
    let path = format!("/apps/{app}/processes/{pid}/exec");

    let request = ws_request(&gateway, &path, &gateway.admin_token, &[("command", "cat")]);
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
        .send(Message::Text("hello text".into()))
        .await
        .expect("send text");
    socket
        .send(Message::Binary(Bytes::from_static(&[0, 1, 2, 255])))
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
    assert_eq!(echoed[0], Message::Text("hello text".into()));
    assert_eq!(
        echoed[1],
        Message::Binary(Bytes::from_static(&[0, 1, 2, 255]))
    );
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

    // A viewer may not exec: refused before any upgrade.
    let request = ws_request(
        &gateway,
        &path,
        &gateway.viewer_token,
        &[("command", "cat")],
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN)
        }
        other => panic!(
            "viewer exec should be refused, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

#[tokio::test]
async fn websocket_log_stream_ends_with_a_close_frame() {
    let gateway = DevGateway::start().await;
    let (app, _) = first_process(&gateway).await;
    let request = ws_request(
        &gateway,
        &format!("/apps/{app}/logs"),
        &gateway.viewer_token,
        &[("follow", "false")],
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut lines = 0;
    let mut closed = false;
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("log in time")
    {
        match message.expect("frame") {
            Message::Text(text) => {
                assert!(!text.is_empty());
                lines += 1;
            }
            Message::Close(_) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(lines > 0, "no log lines");
    assert!(closed, "stream did not end with a close frame");
}

#[tokio::test]
async fn a_100_mib_upload_streams_through_without_being_buffered() {
    const TOTAL: usize = 100 * 1024 * 1024;
    const CHUNK: usize = 256 * 1024;
    let mut gateway = DevGateway::start().await;
    let (app, _) = first_process(&gateway).await;
    let before = gateway.process.rss_kib();

    let chunks = futures_util::stream::iter((0..TOTAL / CHUNK).map(|i| {
        let byte = (i % 251) as u8;
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![byte; CHUNK])))
    }));
    let body = StreamBody::new(chunks);
    let request =
        http::Request::post(gateway.proxy(&format!("/apps/{app}/objects/tmp/upload.tgz")))
            .header("authorization", basic(&gateway.admin_token))
            .header("content-type", "application/octet-stream")
            .header("content-length", TOTAL.to_string())
            .body(body)
            .expect("request");
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.expect("upload");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("object://"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    let stored = gateway.process.wait_for_line("object stored").await;
    assert!(
        stored.contains(&format!("bytes={TOTAL}")),
        "the rack did not get every byte: {stored}"
    );
    let after = gateway.process.rss_kib();
    let growth_mib = after.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 32,
        "gateway RSS grew by {growth_mib} MiB ({before} KiB -> {after} KiB)"
    );
}

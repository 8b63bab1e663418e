//! Websocket plumbing shared by exec and logs: option headers, subprotocol echo, and a clean
//! close handshake.

use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{header, HeaderMap};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};

/// How long to wait for the client's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Sending half of a split websocket.
pub(super) type Tx = SplitSink<WebSocket, Message>;
/// Receiving half of a split websocket.
pub(super) type Rx = SplitStream<WebSocket>;

/// A header value as text, if present and valid.
pub(super) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A query parameter from the raw query string.
pub(super) fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Selects the client's first requested subprotocol, if any, so it is echoed back.
pub(super) fn echo_subprotocol(ws: WebSocketUpgrade, headers: &HeaderMap) -> WebSocketUpgrade {
    let first = header_str(headers, header::SEC_WEBSOCKET_PROTOCOL.as_str())
        .and_then(|v| v.split(',').map(str::trim).find(|p| !p.is_empty()))
        .map(str::to_string);
    match first {
        Some(protocol) => ws.protocols([protocol]),
        None => ws,
    }
}

/// Sends a close frame with `code`, then waits (bounded) for the client's close.
pub(super) async fn close_with(mut tx: Tx, mut rx: Rx, code: u16) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    if tx.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = rx.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Closes normally (1000).
pub(super) async fn close_normally(tx: Tx, rx: Rx) {
    close_with(tx, rx, close_code::NORMAL).await;
}

/// Closes because the server is going away (1001).
pub(super) async fn close_going_away(tx: Tx, rx: Rx) {
    close_with(tx, rx, close_code::AWAY).await;
}

/// Completes the close handshake the client started (flushes our queued close reply).
pub(super) async fn finish_client_close(mut tx: Tx) {
    let _ = tokio::time::timeout(CLOSE_WAIT, tx.close()).await;
}

//! Log websockets: `/apps/{app}/logs`, `/apps/{app}/processes/{pid}/logs`,
//! `/apps/{app}/builds/{id}/logs` and `/system/logs`. A few lines go out as text frames; with
//! `Follow: false` (header or `follow` query) the stream then closes normally, otherwise a line
//! follows every 500 ms until the client closes. Builds are always finished, so build logs end.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;

use super::error::{MockError, MockResult};
use super::params::parse_flag;
use super::ws::{
    close_going_away, close_normally, echo_subprotocol, finish_client_close, header_str,
    query_value,
};
use super::MockRack;

/// Interval between followed lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// What one log stream sends.
struct Stream {
    /// Lines sent at once (without timestamps; those are added when sent).
    lines: Vec<String>,
    /// Prefix of followed lines, or `None` when the stream ends after `lines`.
    follow: Option<String>,
}

fn stamp(line: &str) -> String {
    format!(
        "{} {line}\n",
        Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
    )
}

/// Whether to follow: `Follow` header, else `follow` query, else `default`; bad values → 400.
fn follow(headers: &HeaderMap, query: Option<&str>, default: bool) -> MockResult<bool> {
    let raw = header_str(headers, "follow")
        .map(str::to_string)
        .or_else(|| query_value(query, "follow"));
    match raw {
        None => Ok(default),
        Some(raw) if raw.trim().is_empty() => Ok(default),
        Some(raw) => parse_flag(&raw)
            .ok_or_else(|| MockError::bad_request(format!("invalid follow: {raw:?}"))),
    }
}

/// Upgrades (or relays the upgrade rejection) and streams `stream`.
fn respond(
    rack: &MockRack,
    headers: &HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    stream: Stream,
) -> Response {
    match ws {
        Ok(ws) => {
            let shutdown = rack.shutdown_signal();
            echo_subprotocol(ws, headers).on_upgrade(move |socket| send(socket, stream, shutdown))
        }
        Err(rejection) => rejection.into_response(),
    }
}

/// `GET /apps/{app}/logs`.
pub(super) async fn app(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> MockResult<Response> {
    let follows = follow(&headers, query.as_deref(), true)?;
    let (lines, prefix) = {
        let state = rack.state();
        let entry = state.app(&app)?;
        let mut lines = vec![format!(
            "system/k8s/{app} release {} active",
            entry.app.release
        )];
        for p in entry.processes.iter().take(4) {
            lines.push(format!("service/{}/{} listening on :3000", p.name, p.id));
            lines.push(format!("service/{}/{} GET /health 200 1ms", p.name, p.id));
        }
        let prefix = entry.processes.first().map_or_else(
            || format!("system/k8s/{app}"),
            |p| format!("service/{}/{}", p.name, p.id),
        );
        (lines, prefix)
    };
    let stream = Stream {
        lines,
        follow: follows.then(|| format!("{prefix} GET / 200 2ms")),
    };
    Ok(respond(&rack, &headers, ws, stream))
}

/// `GET /apps/{app}/processes/{pid}/logs`.
pub(super) async fn process(
    State(rack): State<MockRack>,
    Path((app, pid)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> MockResult<Response> {
    let follows = follow(&headers, query.as_deref(), true)?;
    let prefix = {
        let state = rack.state();
        let process = state.app(&app)?.process(&pid)?;
        format!("service/{}/{}", process.name, process.id)
    };
    let stream = Stream {
        lines: vec![
            format!("{prefix} starting"),
            format!("{prefix} listening on :3000"),
        ],
        follow: follows.then(|| format!("{prefix} GET /health 200 1ms")),
    };
    Ok(respond(&rack, &headers, ws, stream))
}

/// `GET /apps/{app}/builds/{id}/logs`: the (finished) build's output, then close.
pub(super) async fn build(
    State(rack): State<MockRack>,
    Path((app, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> MockResult<Response> {
    follow(&headers, query.as_deref(), true)?;
    let lines = {
        let state = rack.state();
        let build = state.app(&app)?.build(&id)?;
        vec![
            format!("Building: {app} {}", build.id),
            "Step 1/3 : FROM node:20-alpine".to_string(),
            "Step 2/3 : RUN npm ci --omit=dev".to_string(),
            "Step 3/3 : CMD [\"npm\", \"start\"]".to_string(),
            format!("Build: {}", build.id),
            format!("Release: {}", build.release),
        ]
    };
    let stream = Stream {
        lines,
        follow: None,
    };
    Ok(respond(&rack, &headers, ws, stream))
}

/// `GET /system/logs`.
pub(super) async fn system(
    State(rack): State<MockRack>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> MockResult<Response> {
    let follows = follow(&headers, query.as_deref(), true)?;
    let lines = {
        let state = rack.state();
        state
            .apps
            .values()
            .map(|a| {
                format!(
                    "system/k8s/api reconciled app {} ({})",
                    a.app.name, a.app.release
                )
            })
            .collect()
    };
    let stream = Stream {
        lines,
        follow: follows.then(|| "system/k8s/api heartbeat".to_string()),
    };
    Ok(respond(&rack, &headers, ws, stream))
}

async fn send(socket: WebSocket, stream: Stream, mut shutdown: watch::Receiver<bool>) {
    let (mut tx, mut rx) = socket.split();
    for line in &stream.lines {
        if tx.send(Message::text(stamp(line))).await.is_err() {
            return;
        }
    }
    let Some(prefix) = stream.follow else {
        close_normally(tx, rx).await;
        return;
    };
    let mut ticker = tokio::time::interval(FOLLOW_EVERY);
    ticker.tick().await;
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                n += 1;
                if tx.send(Message::text(stamp(&format!("{prefix} #{n}")))).await.is_err() {
                    return;
                }
            }
            message = rx.next() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    finish_client_close(tx).await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => {
                close_going_away(tx, rx).await;
                return;
            }
        }
    }
}

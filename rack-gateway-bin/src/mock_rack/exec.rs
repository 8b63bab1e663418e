//! `GET /apps/{app}/processes/{pid}/exec` (websocket). Output goes out as binary frames, as
//! real Convox streams raw bytes, followed by the Convox exit-status frame
//! (`F1E49A85-0AD7-4AEF-A618-C249C6E6568D:<code>\n`) and a normal close. Nothing is executed:
//! `echo X` prints `X`, `true`/`false`/`exit N` exit, and `cat`, `sh`, `bash` or no command
//! echo every client message back with its type until the client closes.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;

use super::error::MockResult;
use super::ws::{
    close_going_away, close_normally, echo_subprotocol, finish_client_close, header_str,
    query_value, Tx,
};
use super::MockRack;

/// Prefix of the frame that reports the exit code to the Convox SDK.
const STATUS_CODE_PREFIX: &str = "F1E49A85-0AD7-4AEF-A618-C249C6E6568D:";

/// What the mock does for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Program {
    /// Print this output, then exit 0.
    Print(String),
    /// Exit with this code and no output.
    Exit(i32),
    /// Echo client messages until the client closes.
    Interactive,
    /// Unknown command: an error line and exit 127.
    Unknown(String),
}

/// Strips one pair of matching surrounding quotes.
fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

fn parse(command: &str) -> Program {
    let command = command.trim();
    let (head, rest) = command
        .split_once(char::is_whitespace)
        .map_or((command, ""), |(h, r)| (h, r.trim()));
    match head {
        "" | "cat" | "sh" | "bash" | "/bin/sh" | "/bin/bash" if rest.is_empty() => {
            Program::Interactive
        }
        "echo" => Program::Print(format!("{}\n", unquote(rest))),
        "true" => Program::Exit(0),
        "false" => Program::Exit(1),
        "exit" => Program::Exit(rest.parse().unwrap_or(2)),
        _ => Program::Unknown(head.to_string()),
    }
}

/// `GET /apps/{app}/processes/{pid}/exec`: 404 for unknown app/process, else upgrade.
pub(super) async fn exec(
    State(rack): State<MockRack>,
    Path((app, pid)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> MockResult<Response> {
    rack.state().app(&app)?.process(&pid)?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let command = header_str(&headers, "command")
        .map(str::to_string)
        .or_else(|| query_value(query.as_deref(), "command"))
        .unwrap_or_default();
    let program = parse(&command);
    let shutdown = rack.shutdown_signal();
    Ok(echo_subprotocol(ws, &headers).on_upgrade(move |socket| session(socket, program, shutdown)))
}

async fn exit_frame(tx: &mut Tx, code: i32) -> bool {
    let frame = format!("{STATUS_CODE_PREFIX}{code}\n");
    tx.send(Message::binary(frame.into_bytes())).await.is_ok()
}

async fn session(socket: WebSocket, program: Program, mut shutdown: watch::Receiver<bool>) {
    let (mut tx, mut rx) = socket.split();
    let (output, code) = match program {
        Program::Interactive => loop {
            tokio::select! {
                message = rx.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if tx.send(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if tx.send(Message::Binary(bytes)).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        finish_client_close(tx).await;
                        return;
                    }
                },
                _ = shutdown.changed() => {
                    close_going_away(tx, rx).await;
                    return;
                }
            }
        },
        Program::Print(text) => (text, 0),
        Program::Exit(code) => (String::new(), code),
        Program::Unknown(name) => (format!("mock-rack: {name}: command not found\n"), 127),
    };
    if !output.is_empty() && tx.send(Message::binary(output.into_bytes())).await.is_err() {
        return;
    }
    if exit_frame(&mut tx, code).await {
        close_normally(tx, rx).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Program};

    #[test]
    fn commands() {
        assert_eq!(parse("echo hi there"), Program::Print("hi there\n".into()));
        assert_eq!(parse("echo 'a b'"), Program::Print("a b\n".into()));
        assert_eq!(parse("cat"), Program::Interactive);
        assert_eq!(parse(""), Program::Interactive);
        assert_eq!(parse("exit 3"), Program::Exit(3));
        assert_eq!(parse("rm -rf /"), Program::Unknown("rm".into()));
    }
}

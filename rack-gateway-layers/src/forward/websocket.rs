//! Websocket upgrades: Origin check, the upstream handshake, and the byte relay.
//!
//! The relay copies bytes, not messages: after both sides have switched protocols the two
//! upgraded connections are joined by two byte copies, so text, binary, ping/pong and close
//! frames (with their codes and reasons) reach the other side exactly as sent. The relay ends
//! when either side closes its connection (after delivering what that side sent). The client's
//! `Sec-WebSocket-Key` and extensions go to the rack unchanged and the rack's
//! `Sec-WebSocket-Accept` comes back unchanged, so both ends agree on one handshake.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWriteExt as _, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

use super::headers::{self, WEBSOCKET_RESPONSE};
use super::service::{relay_response, Inner};
use super::{origin, RelayStats, RelayStatsSender};
use crate::body::{self, Body};
use crate::error::BoxError;

/// Forwards a websocket upgrade request (already recognised as one).
pub(crate) async fn forward<B>(
    inner: Arc<Inner>,
    mut request: Request<B>,
    uri: Uri,
) -> Result<Response<Body>, BoxError> {
    if let Err(reason) = origin::check(&inner.origins, request.headers()) {
        tracing::debug!(%reason, "websocket upgrade refused");
        return Ok(body::refusal(StatusCode::FORBIDDEN, &reason));
    }
    // Taken before anything is sent upstream: without it the upgrade cannot be completed, so
    // the rack must not see the request at all.
    let Some(client_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Ok(body::refusal(
            StatusCode::BAD_REQUEST,
            "websocket upgrade needs an HTTP/1.1 connection",
        ));
    };
    let stats = request.extensions_mut().remove::<RelayStatsSender>();
    // An upgrade request has no body; whatever the client attached is not forwarded.
    let (parts, unused_body) = request.into_parts();
    drop(unused_body);
    let injected = inner.injected(&parts, true);
    let request_id = String::from_utf8_lossy(injected.request_id.as_bytes()).into_owned();

    let mut upstream = Request::new(body::empty());
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = uri;
    *upstream.version_mut() = Version::HTTP_11;
    *upstream.headers_mut() = headers::upstream_request(&parts.headers, injected);
    let path = upstream.uri().path().to_owned();
    tracing::debug!(%path, %request_id, "forwarding websocket upgrade to rack");

    // No body to send: the header timeout starts at once.
    let (_, sent) = watch::channel(());
    let mut response = inner.send(upstream, sent).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        tracing::debug!(status = %response.status(), %path, "rack declined websocket upgrade");
        return Ok(relay_response(response));
    }
    let rack_upgrade = hyper::upgrade::on(&mut response);

    let mut reply = Response::new(body::empty());
    *reply.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let reply_headers = reply.headers_mut();
    reply_headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    reply_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    for name in WEBSOCKET_RESPONSE.iter().copied() {
        for value in response.headers().get_all(name) {
            reply_headers.append(name, value.clone());
        }
    }
    tokio::spawn(relay(client_upgrade, rack_upgrade, stats, request_id, path));
    Ok(reply)
}

/// Waits for both upgrades, then copies bytes both ways until either side closes or fails.
/// Deliberately untimed: exec and log sessions may last hours.
async fn relay(
    client: OnUpgrade,
    rack: OnUpgrade,
    stats: Option<RelayStatsSender>,
    request_id: String,
    path: String,
) {
    let started = Instant::now();
    let (client, rack) = match tokio::try_join!(client, rack) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%error, %request_id, %path, "websocket upgrade did not complete");
            if let Some(stats) = stats {
                stats.send(RelayStats {
                    client_to_rack: 0,
                    rack_to_client: 0,
                    duration: started.elapsed(),
                });
            }
            return;
        }
    };
    let (client_read, mut client_write) = tokio::io::split(TokioIo::new(client));
    let (rack_read, mut rack_write) = tokio::io::split(TokioIo::new(rack));
    let mut client_read = Counted::new(client_read);
    let mut rack_read = Counted::new(rack_read);
    let result = {
        let upstream = async {
            tokio::io::copy(&mut client_read, &mut rack_write).await?;
            rack_write.shutdown().await
        };
        let downstream = async {
            tokio::io::copy(&mut rack_read, &mut client_write).await?;
            client_write.shutdown().await
        };
        // A websocket has no half-close: once either side has closed its connection (after
        // its close frame, normally) and what it sent has been delivered, the session is over.
        // Waiting for the other side too would leave a relay hanging on a client that keeps
        // its socket open after the close handshake.
        tokio::select! {
            result = upstream => result,
            result = downstream => result,
        }
    };
    let relayed = RelayStats {
        client_to_rack: client_read.read,
        rack_to_client: rack_read.read,
        duration: started.elapsed(),
    };
    match result {
        Ok(_) => tracing::debug!(
            %request_id,
            %path,
            client_to_rack = relayed.client_to_rack,
            rack_to_client = relayed.rack_to_client,
            duration_ms = relayed.duration.as_millis() as u64,
            "websocket relay closed"
        ),
        Err(error) => tracing::debug!(
            %error,
            %request_id,
            %path,
            client_to_rack = relayed.client_to_rack,
            rack_to_client = relayed.rack_to_client,
            duration_ms = relayed.duration.as_millis() as u64,
            "websocket relay ended with an error"
        ),
    }
    if let Some(stats) = stats {
        stats.send(relayed);
    }
}

/// Counts the bytes read from one side of the relay; the count survives an I/O error and the
/// cancelled direction, unlike the total `tokio::io::copy` returns.
struct Counted<T> {
    io: T,
    read: u64,
}

impl<T> Counted<T> {
    fn new(io: T) -> Self {
        Self { io, read: 0 }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            this.read += (buf.filled().len() - before) as u64;
        }
        poll
    }
}

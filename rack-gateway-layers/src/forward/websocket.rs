//! Websocket upgrades: Origin check, the upstream handshake, and the byte relay.
//!
//! The relay copies bytes, not messages: after both sides have switched protocols the two
//! upgraded connections are joined by two byte copies, so text, binary, ping/pong and close
//! frames (with their codes and reasons) reach the other side exactly as sent. The relay ends
//! when either side closes its connection (after delivering what that side sent), or when
//! shutdown asks it to ([`RelayTracker::close_all`](super::RelayTracker::close_all)): then each
//! direction finishes the frame in flight and both sides get a close frame. The client's
//! `Sec-WebSocket-Key` and extensions go to the rack unchanged and the rack's
//! `Sec-WebSocket-Accept` comes back unchanged, so both ends agree on one handshake.
//!
//! The upgrade request goes to the rack on a connection of its own, never a pooled one: if the
//! rack declines, the connection is closed with the response instead of serving the next caller.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::watch;
use tokio::time::Instant;

use super::frames::{going_away, FrameCursor};
use super::headers::{self, WEBSOCKET_RESPONSE};
use super::relays::RelayTracker;
use super::service::{relay_response, ForwardBody, Upstream};
use super::{origin, RelayStats, RelayStatsSender};
use crate::body::{self, GatewayBody};
use crate::error::BoxError;
use crate::upgrade::announces_body;

/// How long shutdown waits for a frame in flight to finish before cutting the connection.
const FINISH_FRAME_LIMIT: Duration = Duration::from_secs(2);

/// Forwards a websocket upgrade request (already recognised as one).
pub(crate) async fn forward<B>(
    upstream: Arc<Upstream>,
    mut request: Request<B>,
    uri: Uri,
) -> Result<Response<ForwardBody>, BoxError> {
    if let Err(reason) = origin::check(&upstream.origins, request.headers()) {
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
    // The authorization layer refuses these already; checked again where the bytes leave.
    if announces_body(request.headers()) {
        return Ok(body::refusal(
            StatusCode::BAD_REQUEST,
            "websocket upgrade requests must not carry a body",
        ));
    }
    let stats = request.extensions_mut().remove::<RelayStatsSender>();
    let (parts, unused_body) = request.into_parts();
    drop(unused_body);
    let injected = upstream.injected(&parts, true);
    let request_id = String::from_utf8_lossy(injected.request_id.as_bytes()).into_owned();

    let mut rack_request = Request::new(body::empty());
    *rack_request.method_mut() = parts.method;
    *rack_request.uri_mut() = uri;
    *rack_request.version_mut() = Version::HTTP_11;
    *rack_request.headers_mut() = headers::upstream_request(&parts.headers, injected);
    let path = rack_request.uri().path().to_owned();
    tracing::debug!(%path, %request_id, "forwarding websocket upgrade to rack");

    let mut response = upstream.send_alone(rack_request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        tracing::debug!(status = %response.status(), %path, "rack declined websocket upgrade");
        return Ok(relay_response(response));
    }
    let rack_upgrade = hyper::upgrade::on(&mut response);

    let mut reply = Response::new(GatewayBody::own(bytes::Bytes::new()));
    *reply.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let reply_headers = reply.headers_mut();
    reply_headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    reply_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    for name in WEBSOCKET_RESPONSE.iter().copied() {
        for value in response.headers().get_all(name) {
            reply_headers.append(name, value.clone());
        }
    }
    let relays = upstream.relays.clone();
    tokio::spawn(relay(
        client_upgrade,
        rack_upgrade,
        relays,
        stats,
        request_id,
        path,
    ));
    Ok(reply)
}

/// Waits for both upgrades, then copies bytes both ways until either side closes or fails, or
/// shutdown closes the session. Deliberately untimed otherwise: exec and log sessions may last
/// hours.
async fn relay(
    client: OnUpgrade,
    rack: OnUpgrade,
    relays: RelayTracker,
    stats: Option<RelayStatsSender>,
    request_id: String,
    path: String,
) {
    let _open = relays.register();
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
                    closed_by_gateway: false,
                });
            }
            return;
        }
    };
    let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
    let (rack_read, rack_write) = tokio::io::split(TokioIo::new(rack));
    // Towards the rack the gateway speaks as a client, whose frames must be masked.
    let mask = random_mask();
    let mut upstream = Pump::new(client_read, rack_write, going_away(Some(mask)));
    let mut downstream = Pump::new(rack_read, client_write, going_away(None));
    let result = {
        let up = upstream.run(relays.closing());
        let down = downstream.run(relays.closing());
        // A websocket has no half-close: once either side has closed its connection (after
        // its close frame, normally) and what it sent has been delivered, the session is over.
        // Waiting for the other side too would leave a relay hanging on a client that keeps
        // its socket open after the close handshake. At shutdown both directions close
        // themselves, so both are awaited then.
        tokio::pin!(up, down);
        tokio::select! {
            result = &mut up => match result {
                Ok(Ending::Shutdown) => down.await.map(|_| Ending::Shutdown),
                other => other,
            },
            result = &mut down => match result {
                Ok(Ending::Shutdown) => up.await.map(|_| Ending::Shutdown),
                other => other,
            },
        }
    };
    let relayed = RelayStats {
        client_to_rack: upstream.moved,
        rack_to_client: downstream.moved,
        duration: started.elapsed(),
        closed_by_gateway: matches!(result, Ok(Ending::Shutdown)),
    };
    match result {
        Ok(ending) => tracing::debug!(
            %request_id,
            %path,
            client_to_rack = relayed.client_to_rack,
            rack_to_client = relayed.rack_to_client,
            duration_ms = relayed.duration.as_millis() as u64,
            ?ending,
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

fn random_mask() -> [u8; 4] {
    use ring::rand::SecureRandom as _;
    let mut mask = [0u8; 4];
    // The mask only has to be unpredictable to the rack's intermediaries; a fixed one on a
    // (never seen) RNG failure is still a valid frame.
    let _ = ring::rand::SystemRandom::new().fill(&mut mask);
    mask
}

/// How one direction of the relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The sending side closed its connection.
    Closed,
    /// Shutdown asked the relay to close; the close frame was sent.
    Shutdown,
}

/// One direction of the relay: copies bytes, following frame boundaries so that shutdown can
/// end it between two frames with a close frame of its own.
struct Pump<R, W> {
    from: R,
    to: W,
    frames: FrameCursor,
    close_frame: Vec<u8>,
    /// Bytes read from `from` and written to `to`.
    moved: u64,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Pump<R, W> {
    fn new(from: R, to: W, close_frame: Vec<u8>) -> Self {
        Pump {
            from,
            to,
            frames: FrameCursor::default(),
            close_frame,
            moved: 0,
        }
    }

    async fn run(&mut self, mut closing: watch::Receiver<bool>) -> io::Result<Ending> {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let asked_to_close = async {
                // The guard `wait_for` returns is not `Send`: drop it here.
                let _ = closing.wait_for(|closing| *closing).await.map(|_| ());
            };
            let read = tokio::select! {
                read = self.from.read(&mut buffer) => read?,
                () = asked_to_close => return self.close(&mut buffer).await,
            };
            if read == 0 {
                self.to.shutdown().await?;
                return Ok(Ending::Closed);
            }
            self.frames.advance(&buffer[..read]);
            self.to.write_all(&buffer[..read]).await?;
            self.moved += read as u64;
        }
    }

    /// Finishes the frame in flight (bounded), then sends the close frame and closes.
    async fn close(&mut self, buffer: &mut [u8]) -> io::Result<Ending> {
        let finish = async {
            while !self.frames.at_boundary() {
                let read = self.from.read(buffer).await?;
                if read == 0 {
                    return Ok::<bool, io::Error>(false);
                }
                let frame_end = self
                    .frames
                    .advance_to_boundary(&buffer[..read])
                    .unwrap_or(read);
                self.to.write_all(&buffer[..frame_end]).await?;
                self.moved += frame_end as u64;
            }
            Ok(true)
        };
        let at_boundary = tokio::time::timeout(FINISH_FRAME_LIMIT, finish)
            .await
            .unwrap_or(Ok(false))?;
        if at_boundary {
            self.to.write_all(&self.close_frame).await?;
        }
        self.to.shutdown().await?;
        Ok(Ending::Shutdown)
    }
}

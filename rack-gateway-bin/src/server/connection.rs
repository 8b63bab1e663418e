//! One accepted connection's life: the TLS handshake, the deadline for its first request, which
//! requests are in flight (so that an idle connection can give way), and giving way when the
//! accept loop needs the room.
//!
//! hyper bounds the header read of each HTTP/1 request once it has started parsing, but not the
//! protocol sniffing before that (hyper-util's auto builder reads up to 24 bytes, with no
//! timeout, to tell HTTP/1 from HTTP/2), nor an HTTP/2 connection that never sends a request.
//! So until the first request has been read, this module keeps its own deadline: the first
//! byte within the first-byte timeout, then the whole first request head within the header
//! read timeout counted from that byte.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::Watcher;
use rack_gateway_layers::{Body, BoxError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt as _};

use super::admission::Ticket;
use super::dispatch::PeerAddr;

/// Connections the gateway closed itself, by reason.
pub(crate) const CLOSED_METRIC: &str = "rgw_connections_closed_total";

/// How long a connection may take to reach its first request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// From accept (or the end of the TLS handshake) to the first byte.
    pub(crate) first_byte: Duration,
    /// From the first byte to the end of the first request head.
    pub(crate) request_head: Duration,
    /// From accept to the end of the TLS handshake.
    pub(crate) tls_handshake: Duration,
}

/// Why the gateway closed a connection of its own accord.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Nothing arrived within the first-byte timeout.
    FirstByte,
    /// The first request head did not complete in time.
    RequestHead,
    /// The TLS handshake did not complete in time.
    TlsHandshake,
    /// The accept loop needed the room (the connection was silent or idle).
    Shed,
}

impl Cut {
    fn label(self) -> &'static str {
        match self {
            Cut::FirstByte => "first_byte_timeout",
            Cut::RequestHead => "request_head_timeout",
            Cut::TlsHandshake => "tls_handshake_timeout",
            Cut::Shed => "shed",
        }
    }
}

/// How far a connection has got towards its first request.
#[derive(Debug)]
pub(crate) struct Progress {
    ticket: Ticket,
    first_byte: OnceLock<Instant>,
}

impl Progress {
    /// A connection that holds `ticket` and has sent nothing yet.
    pub(crate) fn new(ticket: Ticket) -> Arc<Self> {
        Arc::new(Progress {
            ticket,
            first_byte: OnceLock::new(),
        })
    }

    fn saw_bytes(&self) {
        if self.first_byte.get().is_none() {
            let _ = self.first_byte.set(Instant::now());
        }
    }

    /// A request was read; the connection counts as busy until the returned guard is dropped
    /// with the response body. `None` when the connection was told to give way first: the
    /// request still runs, but the task is about to drop the connection.
    fn request_started(self: &Arc<Self>) -> Option<InFlight> {
        self.ticket.request_started().then(|| InFlight {
            progress: Arc::clone(self),
        })
    }

    /// When the connection is cut unless its first request arrives first, counted from
    /// `since` (accept, or the end of the TLS handshake); `None` once it has arrived.
    fn deadline(&self, since: Instant, deadlines: &Deadlines) -> Option<(Instant, Cut)> {
        if !self.ticket.is_silent() {
            return None;
        }
        Some(match self.first_byte.get() {
            None => (since + deadlines.first_byte, Cut::FirstByte),
            Some(first) => (*first + deadlines.request_head, Cut::RequestHead),
        })
    }
}

/// One request in flight on a connection, from its head until its response body is done.
#[derive(Debug)]
struct InFlight {
    progress: Arc<Progress>,
}

impl InFlight {
    /// The response switched protocols: the connection now carries a websocket.
    fn upgraded(&self) {
        self.progress.ticket.pin();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.progress.ticket.request_finished();
    }
}

/// A response body that ends its request's [`InFlight`] when hyper is done with it.
struct Finishing {
    body: Body,
    _in_flight: Option<InFlight>,
}

impl hyper::body::Body for Finishing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A stream that tells its [`Progress`] when bytes arrive, and holds the connection's place
/// under the cap for as long as the stream lives (through a websocket upgrade too).
#[derive(Debug)]
pub(crate) struct Observed<I> {
    io: I,
    progress: Arc<Progress>,
}

impl<I> Observed<I> {
    /// Wraps `io`.
    pub(crate) fn new(io: I, progress: Arc<Progress>) -> Self {
        Observed { io, progress }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Observed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.progress.saw_bytes();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Observed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Everything a connection task needs besides its socket.
pub(crate) struct Serving<S> {
    /// The HTTP/1 + HTTP/2 connection builder.
    pub(crate) builder: Builder<TokioExecutor>,
    /// The gateway's service.
    pub(crate) service: S,
    /// Graceful shutdown's hold on this connection.
    pub(crate) watcher: Watcher,
    /// Its deadlines.
    pub(crate) deadlines: Deadlines,
}

/// Serves one accepted connection until it ends, times out, or is told to give way.
pub(crate) async fn run<S>(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    tls: Option<TlsAcceptor>,
    serving: Serving<S>,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let accepted = Instant::now();
    let progress = Progress::new(ticket);
    let outcome = match tls {
        None => {
            let io = Observed::new(stream, Arc::clone(&progress));
            drive(io, accepted, peer, &progress, serving).await
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout_at(
                accepted + serving.deadlines.tls_handshake,
                acceptor.accept(stream),
            );
            let handshake = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => Ok(stream),
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => Err(Cut::TlsHandshake),
                },
                () = progress.ticket.shed() => Err(Cut::Shed),
            };
            match handshake {
                Ok(stream) => {
                    // Over TLS the first-byte clock starts once the handshake is done.
                    let io = Observed::new(stream, Arc::clone(&progress));
                    drive(io, Instant::now(), peer, &progress, serving).await
                }
                Err(cut) => Err(cut),
            }
        }
    };
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, %peer, "connection ended with an error"),
        Err(cut) => {
            metrics::counter!(CLOSED_METRIC, "reason" => cut.label()).increment(1);
            tracing::debug!(%peer, reason = cut.label(), "connection closed by the gateway");
        }
    }
}

/// The outcome of a connection: hyper's result, or why the gateway cut it.
type Outcome = Result<Result<(), Box<dyn std::error::Error + Send + Sync>>, Cut>;

async fn drive<I, S>(
    io: Observed<I>,
    since: Instant,
    peer: SocketAddr,
    progress: &Arc<Progress>,
    serving: Serving<S>,
) -> Outcome
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let Serving {
        builder,
        service,
        watcher,
        deadlines,
    } = serving;
    let started = Arc::clone(progress);
    let per_connection = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let in_flight = started.request_started();
        request.extensions_mut().insert(PeerAddr(peer));
        let response = service.clone().oneshot(request);
        async move {
            let response = response.await?;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                if let Some(in_flight) = &in_flight {
                    in_flight.upgraded();
                }
            }
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(Finishing {
                    body,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), per_connection);
    let connection = watcher.watch(connection.into_owned());
    tokio::pin!(connection);
    let first = progress.deadline(since, &deadlines);
    let mut armed = first.is_some();
    let timer = tokio::time::sleep_until(first.map_or(since, |(at, _)| at));
    tokio::pin!(timer);
    loop {
        tokio::select! {
            outcome = &mut connection => return Ok(outcome),
            () = progress.ticket.shed() => return Err(Cut::Shed),
            () = &mut timer, if armed => match progress.deadline(since, &deadlines) {
                None => armed = false,
                Some((deadline, cut)) if deadline <= Instant::now() => return Err(cut),
                Some((deadline, _)) => timer.as_mut().reset(deadline),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::admission::Admission;
    use super::*;

    const DEADLINES: Deadlines = Deadlines {
        first_byte: Duration::from_secs(10),
        request_head: Duration::from_secs(30),
        tls_handshake: Duration::from_secs(10),
    };

    async fn progress() -> (Admission, Arc<Progress>) {
        let admission = Admission::new(4);
        let ticket = admission.reserve().await.admit();
        (admission, Progress::new(ticket))
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_moves_from_first_byte_to_request_head_and_then_away() {
        let (_admission, progress) = progress().await;
        let since = Instant::now();
        assert_eq!(
            progress.deadline(since, &DEADLINES),
            Some((since + DEADLINES.first_byte, Cut::FirstByte))
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        progress.saw_bytes();
        let first = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        progress.saw_bytes();
        assert_eq!(
            progress.deadline(since, &DEADLINES),
            Some((first + DEADLINES.request_head, Cut::RequestHead)),
            "counted from the first byte, not the latest"
        );
        let in_flight = progress.request_started();
        assert!(in_flight.is_some());
        assert_eq!(progress.deadline(since, &DEADLINES), None);
        drop(in_flight);
        assert_eq!(
            progress.deadline(since, &DEADLINES),
            None,
            "once served, hyper's own timeouts apply"
        );
    }

    #[tokio::test]
    async fn reading_through_the_wrapper_marks_the_first_byte() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let (_admission, progress) = progress().await;
        let (mut client, server) = tokio::io::duplex(64);
        let mut observed = Observed::new(server, Arc::clone(&progress));
        observed.write_all(b"hello").await.expect("write");
        assert!(
            progress.first_byte.get().is_none(),
            "writing is not progress"
        );
        client.write_all(b"x").await.expect("write");
        let mut byte = [0u8; 1];
        observed.read_exact(&mut byte).await.expect("read");
        assert!(progress.first_byte.get().is_some());
    }

    #[tokio::test]
    async fn the_place_under_the_cap_lasts_as_long_as_the_stream() {
        let (admission, progress) = progress().await;
        let (_client, server) = tokio::io::duplex(64);
        let observed = Observed::new(server, Arc::clone(&progress));
        drop(progress);
        assert_eq!(admission.open(), 1);
        drop(observed);
        assert_eq!(admission.open(), 0);
    }
}

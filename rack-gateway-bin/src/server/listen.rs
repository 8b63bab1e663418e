//! Accepting connections: HTTP/1.1 and HTTP/2, optional TLS, websocket upgrades, limits on
//! header size, request head time and open connections, and graceful shutdown.
//!
//! Each connection runs in the `connection` module, which bounds the time to its first request;
//! `admission` caps how many are open and picks which gives way.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use rack_gateway_layers::Body;
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use super::admission::Admission;
use super::connection::{self, Deadlines, Serving};

/// Request headers larger than this are refused (hyper answers 431).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long in-flight requests get to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 has no per-request header timeout; pings at least find peers that are gone.
const H2_PING_INTERVAL: Duration = Duration::from_secs(60);
/// How long an HTTP/2 ping may go unanswered before the connection is closed.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// The pause after an accept error that is neither a vanished peer nor a lack of resources.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait for a descriptor to free up before accepting is tried again.
const EXHAUSTED_RETRY: Duration = Duration::from_millis(100);
/// One warning per kind of trouble per this long, however often it happens.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Connections the kernel may queue for accept (it caps this at `net.core.somaxconn`). Deeper
/// than tokio's 1024, so a burst or a moment's stall under a flood does not drop real clients'
/// handshakes, which they would only retry a second or more later.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the main listener at `address`.
pub fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As tokio's own bind does: a restarted gateway must not wait out old TIME_WAIT sockets.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How many connections the gateway holds, and how long each may take to say something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once; past it the oldest that has not sent a request, else the one
    /// idle the longest, is closed to make room.
    pub max_connections: usize,
    /// From accept (or the end of the TLS handshake) to the first byte of the first request.
    pub first_byte_timeout: Duration,
    /// From a request's first byte to the end of its head; also how long a kept-alive
    /// HTTP/1 connection may wait for its next request.
    pub header_read_timeout: Duration,
    /// From accept to the end of the TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl ConnectionLimits {
    /// The default timeouts (10 s to the first byte, 30 s per request head, 10 s per TLS
    /// handshake) with at most `max_connections` open.
    pub fn new(max_connections: usize) -> Self {
        ConnectionLimits {
            max_connections,
            first_byte_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A file could not be read.
    #[error("{variable}: cannot read {path}: {source}")]
    Read {
        /// Which variable named the file.
        variable: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file held no usable certificate or key.
    #[error("{variable}: {problem}")]
    Invalid {
        /// Which variable named the file.
        variable: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Builds a TLS 1.2+ acceptor from PEM files, with the ring provider.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsConfigError> {
    let read = |variable, path: &Path| {
        std::fs::read(path).map_err(|source| TlsConfigError::Read {
            variable,
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read("TLS_CERT_FILE", cert)?;
    let key_pem = read("TLS_KEY_FILE", key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Invalid {
            variable: "TLS_CERT_FILE",
            problem: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::Invalid {
            variable: "TLS_CERT_FILE",
            problem: "no PEM certificate found".into(),
        });
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TlsConfigError::Invalid {
            variable: "TLS_KEY_FILE",
            problem: e.to_string(),
        })?
        .ok_or_else(|| TlsConfigError::Invalid {
            variable: "TLS_KEY_FILE",
            problem: "no PEM private key found".into(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsConfigError::Invalid {
            variable: "TLS_CERT_FILE",
            problem: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError::Invalid {
            variable: "TLS_KEY_FILE",
            problem: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `service` on `listener` within `limits` until `shutdown` resolves, then drains open
/// connections.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let deadlines = Deadlines {
        first_byte: limits.first_byte_timeout,
        request_head: limits.header_read_timeout,
        tls_handshake: limits.tls_handshake_timeout,
    };
    let admission = Admission::new(limits.max_connections);
    let graceful = GracefulShutdown::new();
    let mut warnings = Warnings::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = after_accept_error(&admission, error, &mut warnings) => continue,
                }
            }
        };
        // Room is made only for a connection that is actually here: nothing is shed ahead of
        // need, and while every connection is busy the rest wait in the listen queue.
        let permit = match admission.try_reserve() {
            Some(permit) => permit,
            None => {
                warnings.full(&admission);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    permit = admission.reserve() => permit,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let serving = Serving {
            builder: builder.clone(),
            service: service.clone(),
            watcher: graceful.watcher(),
            deadlines,
        };
        tokio::spawn(connection::run(
            stream,
            peer,
            permit.admit(),
            tls.clone(),
            serving,
        ));
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    Ok(())
}

/// What an accept error says about the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AcceptError {
    /// One queued connection went away before it was accepted: try the next at once.
    PeerGone,
    /// Out of file descriptors or memory: free some before trying again.
    Exhausted,
    /// Anything else: pause briefly so a lasting error cannot make the loop spin.
    Other,
}

impl AcceptError {
    fn of(error: &io::Error) -> Self {
        // ENFILE and EMFILE have no ErrorKind of their own; their numbers are the same on
        // Linux, macOS and the BSDs.
        const ENFILE: i32 = 23;
        const EMFILE: i32 = 24;
        match error.kind() {
            io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted => AcceptError::PeerGone,
            io::ErrorKind::OutOfMemory => AcceptError::Exhausted,
            _ if matches!(error.raw_os_error(), Some(ENFILE | EMFILE)) => AcceptError::Exhausted,
            _ => AcceptError::Other,
        }
    }
}

/// Reacts to a failed accept, and pauses as long as needed before the next try.
async fn after_accept_error(admission: &Admission, error: io::Error, warnings: &mut Warnings) {
    match AcceptError::of(&error) {
        AcceptError::PeerGone => {
            tracing::debug!(%error, "a connection went away before it was accepted");
        }
        AcceptError::Exhausted => {
            let shedding = admission.make_room();
            warnings.exhausted(&error, shedding, admission);
            // A shed connection frees its descriptor as soon as its task runs; descriptors
            // held elsewhere (the store, upstream connections) free without telling us.
            let _ = tokio::time::timeout(EXHAUSTED_RETRY, admission.changed()).await;
        }
        AcceptError::Other => {
            warnings.accept_failed(&error);
            tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
        }
    }
}

/// Rate-limited warnings about connection trouble: a flood must not become a log flood.
#[derive(Debug, Default)]
struct Warnings {
    full: Throttle,
    exhausted: Throttle,
    accept_failed: Throttle,
    shed_reported: u64,
}

impl Warnings {
    fn full(&mut self, admission: &Admission) {
        if let Some(times) = self.full.hit() {
            let shed = admission.shed_total() - self.shed_reported;
            self.shed_reported = admission.shed_total();
            tracing::warn!(
                max_connections = admission.limit(),
                times,
                closed_to_make_room = shed,
                "connection limit reached: silent and idle connections are closed to make room, \
                 and accepting waits while every connection is serving a request"
            );
        }
    }

    fn exhausted(&mut self, error: &io::Error, shedding: bool, admission: &Admission) {
        if let Some(times) = self.exhausted.hit() {
            tracing::warn!(
                %error,
                times,
                open = admission.open(),
                shedding,
                "accept failed: out of file descriptors or memory; closing silent and idle \
                 connections (lower MAX_CONNECTIONS or raise the open-file limit)"
            );
        }
    }

    fn accept_failed(&mut self, error: &io::Error) {
        if let Some(times) = self.accept_failed.hit() {
            tracing::warn!(%error, times, "accept failed");
        }
    }
}

/// Counts events and lets one through per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    since_last: u64,
}

impl Throttle {
    /// `Some(events since the last report, this one included)` when a report is due.
    fn hit(&mut self) -> Option<u64> {
        self.since_last += 1;
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + WARN_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

#[cfg(test)]
mod tests;

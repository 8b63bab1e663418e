//! The pooled HTTP/1.1 client to the rack, its connect timeout, and the mapping of its errors to
//! the crate's typed infrastructure errors.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::tls::is_pin_mismatch;
use crate::body::Body;
use crate::error::{BoxError, ClientBodyError, RackCertificateMismatch, RackUnavailable};

/// The client type: one per [`RackForward`](super::RackForward), shared by every request.
pub(crate) type RackClient = Client<ConnectWithTimeout, Body>;

/// How long an idle pooled connection to the rack is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Builds the connector (TCP connect plus TLS handshake, bounded together) and the pooled
/// client over it: HTTP/1.1 only (upgrades need it) and `TCP_NODELAY`.
pub(crate) fn build(
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
) -> (RackClient, ConnectWithTimeout) {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let connector = ConnectWithTimeout {
        inner: https,
        timeout: connect_timeout,
    };
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector.clone());
    (client, connector)
}

/// Sends `request` on a connection of its own, which serves no other request.
///
/// Websocket upgrades go this way: when the rack declines an upgrade, what it does with the rest
/// of that connection is up to it (some racks keep reading it as a byte stream), so it must
/// never be handed back to the pool for the next caller's request.
pub(crate) async fn send_alone(
    connector: &ConnectWithTimeout,
    request: Request<Body>,
    authority: &str,
) -> Result<Response<Incoming>, BoxError> {
    use tower::ServiceExt as _;
    let io = connector
        .clone()
        .oneshot(request.uri().clone())
        .await
        .map_err(|error| unavailable(error.as_ref(), true, authority))?;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Body>(io)
        .await
        .map_err(|error| unavailable(&error, true, authority))?;
    tokio::spawn(async move {
        // Ends when the response (and any upgrade) is done and `sender` is dropped.
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "rack upgrade connection ended with an error");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(|error| unavailable(&error, false, authority))
}

/// Establishing a connection (TCP and TLS together) took longer than the connect timeout.
#[derive(Debug, thiserror::Error)]
#[error("connecting timed out after {0:?}")]
pub(crate) struct ConnectTimeout(Duration);

/// An HTTPS-or-HTTP connector whose whole connect (TCP connect and TLS handshake) is bounded.
///
/// `HttpConnector::set_connect_timeout` only bounds the TCP part; a rack that accepts TCP and
/// then stalls the handshake must not hold a request forever.
#[derive(Clone, Debug)]
pub(crate) struct ConnectWithTimeout {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

// === impl ConnectWithTimeout ===

impl tower::Service<http::Uri> for ConnectWithTimeout {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let limit = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(result) => result,
                Err(_elapsed) => Err(Box::new(ConnectTimeout(limit)) as BoxError),
            }
        })
    }
}

/// Maps a pooled client's error to a typed infrastructure error.
pub(crate) fn classify(error: hyper_util::client::legacy::Error, authority: &str) -> BoxError {
    let connect = error.is_connect();
    match error.source() {
        Some(source) => unavailable(source, connect, authority),
        None => unavailable(&error, connect, authority),
    }
}

/// Maps a connection or request error to [`ClientBodyError`] (the caller's body failed, not the
/// rack), [`RackCertificateMismatch`], or [`RackUnavailable`] with a reason for the log.
pub(crate) fn unavailable(
    error: &(dyn StdError + 'static),
    connect: bool,
    authority: &str,
) -> BoxError {
    let mut messages: Vec<String> = Vec::new();
    let mut mismatch = false;
    let mut timed_out = None;
    let mut client_body = None;
    visit(error, &mut |err| {
        if let Some(body) = err.downcast_ref::<ClientBodyError>() {
            client_body.get_or_insert_with(|| body.0.to_string());
        }
        if err.is::<RackCertificateMismatch>()
            || err
                .downcast_ref::<rustls::Error>()
                .is_some_and(is_pin_mismatch)
        {
            mismatch = true;
        }
        if let Some(timeout) = err.downcast_ref::<ConnectTimeout>() {
            timed_out = Some(timeout.0);
        }
        let message = err.to_string();
        if !messages.iter().any(|seen| seen.contains(&message)) {
            messages.push(message);
        }
    });
    if let Some(reason) = client_body {
        return Box::new(ClientBodyError(reason.into()));
    }
    if mismatch {
        return Box::new(RackCertificateMismatch);
    }
    let reason = if let Some(limit) = timed_out {
        format!("connecting to {authority} timed out after {limit:?}")
    } else {
        let what = if connect {
            format!("cannot connect to {authority}")
        } else {
            format!("request to {authority} failed")
        };
        if messages.is_empty() {
            format!("{what}: {error}")
        } else {
            format!("{what}: {}", messages.join(": "))
        }
    };
    Box::new(RackUnavailable(reason))
}

/// Calls `f` on `error` and everything it wraps: `source()` links, and also the inner error of
/// `std::io::Error`, whose `source()` skips it (hyper-rustls and tokio-rustls wrap rustls errors
/// in one or two `io::Error`s).
fn visit<'a>(error: &'a (dyn StdError + 'static), f: &mut dyn FnMut(&'a (dyn StdError + 'static))) {
    let mut current = Some(error);
    // Bounded: error chains are short; this guards against a pathological cycle.
    let mut depth = 0;
    while let Some(err) = current {
        depth += 1;
        if depth > 16 {
            return;
        }
        f(err);
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn StdError + 'static) = inner;
            current = Some(inner);
        } else {
            current = err.source();
        }
    }
}

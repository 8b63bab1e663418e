//! The pooled HTTP/1.1 client to the rack, its connect timeout, and the mapping of its errors to
//! the crate's typed infrastructure errors.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::tls::is_pin_mismatch;
use crate::body::Body;
use crate::error::{BoxError, RackCertificateMismatch, RackUnavailable};

/// The client type: one per [`RackForward`](super::RackForward), shared by every request.
pub(crate) type RackClient = Client<ConnectWithTimeout, Body>;

/// How long an idle pooled connection to the rack is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Builds the pooled client: HTTP/1.1 only (upgrades need it), `TCP_NODELAY`, and a limit on
/// TCP connect plus TLS handshake.
pub(crate) fn build(tls: rustls::ClientConfig, connect_timeout: Duration) -> RackClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(ConnectWithTimeout {
            inner: https,
            timeout: connect_timeout,
        })
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

/// Maps a client error to [`RackCertificateMismatch`] or [`RackUnavailable`] with a reason.
pub(crate) fn classify(error: hyper_util::client::legacy::Error, authority: &str) -> BoxError {
    let mut messages: Vec<String> = Vec::new();
    let mut mismatch = false;
    let mut timed_out = None;
    if let Some(source) = error.source() {
        visit(source, &mut |err| {
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
    }
    if mismatch {
        return Box::new(RackCertificateMismatch);
    }
    let reason = if let Some(limit) = timed_out {
        format!("connecting to {authority} timed out after {limit:?}")
    } else {
        let what = if error.is_connect() {
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

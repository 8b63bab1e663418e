//! [`RackForward`]: plain HTTP forwarding; websocket upgrades are handed to `websocket`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use rack_gateway_core::identity::Principal;
use tokio::sync::watch;

use super::client::{self, RackClient};
use super::config::{ForwardConfigError, OriginPolicy, RackTarget, RackTls};
use super::deadline::{header_deadline, Progress};
use super::headers::{self, Injected};
use super::{tls, websocket, EnvHeadersAllowed, RackPath, RelayTracker};
use crate::body::{Body, GatewayBody};
use crate::error::{BoxError, RackTimeout};
use crate::upgrade::is_websocket_upgrade;

/// A request reached [`RackForward`] in a state that must never be forwarded. These are bugs in
/// the layer stack (fail closed), not client errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// No [`RackPath`] in the request extensions: the authorization layer did not run.
    #[error("refusing to forward: no RackPath in the request (authorization layer missing)")]
    MissingRackPath,
    /// The [`RackPath`] is not an origin-form path and query.
    #[error("refusing to forward: invalid rack path {0:?}")]
    InvalidRackPath(String),
    /// `CONNECT` would make the client tunnel to the rack's authority: never forwarded, whatever
    /// the layers above decided.
    #[error("refusing to forward a CONNECT request")]
    Connect,
}

/// The innermost service: sends an already-authorized request to the Convox rack.
///
/// Cheap to clone: the pooled client, TLS configuration and precomputed credential header are
/// shared behind an `Arc` and built once in [`RackForward::new`]. See the [module
/// docs](super) for the header and timeout rules.
#[derive(Clone)]
pub struct RackForward {
    upstream: Arc<Upstream>,
}

/// Shared state of a [`RackForward`].
pub(crate) struct Upstream {
    client: RackClient,
    /// The client's connector, for requests that get a connection of their own (upgrades).
    pub(crate) connector: client::ConnectWithTimeout,
    scheme: Scheme,
    authority: Authority,
    /// The base URL's path without its trailing `/` (often empty).
    prefix: String,
    host: HeaderValue,
    /// `Basic base64(user:token)`, marked sensitive.
    authorization: HeaderValue,
    /// `scheme://authority` of the rack, sent as `Origin` on websocket upgrades.
    rack_origin: HeaderValue,
    header_timeout: Duration,
    pub(crate) origins: OriginPolicy,
    /// The open websocket relays, for shutdown.
    pub(crate) relays: RelayTracker,
}

// === impl RackForward ===

impl RackForward {
    /// Validates `target` and builds the TLS configuration and the pooled client.
    ///
    /// Fails on a base URL that is not absolute `http(s)://host[:port][/prefix]`, on empty or
    /// unusable credentials, on zero timeouts, on a pin with a plain-HTTP base, and (for
    /// [`RackTls::Verify`]) when the system has no root certificates.
    pub fn new(target: RackTarget, origins: OriginPolicy) -> Result<Self, ForwardConfigError> {
        let base = target.base.to_string();
        let invalid = |reason: &'static str| ForwardConfigError::InvalidBase {
            base: base.clone(),
            reason,
        };
        let scheme = target
            .base
            .scheme()
            .cloned()
            .ok_or_else(|| invalid("it needs an http:// or https:// scheme"))?;
        let https = if scheme == Scheme::HTTPS {
            true
        } else if scheme == Scheme::HTTP {
            false
        } else {
            return Err(invalid("the scheme must be http or https"));
        };
        let authority = target
            .base
            .authority()
            .cloned()
            .ok_or_else(|| invalid("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "credentials belong in RACK_USERNAME and RACK_TOKEN, not in the URL",
            ));
        }
        if target.base.query().is_some() {
            return Err(invalid("it must not have a query string"));
        }
        let prefix = target.base.path().trim_end_matches('/').to_owned();

        if target.username.is_empty() || target.username.contains(':') {
            return Err(ForwardConfigError::InvalidCredentials(
                "RACK_USERNAME must be non-empty and must not contain ':'",
            ));
        }
        if target.token.is_empty() {
            return Err(ForwardConfigError::InvalidCredentials(
                "RACK_TOKEN is empty",
            ));
        }
        if target.connect_timeout.is_zero() {
            return Err(ForwardConfigError::ZeroTimeout("connect"));
        }
        if target.header_timeout.is_zero() {
            return Err(ForwardConfigError::ZeroTimeout("header"));
        }
        if !https && matches!(target.tls, RackTls::Pinned(_)) {
            return Err(ForwardConfigError::PinWithoutTls(base));
        }

        let credential = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", target.username, target.token));
        let mut authorization = HeaderValue::try_from(format!("Basic {credential}"))
            .map_err(|_| ForwardConfigError::InvalidCredentials("cannot build the header"))?;
        authorization.set_sensitive(true);
        let host = HeaderValue::try_from(authority.as_str())
            .map_err(|_| invalid("the host is not a valid header value"))?;
        let rack_origin = HeaderValue::try_from(format!("{scheme}://{authority}"))
            .map_err(|_| invalid("the host is not a valid header value"))?;

        // A plain-HTTP rack never uses TLS, but the connector still needs a configuration; do
        // not make `Verify` (the default) fail start-up for want of root certificates then.
        let tls_config = if https {
            tls::client_config(&target.tls)?
        } else {
            tls::client_config(&RackTls::Insecure)?
        };
        let (client, connector) = client::build(tls_config, target.connect_timeout);

        Ok(Self {
            upstream: Arc::new(Upstream {
                client,
                connector,
                scheme,
                authority,
                prefix,
                host,
                authorization,
                rack_origin,
                header_timeout: target.header_timeout,
                origins,
                relays: RelayTracker::default(),
            }),
        })
    }
}

impl RackForward {
    /// The websocket relays this forwarder has open (to close them at shutdown).
    pub fn relays(&self) -> &RelayTracker {
        &self.upstream.relays
    }
}

impl fmt::Debug for RackForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RackForward")
            .field("scheme", &self.upstream.scheme)
            .field("authority", &self.upstream.authority)
            .field("prefix", &self.upstream.prefix)
            .field("header_timeout", &self.upstream.header_timeout)
            .field("origins", &self.upstream.origins)
            .finish_non_exhaustive()
    }
}

impl<B> tower::Service<Request<B>> for RackForward
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ForwardBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The pool has no limit to wait for; the rack's own backpressure is TCP.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let upstream = Arc::clone(&self.upstream);
        ResponseFuture {
            forwarding: Box::pin(upstream.forward(request)),
        }
    }
}

/// Response future of [`RackForward`].
pub struct ResponseFuture {
    forwarding: Pin<Box<dyn Future<Output = Result<Response<ForwardBody>, BoxError>> + Send>>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<ForwardBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.forwarding.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

// === impl Upstream ===

impl Upstream {
    async fn forward<B>(
        self: Arc<Self>,
        request: Request<B>,
    ) -> Result<Response<ForwardBody>, BoxError>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(RackPath(path)) = request.extensions().get::<RackPath>() else {
            return Err(ForwardError::MissingRackPath.into());
        };
        if request.method() == http::Method::CONNECT {
            return Err(ForwardError::Connect.into());
        }
        let uri = self.upstream_uri(path)?;
        if is_websocket_upgrade(&request) {
            return websocket::forward(self, request, uri).await;
        }

        let (parts, body) = request.into_parts();
        let injected = self.injected(&parts, false);
        // hyper sends no body for a GET/HEAD/CONNECT of unknown length unless told to chunk it;
        // a body the client did send must not be dropped silently.
        let chunk_it = !body.is_end_stream() && body.size_hint().exact().is_none();
        let (body, progress) = Progress::new(body);
        let mut upstream = Request::new(crate::body::boxed(body));
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = uri;
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = headers::upstream_request(&parts.headers, injected);
        if chunk_it {
            upstream.headers_mut().insert(
                http::header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            upstream.headers_mut().remove(http::header::CONTENT_LENGTH);
        }
        tracing::debug!(
            method = %upstream.method(),
            path = upstream.uri().path(),
            "forwarding to rack"
        );
        let response = self.send(upstream, progress).await?;
        Ok(relay_response(response))
    }

    /// `base + rack path`, built from parts so the path can never change the authority.
    fn upstream_uri(&self, rack_path: &str) -> Result<Uri, ForwardError> {
        // The query may carry secrets and the error is logged: name the path only.
        let shown = rack_path.split('?').next().unwrap_or_default();
        let invalid = || ForwardError::InvalidRackPath(shown.to_owned());
        if !rack_path.starts_with('/') || rack_path.contains('#') {
            return Err(invalid());
        }
        let path_and_query =
            PathAndQuery::try_from(format!("{}{rack_path}", self.prefix)).map_err(|_| invalid())?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| invalid())
    }

    /// The headers the gateway sets on the upstream request.
    pub(crate) fn injected(&self, parts: &http::request::Parts, websocket: bool) -> Injected<'_> {
        let request_id = parts
            .headers
            .get(headers::X_REQUEST_ID)
            .filter(|value| !value.is_empty())
            .cloned()
            .unwrap_or_else(new_request_id);
        let principal = parts
            .extensions
            .get::<Arc<Principal>>()
            .map(|principal| &**principal)
            .or_else(|| parts.extensions.get::<Principal>());
        let user_email = principal.and_then(Principal::email).and_then(|email| {
            let value = HeaderValue::from_bytes(email.as_bytes()).ok();
            if value.is_none() {
                tracing::warn!("principal email is not a valid header value; X-User-Email omitted");
            }
            value
        });
        Injected {
            host: &self.host,
            authorization: &self.authorization,
            request_id,
            user_email,
            websocket_origin: websocket.then_some(&self.rack_origin),
            env_headers: parts.extensions.get::<EnvHeadersAllowed>().is_some(),
        }
    }

    /// Sends `request` through the pool, bounded by the header timeout.
    pub(crate) async fn send(
        &self,
        request: Request<Body>,
        progress: watch::Receiver<()>,
    ) -> Result<Response<Incoming>, BoxError> {
        let limit = self.header_timeout;
        tokio::select! {
            result = self.client.request(request) => {
                result.map_err(|error| client::classify(error, self.authority.as_str()))
            }
            () = header_deadline(progress, limit) => Err(Box::new(RackTimeout(limit))),
        }
    }
}

impl Upstream {
    /// Sends `request` on a connection of its own (see [`client::send_alone`]), bounded by the
    /// header timeout.
    pub(crate) async fn send_alone(
        &self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, BoxError> {
        let limit = self.header_timeout;
        let (_, progress) = watch::channel(());
        tokio::select! {
            result = client::send_alone(&self.connector, request, self.authority.as_str()) => result,
            () = header_deadline(progress, limit) => Err(Box::new(RackTimeout(limit))),
        }
    }
}

fn new_request_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    HeaderValue::try_from(id).unwrap_or_else(|_| HeaderValue::from_static("invalid-request-id"))
}

/// The rack's response with hop-by-hop headers removed and the body streamed.
pub(crate) fn relay_response(response: Response<Incoming>) -> Response<ForwardBody> {
    let (mut parts, body) = response.into_parts();
    headers::strip_response(&mut parts.headers);
    Response::from_parts(parts, GatewayBody::inner(body))
}

/// What [`RackForward`] answers with: the rack's body streamed, or the forwarder's own (a
/// refusal, an empty `101`).
pub type ForwardBody = GatewayBody<Incoming>;

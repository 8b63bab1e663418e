//! The outermost service: request ids, security headers and the access log (tower-http), then
//! routing by path to the proxy stack, the API stack or the router.
//!
//! The access log never contains query strings or credentials: a line holds the method, the
//! path, the status, the latency and the request id.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HeaderName, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
pub use rack_gateway_layers::peer::PeerAddr;
use rack_gateway_layers::Body;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::routes::{HEALTH, READY};
use crate::api::{ApiService, API_PREFIX};

/// Where the Convox API is proxied.
pub const PROXY_PREFIX: &str = "/api/v1/rack-proxy";

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

type ProxyService = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;
type SignInService = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

/// The top-level service, built once: proxy paths to the proxy stack, the sign-in endpoints to
/// theirs, the rest of `/api/v1` to the API stack (all three audited), health and the rest to
/// the router.
#[derive(Clone)]
pub struct Dispatch {
    service: BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>,
}

impl Dispatch {
    /// Wraps the four in request ids, security headers and the access log.
    pub fn new(
        proxy: ProxyService,
        sign_in: SignInService,
        api: ApiService<Incoming>,
        router: axum::Router,
    ) -> Self {
        let service = ServiceBuilder::new()
            .map_response(|response: Response<_>| response.map(rack_gateway_layers::body::boxed))
            .map_request(drop_unusable_request_id)
            .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
            .layer(SetResponseHeaderLayer::overriding(
                X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(access_line)
                    .on_failure(()),
            )
            .service(ByPath {
                proxy,
                sign_in,
                api,
                router,
            });
        Dispatch {
            service: BoxCloneSyncService::new(service),
        }
    }
}

impl Service<Request<Incoming>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible> as Service<
        Request<Incoming>,
    >>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        self.service.call(request)
    }
}

/// The span of one request: method, path (never the query) and request id.
fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    )
}

/// One access-log line per response.
fn access_line<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        target: "rack_gateway::access",
        status = response.status().as_u16(),
        latency_us = latency.as_micros() as u64,
    );
}

/// Keeps a well-formed client X-Request-ID (one value, ≤ 128 visible ASCII characters) and
/// removes any other, so that a fresh one is made: ids end up in logs and audit records.
fn drop_unusable_request_id<B>(mut request: Request<B>) -> Request<B> {
    let mut values = request.headers().get_all(X_REQUEST_ID).iter();
    let usable = match (values.next(), values.next()) {
        (Some(value), None) => {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        }
        _ => false,
    };
    if !usable {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    request
}

/// Where a request goes.
enum Destination {
    Proxy,
    SignIn,
    Api,
    Router,
}

fn destination(path: &str) -> Destination {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under(PROXY_PREFIX) {
        Destination::Proxy
    } else if path == HEALTH || path == READY {
        Destination::Router
    } else if crate::signin::serves(path) {
        Destination::SignIn
    } else if under(API_PREFIX) {
        Destination::Api
    } else {
        Destination::Router
    }
}

/// Picks the stack by path.
#[derive(Clone)]
struct ByPath {
    proxy: ProxyService,
    sign_in: SignInService,
    api: ApiService<Incoming>,
    router: axum::Router,
}

impl Service<Request<Incoming>> for ByPath {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        match destination(request.uri().path()) {
            Destination::Proxy => Box::pin(self.proxy.clone().oneshot(request)),
            Destination::SignIn => Box::pin(self.sign_in.clone().oneshot(request)),
            Destination::Api => Box::pin(self.api.clone().oneshot(request)),
            Destination::Router => {
                let router = self.router.clone();
                Box::pin(async move {
                    let response = router.oneshot(request.map(axum::body::Body::new)).await?;
                    Ok(response.map(rack_gateway_layers::body::boxed))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_to_the_proxy_the_api_or_the_router() {
        let proxied = |path| matches!(destination(path), Destination::Proxy);
        let api = |path| matches!(destination(path), Destination::Api);
        assert!(proxied("/api/v1/rack-proxy"));
        assert!(proxied("/api/v1/rack-proxy/apps"));
        assert!(!proxied("/api/v1/rack-proxyx/apps"));
        // Everything else under /api/v1 is the (audited) API, unknown paths included.
        assert!(api("/api/v1/rack-proxyx/apps"));
        assert!(api("/api/v1/audit-logs"));
        assert!(api("/api/v1/no-such-thing"));
        assert!(api("/api/v1/health/other"));
        assert!(!api("/api/v1/health"));
        assert!(!api("/api/v1/health/ready"));
        assert!(!api("/api/v10/x"));
        let sign_in = |path| matches!(destination(path), Destination::SignIn);
        assert!(sign_in("/api/v1/auth/web/callback"));
        assert!(sign_in("/api/v1/auth/cli/start"));
        // Signing out needs the session: the authenticated API serves it.
        assert!(api("/api/v1/auth/web/logout"));
        assert!(matches!(destination("/"), Destination::Router));
    }

    #[test]
    fn unusable_request_ids_are_dropped_so_that_a_fresh_one_is_made() {
        let with = |values: &[&str]| {
            let mut builder = Request::builder();
            for value in values {
                builder = builder.header("x-request-id", *value);
            }
            let request = drop_unusable_request_id(builder.body(()).unwrap());
            request.headers().get_all("x-request-id").iter().count()
        };
        assert_eq!(with(&["abc-123"]), 1);
        assert_eq!(with(&[&"a".repeat(200)]), 0);
        assert_eq!(with(&["has space"]), 0);
        assert_eq!(with(&["a", "b"]), 0);
        assert_eq!(with(&[]), 0);
    }
}

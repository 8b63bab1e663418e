//! Routing by path between the proxy stack and the other endpoints, with request ids and an
//! access log that never contains query strings or credentials.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
pub use rack_gateway_layers::audit::PeerAddr;
use rack_gateway_layers::Body;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt as _};

use super::routes::{HEALTH, READY};
use crate::api::{ApiService, API_PREFIX};

/// Where the Convox API is proxied.
pub const PROXY_PREFIX: &str = "/api/v1/rack-proxy";

type ProxyService = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

/// The top-level service: proxy paths to the proxy stack, `/api/v1` to the API stack (both
/// audited), health and the rest to the router.
#[derive(Clone)]
pub struct Dispatch {
    proxy: ProxyService,
    api: ApiService<Incoming>,
    router: axum::Router,
}

impl Dispatch {
    /// Combines the proxy stack, the API stack and the router.
    pub fn new(proxy: ProxyService, api: ApiService<Incoming>, router: axum::Router) -> Self {
        Dispatch { proxy, api, router }
    }
}

/// Where a request goes.
enum Destination {
    Proxy,
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
    } else if under(API_PREFIX) {
        Destination::Api
    } else {
        Destination::Router
    }
}

impl Service<Request<Incoming>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let started = Instant::now();
        let request_id = ensure_request_id(&mut request);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let destination = destination(&path);
        let (proxy, api, router) = (self.proxy.clone(), self.api.clone(), self.router.clone());
        Box::pin(async move {
            let mut response = match destination {
                Destination::Proxy => proxy.oneshot(request).await?,
                Destination::Api => api.oneshot(request).await?,
                Destination::Router => {
                    let response = router.oneshot(request.map(axum::body::Body::new)).await?;
                    response.map(rack_gateway_layers::body::boxed)
                }
            };
            response
                .headers_mut()
                .insert("x-request-id", request_id.clone());
            let headers = response.headers_mut();
            headers.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
            tracing::info!(
                target: "rack_gateway::access",
                request_id = request_id.to_str().unwrap_or(""),
                %method,
                path = %path,
                status = response.status().as_u16(),
                latency_us = started.elapsed().as_micros() as u64,
            );
            Ok(response)
        })
    }
}

/// Keeps a well-formed client X-Request-ID (≤ 128 visible ASCII chars) or makes a new one.
fn ensure_request_id<B>(request: &mut Request<B>) -> HeaderValue {
    let usable = request.headers().get("x-request-id").filter(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
    });
    if let Some(value) = usable {
        return value.clone();
    }
    let fresh = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request.headers_mut().insert("x-request-id", fresh.clone());
    fresh
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
        assert!(matches!(destination("/"), Destination::Router));
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_replaced_otherwise() {
        let mut request = Request::builder()
            .header("x-request-id", "abc-123")
            .body(())
            .unwrap();
        assert_eq!(ensure_request_id(&mut request), "abc-123");
        let long = "a".repeat(200);
        let mut request = Request::builder()
            .header("x-request-id", long.as_str())
            .body(())
            .unwrap();
        let id = ensure_request_id(&mut request);
        assert_eq!(id.len(), 36);
        assert_eq!(request.headers()["x-request-id"], id);
    }
}

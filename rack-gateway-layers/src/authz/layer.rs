//! `AuthorizeLayer` and the `Authorize` service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use rack_gateway_core::identity::Principal;
use rack_gateway_core::rbac::{explain_in, Access, Outcome, Policy};
use rack_gateway_core::routes::RouteTable;
use tokio::sync::watch;
use tower::{Layer, Service};

use super::future::ResponseFuture;
use crate::body::{refusal, GatewayBody};
use crate::decision::Decision;
use crate::draft::AuditDraft;
use crate::error::BoxError;
use crate::upgrade::{announces_body, is_websocket_upgrade};
use crate::upstream::RackPath;

/// Adds [`Authorize`] around a service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthorizeLayer {
    table: Arc<RouteTable>,
    prefix: Arc<str>,
    policy: watch::Receiver<Policy>,
}

impl AuthorizeLayer {
    /// Authorizes every request against `table` (paths from the root, default policy).
    pub fn new(table: Arc<RouteTable>) -> Self {
        let (_fixed, policy) = watch::channel(Policy::default());
        AuthorizeLayer {
            table,
            prefix: Arc::from(""),
            policy,
        }
    }

    /// Serves the table under `prefix` (removed before matching); other paths are 404.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix.trim_end_matches('/'));
        self
    }

    /// Follows a live policy (e.g. `allow_destructive_actions` from settings).
    pub fn policy(mut self, policy: watch::Receiver<Policy>) -> Self {
        self.policy = policy;
        self
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            layer: self.clone(),
        }
    }
}

/// Refuses requests outside the route table or beyond the caller's permissions.
#[derive(Clone, Debug)]
pub struct Authorize<S> {
    inner: S,
    layer: AuthorizeLayer,
}

impl<S> Authorize<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<GatewayBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let full_path = request.uri().path();
        let rest = full_path
            .strip_prefix(&*self.layer.prefix)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        let Some(rest) = rest else {
            let reason = format!("not a path under {}", self.layer.prefix);
            return ResponseFuture::refused(refusal(StatusCode::NOT_FOUND, &reason));
        };
        let rack_path = if rest.is_empty() { "/" } else { rest }.to_owned();
        let websocket = is_websocket_upgrade(&request);
        let policy = *self.layer.policy.borrow();
        let verdict = {
            let principal = request.extensions().get::<Arc<Principal>>();
            let access = principal.map_or(Access::None, |p| p.access());
            explain_in(
                &self.layer.table,
                &access,
                &policy,
                request.method().as_str(),
                websocket,
                &rack_path,
            )
        };
        let mut decision = Decision {
            outcome: verdict.outcome,
            reason: verdict.reason,
            route: verdict.route,
            rack_path,
        };
        let mut status = StatusCode::from_u16(verdict.status).unwrap_or(StatusCode::FORBIDDEN);
        if decision.outcome == Outcome::Allow && websocket && announces_body(request.headers()) {
            // A rack that waits for the announced body stalls; one that does not reads it as
            // the next request on the connection. Neither may happen.
            decision.outcome = Outcome::BadRequest;
            decision.reason = "websocket upgrade requests must not carry a body".to_owned();
            status = StatusCode::BAD_REQUEST;
        }
        if let Some(draft) = request.extensions().get::<AuditDraft>() {
            draft.set_decision(&decision);
        }
        if decision.outcome != Outcome::Allow {
            let mut response = refusal(status, &decision.reason);
            response.extensions_mut().insert(decision);
            return ResponseFuture::refused(response);
        }
        let upstream = match request.uri().query() {
            Some(query) => format!("{}?{query}", decision.rack_path),
            None => decision.rack_path.clone(),
        };
        request.extensions_mut().insert(RackPath(upstream));
        request.extensions_mut().insert(decision);
        ResponseFuture::forward(self.inner.call(request))
    }
}

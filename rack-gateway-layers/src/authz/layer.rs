//! `AuthorizeLayer` and the `Authorize` service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use rack_gateway_core::identity::Principal;
use rack_gateway_core::rbac::{explain_in, Access, Outcome, Policy};
use rack_gateway_core::routes::RouteTable;
use tokio::sync::watch;
use tower::{Layer, Service};

use super::decision::Decision;
use super::future::ResponseFuture;
use crate::audit::AuditNote;
use crate::body::{refusal, Body};
use crate::error::BoxError;
use crate::forward::RackPath;
use crate::upgrade::{announces_body, is_websocket_upgrade};

/// Adds [`Authorize`] around a service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthorizeLayer {
    prefix: Arc<str>,
    policy: watch::Receiver<Policy>,
    table: &'static RouteTable,
}

impl AuthorizeLayer {
    /// Authorizes requests under `prefix`; the returned sender updates the policy live.
    pub fn new(prefix: &str, policy: Policy) -> (Self, watch::Sender<Policy>) {
        let (sender, receiver) = watch::channel(policy);
        (Self::with_policy(prefix, receiver), sender)
    }

    /// Authorizes requests under `prefix`, following an existing policy channel.
    pub fn with_policy(prefix: &str, policy: watch::Receiver<Policy>) -> Self {
        AuthorizeLayer {
            prefix: Arc::from(prefix.trim_end_matches('/')),
            policy,
            table: RouteTable::global(),
        }
    }

    /// Classifies against `table` instead of the Convox allow-list.
    pub fn with_table(mut self, table: &'static RouteTable) -> Self {
        self.table = table;
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

/// Refuses requests outside the allow-list or beyond the caller's permissions.
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

impl<S, B> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let full_path = request.uri().path();
        let Some(rest) = full_path.strip_prefix(&*self.layer.prefix) else {
            return ResponseFuture::refused(refusal(
                StatusCode::NOT_FOUND,
                "not a rack proxy path",
            ));
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            return ResponseFuture::refused(refusal(
                StatusCode::NOT_FOUND,
                "not a rack proxy path",
            ));
        }
        let rack_path = if rest.is_empty() { "/" } else { rest }.to_owned();
        let websocket = is_websocket_upgrade(&request);
        let policy = *self.layer.policy.borrow();
        let verdict = {
            let principal = request.extensions().get::<Arc<Principal>>();
            let access = principal.map_or(Access::None, |p| p.access());
            explain_in(
                self.layer.table,
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
        if let Some(note) = request.extensions().get::<AuditNote>() {
            note.set_decision(&decision);
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

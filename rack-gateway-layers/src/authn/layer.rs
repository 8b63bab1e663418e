//! `AuthenticateLayer` and the `Authenticate` service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use rack_gateway_core::identity::{IdentityResolver, Principal};
use tower::{Layer, Service};

use super::credential::{parse_authorization, Credential};
use super::future::ResponseFuture;
use crate::body::GatewayBody;
use crate::draft::AuditDraft;
use crate::error::BoxError;

/// Adds [`Authenticate`] around a service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthenticateLayer {
    resolver: Arc<IdentityResolver>,
}

impl AuthenticateLayer {
    /// Authenticates with the given resolver (one per process).
    pub fn new(resolver: Arc<IdentityResolver>) -> Self {
        AuthenticateLayer { resolver }
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            resolver: Arc::clone(&self.resolver),
        }
    }
}

/// Resolves the caller's credential to an `Arc<Principal>` request extension, or answers 401.
#[derive(Clone, Debug)]
pub struct Authenticate<S> {
    inner: S,
    resolver: Arc<IdentityResolver>,
}

impl<S> Authenticate<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, resolver: Arc<IdentityResolver>) -> Self {
        Authenticate { inner, resolver }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for Authenticate<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<GatewayBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone may not be ready; take the ready one and leave the clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let token = match parse_authorization(request.headers()) {
            Ok(Credential::ApiToken(token)) => token,
            Ok(Credential::Session(_)) => {
                return ResponseFuture::refused(refuse(
                    &request,
                    "invalid or expired session token",
                ))
            }
            Err(error) => return ResponseFuture::refused(refuse(&request, &error.to_string())),
        };
        if let Some(principal) = self.resolver.cached_api_token(&token) {
            if let Some(draft) = request.extensions().get::<AuditDraft>() {
                draft.set_principal(Arc::clone(&principal));
            }
            request.extensions_mut().insert(principal);
            return ResponseFuture::forward(inner.call(request));
        }
        let resolver = Arc::clone(&self.resolver);
        let resolve = Box::pin(async move { resolver.resolve_api_token(&token).await });
        ResponseFuture::resolving(resolve, request, inner)
    }
}

/// Notes the refusal for the audit layer and answers 401.
pub(super) fn refuse<B, ResBody>(
    request: &Request<B>,
    reason: &str,
) -> Response<GatewayBody<ResBody>> {
    if let Some(draft) = request.extensions().get::<AuditDraft>() {
        draft.set_auth_failure(reason);
    }
    unauthorized(reason, sent_basic(request))
}

/// A 401 with the reason (the Convox CLI prints the body), with a Basic challenge only for a
/// caller who sent Basic credentials: a browser that gets a challenge it did not ask for prompts
/// for, and then caches, credentials for the gateway's origin.
pub(super) fn unauthorized<ResBody>(
    reason: &str,
    challenge: bool,
) -> Response<GatewayBody<ResBody>> {
    let mut response = crate::body::refusal(StatusCode::UNAUTHORIZED, reason);
    if challenge {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"rack-gateway\""),
        );
    }
    response
}

fn sent_basic<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(http::header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes().starts_with(b"Basic "))
}

/// The principal a request was authenticated as, if the authentication layer ran.
pub fn principal_of<B>(request: &Request<B>) -> Option<&Arc<Principal>> {
    request.extensions().get::<Arc<Principal>>()
}

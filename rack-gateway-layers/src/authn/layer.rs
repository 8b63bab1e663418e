//! `AuthenticateLayer` and the `Authenticate` service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use rack_gateway_core::identity::{IdentityResolver, Principal, SessionKind};
use tower::{Layer, Service};

use super::credential::{presented_credential, Credential, Presented};
use super::csrf::CsrfGuard;
use super::future::ResponseFuture;
use crate::body::GatewayBody;
use crate::draft::AuditDraft;
use crate::error::BoxError;

/// Adds [`Authenticate`] around a service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthenticateLayer {
    resolver: Arc<IdentityResolver>,
    /// `Some`: the session cookie is accepted (web sessions), with this CSRF guard on unsafe
    /// methods; `None`: a session cookie is refused (the rack proxy).
    cookies: Option<CsrfGuard>,
}

impl AuthenticateLayer {
    /// Authenticates the `Authorization` header with the given resolver (one per process): API
    /// tokens, and CLI session tokens. A browser's session cookie is refused.
    pub fn new(resolver: Arc<IdentityResolver>) -> Self {
        AuthenticateLayer {
            resolver,
            cookies: None,
        }
    }

    /// Also accepts the `session_token` cookie of a web session, for the gateway's own pages
    /// and JSON API; unsafe methods authenticated by it must pass `csrf`.
    pub fn with_session_cookie(mut self, csrf: CsrfGuard) -> Self {
        self.cookies = Some(csrf);
        self
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            layer: self.clone(),
        }
    }
}

/// Resolves the caller's credential to an `Arc<Principal>` request extension, or answers 401.
#[derive(Clone, Debug)]
pub struct Authenticate<S> {
    inner: S,
    layer: AuthenticateLayer,
}

impl<S> Authenticate<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, layer: AuthenticateLayer) -> Self {
        Authenticate { inner, layer }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// How the credential came, which decides what is checked once it resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    /// An API token in the header.
    Token,
    /// A session secret in the header: CLI sessions only.
    SessionHeader,
    /// The session cookie: web sessions only, CSRF on unsafe methods.
    SessionCookie,
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
        let presented = match presented_credential(request.headers(), self.layer.cookies.is_some())
        {
            Ok(presented) => presented,
            Err(error) => return ResponseFuture::refused(refuse(&request, &error.to_string())),
        };
        let (secret, via) = match presented {
            Presented::Header(Credential::ApiToken(token)) => (token, Via::Token),
            Presented::Header(Credential::Session(secret)) => (secret, Via::SessionHeader),
            Presented::Cookie(secret) => (secret, Via::SessionCookie),
        };
        let resolver = &self.layer.resolver;
        let cached = match via {
            Via::Token => resolver.cached_api_token(&secret),
            Via::SessionHeader | Via::SessionCookie => resolver.cached_session(&secret),
        };
        if let Some(principal) = cached {
            if let Err(refusal) = admit(&principal, via, &self.layer, &request) {
                return ResponseFuture::refused(refusal.response(&request));
            }
            accept(&mut request, principal);
            return ResponseFuture::forward(inner.call(request));
        }
        let resolver = Arc::clone(resolver);
        let resolve = Box::pin(async move {
            match via {
                Via::Token => resolver.resolve_api_token(&secret).await,
                Via::SessionHeader | Via::SessionCookie => resolver.resolve_session(&secret).await,
            }
        });
        ResponseFuture::resolving(resolve, request, inner, self.layer.clone(), via)
    }
}

/// Puts the principal in the request (and the audit draft).
pub(super) fn accept<B>(request: &mut Request<B>, principal: Arc<Principal>) {
    if let Some(draft) = request.extensions().get::<AuditDraft>() {
        draft.set_principal(Arc::clone(&principal));
    }
    request.extensions_mut().insert(principal);
}

/// Why a resolved credential is still refused here.
#[derive(Debug)]
pub(super) enum NotAdmitted {
    /// 401 with this reason.
    Unauthorized(&'static str),
    /// 403 with this reason (CSRF).
    Forbidden(String),
}

impl NotAdmitted {
    pub(super) fn response<B, ResBody>(
        &self,
        request: &Request<B>,
    ) -> Response<GatewayBody<ResBody>> {
        match self {
            NotAdmitted::Unauthorized(reason) => refuse(request, reason),
            NotAdmitted::Forbidden(reason) => {
                if let Some(draft) = request.extensions().get::<AuditDraft>() {
                    draft.set_auth_failure(reason);
                }
                crate::body::refusal(StatusCode::FORBIDDEN, reason)
            }
        }
    }
}

/// The checks that depend on how the credential came: a session in a header must be a CLI
/// session (a browser's cookie secret is no API credential), a cookie must hold a web session,
/// and a cookie-authenticated unsafe request must pass CSRF.
pub(super) fn admit<B>(
    principal: &Principal,
    via: Via,
    layer: &AuthenticateLayer,
    request: &Request<B>,
) -> Result<(), NotAdmitted> {
    let session = match principal {
        Principal::User(user) => user.session.as_ref(),
        _ => None,
    };
    match (via, session) {
        (Via::Token, _) => Ok(()),
        (Via::SessionHeader, Some(session)) if session.kind == SessionKind::Cli => Ok(()),
        (Via::SessionHeader, _) => Err(NotAdmitted::Unauthorized(
            "a web session is accepted only as the browser's session cookie",
        )),
        (Via::SessionCookie, Some(session)) if session.kind == SessionKind::Web => {
            let Some(csrf) = &layer.cookies else {
                return Err(NotAdmitted::Unauthorized(
                    "session cookies are not accepted here",
                ));
            };
            csrf.check(
                request.method(),
                request.headers(),
                &session.public_id.to_string(),
            )
            .map_err(|refusal| NotAdmitted::Forbidden(refusal.to_string()))
        }
        (Via::SessionCookie, _) => Err(NotAdmitted::Unauthorized(
            "the session cookie does not hold a browser session",
        )),
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

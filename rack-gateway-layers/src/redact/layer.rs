//! `RedactLayer` and the `Redact` service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode};
use rack_gateway_core::identity::Principal;
use rack_gateway_core::rbac::{Access, Outcome};
use rack_gateway_core::redact::SecretRules;
use tower::{Layer, Service};

use super::access::{EnvAccess, ENV_SET};
use super::budget::BufferBudget;
use super::mask::MaskScope;
use super::policy::EnvPolicy;
use super::release;
use super::response::{mask_response, ENV_BEARING_ACTIONS};
use crate::audit::AuditNote;
use crate::authz::Decision;
use crate::body::{self, refusal, Body};
use crate::error::BoxError;
use crate::forward::{EnvHeadersAllowed, RackForward, ENV_HEADERS};

/// Largest rack response the layer buffers to mask (16 MiB by default).
pub const DEFAULT_RESPONSE_LIMIT: usize = 16 * 1024 * 1024;
/// Largest release-create form the layer reads (1 MiB by default).
pub const DEFAULT_FORM_LIMIT: usize = 1024 * 1024;
/// How long reading the current env from the rack may take (10 s by default).
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The refusal for env headers without `convox:env:set`.
pub(crate) const ENV_HEADERS_DENIED: &str =
    "You don't have permission to set environment variables.";

/// The shared configuration of the layer.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) rules: SecretRules,
    pub(crate) policy: Arc<dyn EnvPolicy>,
    pub(crate) rack: RackForward,
    pub(crate) budget: BufferBudget,
    pub(crate) response_limit: usize,
    pub(crate) form_limit: usize,
    pub(crate) fetch_timeout: Duration,
}

/// Adds [`Redact`] around a service. Cheap to clone.
#[derive(Clone)]
pub struct RedactLayer {
    config: Arc<Config>,
}

impl RedactLayer {
    /// Masks with `rules` and `policy`, and reads current envs through `rack`. Per-key env
    /// records go to the request's [`AuditNote`] (written with its durable intent).
    pub fn new(rules: SecretRules, policy: Arc<dyn EnvPolicy>, rack: RackForward) -> Self {
        RedactLayer {
            config: Arc::new(Config {
                rules,
                policy,
                rack,
                budget: BufferBudget::default(),
                response_limit: DEFAULT_RESPONSE_LIMIT,
                form_limit: DEFAULT_FORM_LIMIT,
                fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            }),
        }
    }

    /// Sets the largest response buffered for masking (larger ones get 502).
    pub fn response_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).response_limit = bytes;
        self.fit_budget()
    }

    /// Sets the largest release-create form read (larger ones get 413).
    pub fn form_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).form_limit = bytes;
        self.fit_budget()
    }

    /// Bounds the bytes buffered for redaction across all requests (see [`BufferBudget`]); the
    /// budget is raised to the response and form limits if it is smaller, so that one request
    /// within the limits can always be served.
    pub fn buffer_budget(mut self, budget: BufferBudget) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.budget = budget;
        self.fit_budget()
    }

    /// The buffer budget (to share it with other code that buffers env, such as an env API).
    pub fn budget(&self) -> &BufferBudget {
        &self.config.budget
    }

    fn fit_budget(mut self) -> Self {
        let config = Arc::make_mut(&mut self.config);
        let needed = config.response_limit.max(config.form_limit);
        if config.budget.total() < needed {
            config.budget = BufferBudget::new(needed, config.budget.wait());
        }
        self
    }

    /// Sets how long reading the current env from the rack may take (then 502).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).fetch_timeout = timeout;
        self
    }
}

impl fmt::Debug for RedactLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactLayer")
            .field("rules", &self.config.rules)
            .field("rack", &self.config.rack)
            .field("response_limit", &self.config.response_limit)
            .field("form_limit", &self.config.form_limit)
            .field("fetch_timeout", &self.config.fetch_timeout)
            .field("budget", &self.config.budget.total())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RedactLayer {
    type Service = Redact<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Redact {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// Masks env-bearing responses, merges release-create envs, and gates env request headers.
#[derive(Clone)]
pub struct Redact<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for Redact<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redact")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Redact<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The response future of [`Redact`].
pub type RedactFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

impl<S, B> Service<Request<B>> for Redact<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = RedactFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = Inner::new(std::mem::replace(&mut self.inner, clone));
        Box::pin(handle(Arc::clone(&self.config), inner, request))
    }
}

/// What the layer knows about one request.
pub(crate) struct Ctx {
    pub(crate) decision: Decision,
    pub(crate) note: Option<AuditNote>,
    pub(crate) principal: Option<Arc<Principal>>,
    pub(crate) access: EnvAccess,
}

impl Ctx {
    /// A refusal response, also recorded in the audit note as the decision with `audit_reason`.
    pub(crate) fn refuse(
        &self,
        status: StatusCode,
        reason: &str,
        audit_reason: &str,
    ) -> Response<Body> {
        if let Some(note) = &self.note {
            let outcome = if status == StatusCode::FORBIDDEN {
                Outcome::Deny
            } else {
                Outcome::BadRequest
            };
            note.set_decision(&Decision {
                outcome,
                reason: audit_reason.to_owned(),
                ..self.decision.clone()
            });
        }
        refusal(status, reason)
    }

    /// The route's `{app}`.
    pub(crate) fn app(&self) -> Option<&str> {
        self.decision.route.as_ref()?.app.as_deref()
    }

    /// The route's audit action.
    pub(crate) fn action(&self) -> &'static str {
        self.decision
            .route
            .as_ref()
            .map_or("", |matched| matched.route.action)
    }

    /// The masking scope for this caller.
    pub(crate) fn scope<'a>(&'a self, config: &'a Config) -> MaskScope<'a> {
        MaskScope {
            rules: &config.rules,
            policy: &*config.policy,
            reveal: self.access.reveal(),
            app: self.app(),
        }
    }
}

/// The inner service, boxed: an async fn generic over the service's future trips rustc's
/// "`Send` is not general enough" limitation with the boxed error type.
pub(crate) type Inner = tower::util::BoxService<Request<Body>, Response<Body>, BoxError>;

async fn handle<B>(
    config: Arc<Config>,
    inner: Inner,
    request: Request<B>,
) -> Result<Response<Body>, BoxError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(decision) = request
        .extensions()
        .get::<Decision>()
        .filter(|decision| decision.route.is_some())
        .cloned()
    else {
        // Fail closed: without the authorization layer there is no route to redact by.
        return Err(BoxError::from(
            "RedactLayer needs AuthorizeLayer outside it",
        ));
    };
    let action = decision
        .route
        .as_ref()
        .map_or("", |matched| matched.route.action);
    if !has_env_headers(request.headers())
        && action != release::ACTION
        && !ENV_BEARING_ACTIONS.contains(&action)
    {
        // Nothing here can carry env: no permission checks, no buffering.
        return call(inner, request.map(body::boxed)).await;
    }
    let principal = request
        .extensions()
        .get::<Arc<Principal>>()
        .cloned()
        .or_else(|| {
            request
                .extensions()
                .get::<Principal>()
                .cloned()
                .map(Arc::new)
        });
    let access = EnvAccess::of(&principal.as_deref().map_or(Access::None, Principal::access));
    let ctx = Ctx {
        decision,
        note: request.extensions().get::<AuditNote>().cloned(),
        principal,
        access,
    };
    let (mut parts, rack_body) = request.into_parts();

    if has_env_headers(&parts.headers) {
        if ctx.action() == release::ACTION {
            let reason = "The Env, Environment and Release-Env headers are not accepted on release create; send the env form field.";
            return Ok(ctx.refuse(StatusCode::BAD_REQUEST, reason, reason));
        }
        if ctx.access.env_set.is_none() {
            return Ok(ctx.refuse(
                StatusCode::FORBIDDEN,
                ENV_HEADERS_DENIED,
                &format!("{ENV_HEADERS_DENIED} ({ENV_SET} required to send env headers)"),
            ));
        }
        parts.extensions.insert(EnvHeadersAllowed);
    }

    if ctx.action() == release::ACTION {
        return release::create(&config, &ctx, inner, parts, rack_body).await;
    }
    let request = Request::from_parts(parts, body::boxed(rack_body));
    if !needs_masking(&ctx) {
        return call(inner, request).await;
    }
    let response = call(inner, identity_encoding(request)).await?;
    mask_response(
        response,
        &ctx.scope(&config),
        config.response_limit,
        &config.budget,
    )
    .await
}

/// Waits for `inner` to be ready, then calls it (without `ServiceExt`, whose future types trip
/// the same rustc limitation as [`Inner`]).
pub(crate) async fn call(
    mut inner: Inner,
    request: Request<Body>,
) -> Result<Response<Body>, BoxError> {
    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
    inner.call(request).await
}

/// Whether the route's responses may carry env values this caller may not see in full.
pub(crate) fn needs_masking(ctx: &Ctx) -> bool {
    !ctx.access.reads_secrets() && ENV_BEARING_ACTIONS.contains(&ctx.action())
}

/// Asks the rack for an unencoded response (so it can be masked).
pub(crate) fn identity_encoding<B>(mut request: Request<B>) -> Request<B> {
    request.headers_mut().remove(header::ACCEPT_ENCODING);
    request
}

fn has_env_headers(headers: &HeaderMap) -> bool {
    ENV_HEADERS.iter().any(|name| headers.contains_key(*name))
}

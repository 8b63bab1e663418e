//! `RedactLayer` and the `Redact` service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode};
use rack_gateway_core::identity::Principal;
use rack_gateway_core::rbac::Access;
use rack_gateway_core::redact::SecretRules;
use tower::{Layer, Service};

use super::access::{EnvAccess, ENV_SET};
use super::budget::BufferBudget;
use super::env_request::EnvRequest;
use super::future::RedactFuture;
use super::policy::EnvPolicy;
use super::release;
use crate::body::GatewayBody;
use crate::decision::Decision;
use crate::draft::AuditDraft;
use crate::error::BoxError;
use crate::forward::RackForward;
use crate::upstream::{EnvHeadersAllowed, ENV_HEADERS};

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
    /// records go to the request's [`AuditDraft`] (written with its durable intent).
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

impl<S, B, ResBody> Service<Request<B>> for Redact<S>
where
    S: Service<Request<GatewayBody<B>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<GatewayBody<ResBody>>;
    type Error = BoxError;
    type Future = RedactFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(decision) = request
            .extensions()
            .get::<Decision>()
            .filter(|decision| decision.route.is_some())
            .cloned()
        else {
            // Fail closed: without the authorization layer there is no route to redact by.
            return RedactFuture::failed("RedactLayer needs AuthorizeLayer outside it".into());
        };
        let (carries_env, merges_env) = decision.route.as_ref().map_or((false, false), |m| {
            (m.route.carries_env, m.route.merges_env)
        });
        if !has_env_headers(request.headers()) && !carries_env && !merges_env {
            // Nothing here can carry env: no permission checks, no buffering.
            return RedactFuture::calling(inner.call(request.map(GatewayBody::inner)), None);
        }
        let principal = request.extensions().get::<Arc<Principal>>().cloned();
        let access = EnvAccess::of(&principal.as_deref().map_or(Access::None, Principal::access));
        let env_request = EnvRequest {
            decision,
            draft: request.extensions().get::<AuditDraft>().cloned(),
            principal,
            access,
        };
        let (mut parts, rack_body) = request.into_parts();

        if has_env_headers(&parts.headers) {
            if merges_env {
                let reason = "The Env, Environment and Release-Env headers are not accepted on release create; send the env form field.";
                return RedactFuture::refused(env_request.refuse(
                    StatusCode::BAD_REQUEST,
                    reason,
                    reason,
                ));
            }
            if env_request.access.env_set.is_none() {
                return RedactFuture::refused(env_request.refuse(
                    StatusCode::FORBIDDEN,
                    ENV_HEADERS_DENIED,
                    &format!("{ENV_HEADERS_DENIED} ({ENV_SET} required to send env headers)"),
                ));
            }
            parts.extensions.insert(EnvHeadersAllowed);
        }
        let config = Arc::clone(&self.config);
        let masking = env_request.needs_masking().then(|| env_request.clone());
        if masking.is_some() {
            // Ask the rack for an unencoded response, so that it can be masked.
            parts.headers.remove(header::ACCEPT_ENCODING);
        }
        if merges_env {
            let preparing = Box::pin(release::prepare(
                Arc::clone(&config),
                env_request,
                parts,
                rack_body,
            ));
            return RedactFuture::preparing(preparing, inner, config, masking);
        }
        let request = Request::from_parts(parts, GatewayBody::inner(rack_body));
        RedactFuture::calling(
            inner.call(request),
            masking.map(|env_request| (config, env_request)),
        )
    }
}

fn has_env_headers(headers: &HeaderMap) -> bool {
    ENV_HEADERS.iter().any(|name| headers.contains_key(*name))
}

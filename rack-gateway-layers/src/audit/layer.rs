//! `AuditLayer` and the `Audit` service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use rack_gateway_core::redact::{redact_command, redact_query, SecretRules};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::future::{Recorder, ResponseFuture};
use super::writer::AuditWriter;
use crate::body::GatewayBody;
use crate::draft::{AuditDraft, RequestMeta};
use crate::peer::{client_ip, Cidr, PeerAddr};
use crate::relay::RelayStatsSender;
use crate::upgrade::is_websocket_upgrade;

/// What the audit layer needs to describe requests.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    prefix: Arc<str>,
    trusted_proxies: Arc<[Cidr]>,
    secrets: Arc<SecretRules>,
    record_query: bool,
}

impl AuditConfig {
    /// Records requests under `prefix` (removed from recorded paths).
    pub fn new(prefix: &str) -> Self {
        AuditConfig {
            prefix: Arc::from(prefix.trim_end_matches('/')),
            trusted_proxies: Arc::from(Vec::new()),
            secrets: Arc::new(SecretRules::default()),
            record_query: true,
        }
    }

    /// The same configuration for requests under another prefix.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix.trim_end_matches('/'));
        self
    }

    /// Leaves query strings out of recorded paths (for endpoints that record their parameters
    /// in the details instead).
    pub fn without_query(mut self) -> Self {
        self.record_query = false;
        self
    }

    /// Believes X-Forwarded-For from peers in these networks (TRUSTED_PROXY_CIDRS).
    pub fn trusted_proxies(mut self, cidrs: Vec<Cidr>) -> Self {
        self.trusted_proxies = Arc::from(cidrs);
        self
    }

    /// Which names count as secrets when redacting query strings.
    pub fn secret_rules(mut self, rules: SecretRules) -> Self {
        self.secrets = Arc::new(rules);
        self
    }

    fn describe<B>(&self, request: &Request<B>) -> RequestMeta {
        let headers = request.headers();
        let full = request.uri().path();
        let path = full.strip_prefix(&*self.prefix).unwrap_or(full);
        let path = if path.is_empty() { "/" } else { path };
        let path = match request.uri().query() {
            Some(query) if self.record_query => {
                format!("{path}?{}", redact_query(query, &self.secrets))
            }
            _ => path.to_owned(),
        };
        let peer = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
        RequestMeta {
            request_id: header_text(headers, "x-request-id").unwrap_or_default(),
            method: request.method().as_str().to_owned(),
            path,
            client_ip: client_ip(peer, headers, &self.trusted_proxies).map(|ip| ip.to_string()),
            user_agent: header_text(headers, "user-agent"),
            websocket: is_websocket_upgrade(request),
            // `env SECRET_KEY=… cmd`: secret-named assignments masked, URL passwords and
            // gateway credentials too.
            command: header_text(headers, "command")
                .map(|c| redact_command(&c, &self.secrets).into_owned()),
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Adds [`Audit`] around a service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLayer {
    writer: AuditWriter,
    config: AuditConfig,
}

impl AuditLayer {
    /// Records through `writer`.
    pub fn new(writer: AuditWriter, config: AuditConfig) -> Self {
        AuditLayer { writer, config }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            layer: self.clone(),
        }
    }
}

/// Records one `complete` event per request (websockets: when the relay ends).
#[derive(Clone, Debug)]
pub struct Audit<S> {
    inner: S,
    layer: AuditLayer,
}

impl<S, B, ResBody> Service<Request<B>> for Audit<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<GatewayBody<ResBody>>;
    // Errors pass through unchanged: with the rescue layer inside there are none (`Infallible`).
    type Error = S::Error;
    type Future = ResponseFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let meta = self.layer.config.describe(&request);
        let websocket = meta.websocket;
        let draft = AuditDraft::new(meta);
        request.extensions_mut().insert(draft.clone());
        let relay = websocket.then(|| {
            let (sender, receiver) = RelayStatsSender::channel();
            request.extensions_mut().insert(sender);
            receiver
        });
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let recorder = Recorder::new(self.layer.writer.clone(), draft, started, relay);
        if self.layer.writer.has_room() {
            ResponseFuture::calling(inner.call(request), recorder)
        } else {
            ResponseFuture::admitting(request, inner, recorder)
        }
    }
}

//! `AuditIntentLayer`: a mutating request reaches the rack only after its intent is durable.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::event::intent_event;
use super::note::{AuditNote, IntentState};
use super::writer::{AuditUnavailable, AuditWriter};
use crate::authz::Decision;
use crate::body::{refusal, Body};
use crate::error::BoxError;

/// Adds [`AuditIntent`] in front of the rack. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditIntentLayer {
    writer: AuditWriter,
}

impl AuditIntentLayer {
    /// Writes intents through `writer`.
    pub fn new(writer: AuditWriter) -> Self {
        AuditIntentLayer { writer }
    }
}

impl<S> Layer<S> for AuditIntentLayer {
    type Service = AuditIntent<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuditIntent {
            inner,
            writer: self.writer.clone(),
        }
    }
}

/// Writes the `intent` record of allowed mutating requests (durably) and of websocket log
/// streams (queued), then forwards; refuses with 503 when the intent cannot be made durable.
#[derive(Clone, Debug)]
pub struct AuditIntent<S> {
    inner: S,
    writer: AuditWriter,
}

/// The response future of [`AuditIntent`].
pub type IntentFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

/// What the request needs on the record before it goes on.
enum Needed {
    Nothing,
    /// A durable intent (mutating requests).
    Durable,
    /// A queued intent (websocket log streams: they change nothing, but are long-lived).
    Queued,
}

/// What a request needs: decided by its route when the authorization layer matched one, else by
/// its method, so that a stack without the authorization layer fails closed (every write waits
/// for its intent) rather than open.
fn needed<B>(request: &Request<B>, note: &AuditNote) -> Needed {
    let route = request
        .extensions()
        .get::<Decision>()
        .and_then(|decision| decision.route.as_ref())
        .map(|matched| matched.route);
    match route {
        Some(route) if route.mutating => Needed::Durable,
        Some(_) if note.facts().meta.websocket => Needed::Queued,
        Some(_) => Needed::Nothing,
        None if is_safe(request.method()) && !note.facts().meta.websocket => Needed::Nothing,
        None => Needed::Durable,
    }
}

/// Methods that change nothing (RFC 9110 §9.2.1) and so need no intent.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Writes the `intent` record of the request in `note`, with the records the request has added
/// so far ([`AuditNote::add_record`]), all in one durable append; returns the intent's seq.
///
/// For handlers that change something themselves (rather than forwarding): call it before the
/// change, and do not make the change when it fails.
pub async fn record_intent(
    writer: &AuditWriter,
    note: &AuditNote,
) -> Result<u64, AuditUnavailable> {
    let events = {
        let mut facts = note.facts();
        let mut events = vec![intent_event(&facts)];
        events.append(&mut facts.annotations.derived);
        events
    };
    match writer.record_durable_batch(events).await {
        Ok(seq) => {
            note.facts().intent = IntentState::Durable(seq);
            Ok(seq)
        }
        Err(unavailable) => {
            note.facts().intent = IntentState::Failed;
            Err(unavailable)
        }
    }
}

impl<S, B> Service<Request<B>> for AuditIntent<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = IntentFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(note) = request.extensions().get::<AuditNote>().cloned() else {
            // Fail closed: without the audit layer there is nothing to link the intent to.
            return Box::pin(async {
                Err(BoxError::from(
                    "AuditIntentLayer needs AuditLayer outside it",
                ))
            });
        };
        let writer = self.writer.clone();
        match needed(&request, &note) {
            Needed::Nothing => Box::pin(inner.call(request)),
            Needed::Durable => Box::pin(async move {
                match record_intent(&writer, &note).await {
                    Ok(_) => inner.call(request).await,
                    Err(unavailable) => {
                        tracing::error!(error = %unavailable, "mutating request refused: intent not durable");
                        Ok(refusal(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "audit log unavailable: the request was not forwarded; try again shortly",
                        ))
                    }
                }
            }),
            Needed::Queued => Box::pin(async move {
                let event = intent_event(&note.facts());
                match writer.record(event).await {
                    Ok(()) => {
                        note.facts().intent = IntentState::Queued;
                        inner.call(request).await
                    }
                    Err(unavailable) => {
                        note.facts().intent = IntentState::Failed;
                        tracing::error!(error = %unavailable, "stream refused: audit queue full");
                        Ok(refusal(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "audit log unavailable; try again shortly",
                        ))
                    }
                }
            }),
        }
    }
}

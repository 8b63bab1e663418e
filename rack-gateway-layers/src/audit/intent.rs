//! `AuditIntentLayer`: a mutating request reaches the rack only after its intent is durable.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use super::event::intent_event;
use super::note::{AuditNote, IntentState};
use super::writer::AuditWriter;
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

enum Need {
    Nothing,
    Durable,
    Queued,
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
        let note = request.extensions().get::<AuditNote>().cloned();
        let route = request
            .extensions()
            .get::<Decision>()
            .and_then(|d| d.route.as_ref())
            .map(|m| m.route);
        let need = match (&note, route) {
            (_, Some(route)) if route.mutating => Need::Durable,
            (Some(note), Some(_)) if note.facts().meta.websocket => Need::Queued,
            _ => Need::Nothing,
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let writer = self.writer.clone();
        match (need, note) {
            (Need::Nothing, _) => Box::pin(inner.call(request)),
            (_, None) => Box::pin(async {
                // Fail closed: without the audit layer there is nothing to link the intent to.
                Err(BoxError::from(
                    "AuditIntentLayer needs AuditLayer outside it",
                ))
            }),
            (Need::Durable, Some(note)) => Box::pin(async move {
                let event = intent_event(&note.facts());
                match writer.record_durable(event).await {
                    Ok(seq) => {
                        note.facts().intent = IntentState::Durable(seq);
                        inner.call(request).await
                    }
                    Err(unavailable) => {
                        note.facts().intent = IntentState::Failed;
                        tracing::error!(error = %unavailable, "mutating request refused: intent not durable");
                        Ok(refusal(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "audit log unavailable: the request was not forwarded; try again shortly",
                        ))
                    }
                }
            }),
            (Need::Queued, Some(note)) => Box::pin(async move {
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

//! `AuditIntentLayer`: a mutating request reaches the rack only after its intent is durable.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::writer::{AuditUnavailable, AuditWriter};
use crate::body::{passed, refusal, GatewayBody};
use crate::decision::Decision;
use crate::draft::event::intent_event;
use crate::draft::{AuditDraft, IntentState};
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

/// Writing the intent (ours, boxed; never the inner service).
type Writing = Pin<Box<dyn Future<Output = Result<(), AuditUnavailable>> + Send>>;

pin_project! {
    /// Writes the intent when one is needed, then calls the inner service; 503 when the intent
    /// cannot be written.
    pub struct IntentFuture<S: Service<Request<B>>, B, ResBody> {
        #[pin]
        state: State<S, B, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<B>>, B, ResBody> {
        Writing { writing: Writing, request: Option<Request<B>>, inner: S, refusal: &'static str },
        Calling { #[pin] future: S::Future },
        Failed { error: Option<BoxError>, response: Option<Response<GatewayBody<ResBody>>> },
        Done,
    }
}

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
fn needed<B>(request: &Request<B>, draft: &AuditDraft) -> Needed {
    let route = request
        .extensions()
        .get::<Decision>()
        .and_then(|decision| decision.route.as_ref())
        .map(|matched| &matched.route);
    match route {
        Some(route) if route.mutating => Needed::Durable,
        Some(_) if draft.facts().meta.websocket => Needed::Queued,
        Some(_) => Needed::Nothing,
        None if is_safe(request.method()) && !draft.facts().meta.websocket => Needed::Nothing,
        None => Needed::Durable,
    }
}

/// Methods that change nothing (RFC 9110 §9.2.1) and so need no intent.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Writes the `intent` record of the request in `note`, with the records the request has added
/// so far ([`AuditDraft::add_record`]), all in one durable append; returns the intent's seq.
///
/// For handlers that change something themselves (rather than forwarding): call it before the
/// change, and do not make the change when it fails.
pub async fn record_intent(
    writer: &AuditWriter,
    draft: &AuditDraft,
) -> Result<u64, AuditUnavailable> {
    let events = {
        let mut facts = draft.facts();
        let mut events = vec![intent_event(&facts)];
        events.append(&mut facts.annotations.derived);
        events
    };
    match writer.record_durable_batch(events).await {
        Ok(seq) => {
            draft.facts().intent = IntentState::Durable(seq);
            Ok(seq)
        }
        Err(unavailable) => {
            draft.facts().intent = IntentState::Failed;
            Err(unavailable)
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for AuditIntent<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<GatewayBody<ResBody>>;
    type Error = BoxError;
    type Future = IntentFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(draft) = request.extensions().get::<AuditDraft>().cloned() else {
            // Fail closed: without the audit layer there is nothing to link the intent to.
            return IntentFuture::failed(BoxError::from(
                "AuditIntentLayer needs AuditLayer outside it",
            ));
        };
        let writer = self.writer.clone();
        match needed(&request, &draft) {
            Needed::Nothing => IntentFuture::calling(inner.call(request)),
            Needed::Durable => IntentFuture::writing(
                Box::pin(async move { record_intent(&writer, &draft).await.map(drop) }),
                request,
                inner,
                "audit log unavailable: the request was not forwarded; try again shortly",
            ),
            Needed::Queued => IntentFuture::writing(
                Box::pin(async move {
                    let event = intent_event(&draft.facts());
                    let queued = writer.record(event).await;
                    draft.facts().intent = match queued {
                        Ok(()) => IntentState::Queued,
                        Err(_) => IntentState::Failed,
                    };
                    queued
                }),
                request,
                inner,
                "audit log unavailable; try again shortly",
            ),
        }
    }
}

impl<S: Service<Request<B>>, B, ResBody> IntentFuture<S, B, ResBody> {
    fn calling(future: S::Future) -> Self {
        IntentFuture {
            state: State::Calling { future },
        }
    }

    fn writing(writing: Writing, request: Request<B>, inner: S, refusal: &'static str) -> Self {
        IntentFuture {
            state: State::Writing {
                writing,
                request: Some(request),
                inner,
                refusal,
            },
        }
    }

    fn failed(error: BoxError) -> Self {
        IntentFuture {
            state: State::Failed {
                error: Some(error),
                response: None,
            },
        }
    }
}

impl<S, B, ResBody> Future for IntentFuture<S, B, ResBody>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<GatewayBody<ResBody>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Writing {
                    writing,
                    request,
                    inner,
                    refusal: reason,
                } => {
                    let written = ready!(writing.as_mut().poll(cx));
                    let Some(request) = request.take() else {
                        return Poll::Ready(Err("polled after completion".into()));
                    };
                    match written {
                        Ok(()) => {
                            let future = inner.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err(unavailable) => {
                            tracing::error!(error = %unavailable, "request refused: its intent is not on the record");
                            let response = refusal(StatusCode::SERVICE_UNAVAILABLE, reason);
                            this.state.set(State::Failed {
                                error: None,
                                response: Some(response),
                            });
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(passed(response)));
                }
                StateProj::Failed { error, response } => {
                    let outcome = match (error.take(), response.take()) {
                        (Some(error), _) => Err(error),
                        (None, Some(response)) => Ok(response),
                        (None, None) => Err("polled after completion".into()),
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(outcome);
                }
                StateProj::Done => return Poll::Ready(Err("polled after completion".into())),
            }
        }
    }
}

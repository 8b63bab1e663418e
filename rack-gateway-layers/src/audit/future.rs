//! The response future of [`Audit`](super::Audit).
//!
//! It admits the request while the audit queue has room (waiting briefly, then 503), calls the
//! inner service, and records the outcome when the response is ready. A request whose client
//! goes away first is recorded too, from `Drop`, as "client closed": every request that reached
//! the layer leaves a `complete` record, whatever happens to its future.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use rack_gateway_core::audit::{AuditDecision, AuditEvent};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::Service;

use super::writer::{AuditUnavailable, AuditWriter};
use crate::body::{passed, refusal, GatewayBody, GatewayReason};
use crate::draft::event::{complete_event, Completion, CLIENT_CLOSED};
use crate::draft::AuditDraft;
use crate::relay::RelayStats;

type Waiting = Pin<Box<dyn Future<Output = Result<(), AuditUnavailable>> + Send>>;
type Sealing = Pin<Box<dyn Future<Output = Result<u64, AuditUnavailable>> + Send>>;

/// Everything the `complete` record needs besides the response; taken when it is written.
pub(crate) struct Recorder {
    writer: AuditWriter,
    draft: AuditDraft,
    started: Instant,
    relay: Option<oneshot::Receiver<RelayStats>>,
}

impl Recorder {
    pub(crate) fn new(
        writer: AuditWriter,
        draft: AuditDraft,
        started: Instant,
        relay: Option<oneshot::Receiver<RelayStats>>,
    ) -> Self {
        Recorder {
            writer,
            draft,
            started,
            relay,
        }
    }

    fn ending(&self, status: StatusCode, gateway_reason: Option<String>) -> Completion {
        Completion {
            status: status.as_u16(),
            latency_ms: self.started.elapsed().as_millis() as u64,
            gateway_reason,
            relay: None,
            abandoned: false,
        }
    }

    /// Queues the `complete` record (and the request's remaining records) for a response.
    fn finish(self, status: StatusCode, gateway_reason: Option<String>) {
        let mut ending = self.ending(status, gateway_reason);
        match (status, self.relay) {
            (StatusCode::SWITCHING_PROTOCOLS, Some(relay)) => {
                // The session is recorded when it closes, with its duration and bytes. The task
                // holds a writer handle, so the writer drains only after the relay has ended.
                let (writer, draft) = (self.writer, self.draft);
                tokio::spawn(async move {
                    ending.relay = relay.await.ok();
                    writer.record_detached(records(&draft, &ending));
                });
            }
            _ => self.writer.record_detached(records(&self.draft, &ending)),
        }
    }

    /// Records a request whose client went away before its response was ready.
    fn abandoned(self) {
        let status = StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST);
        let mut ending = self.ending(status, None);
        ending.abandoned = true;
        self.writer.record_detached(records(&self.draft, &ending));
    }
}

/// The request's `complete` record, then the further records it added (the request's own
/// record first, then its parts, as for the intent).
fn records(draft: &AuditDraft, ending: &Completion) -> Vec<AuditEvent> {
    let mut facts = draft.facts();
    let mut events = vec![complete_event(&facts, ending)];
    events.append(&mut facts.annotations.derived);
    events
}

pin_project! {
    /// Admits, calls the inner service, then records; records from `Drop` if it never finished.
    pub struct ResponseFuture<S: Service<Request<B>>, B, ResBody> {
        #[pin]
        state: State<S, B, ResBody>,
        recorder: Option<Recorder>,
    }

    impl<S: Service<Request<B>>, B, ResBody> PinnedDrop for ResponseFuture<S, B, ResBody> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(recorder) = this.project().recorder.take() {
                recorder.abandoned();
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<B>>, B, ResBody> {
        Admitting { waiting: Waiting, request: Option<Request<B>>, inner: S },
        Calling { #[pin] future: S::Future },
        Sealing { sealing: Sealing, response: Option<Response<ResBody>>, derived: Vec<AuditEvent> },
        Done,
    }
}

impl<S: Service<Request<B>>, B, ResBody> ResponseFuture<S, B, ResBody> {
    pub(super) fn calling(future: S::Future, recorder: Recorder) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            recorder: Some(recorder),
        }
    }

    pub(super) fn admitting(request: Request<B>, inner: S, recorder: Recorder) -> Self {
        let writer = recorder.writer.clone();
        ResponseFuture {
            state: State::Admitting {
                waiting: Box::pin(async move { writer.wait_for_room().await }),
                request: Some(request),
                inner,
            },
            recorder: Some(recorder),
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<GatewayBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Admitting {
                    waiting,
                    request,
                    inner,
                } => {
                    let admitted = ready!(waiting.as_mut().poll(cx));
                    let Some(request) = request.take() else {
                        this.state.set(State::Done);
                        continue;
                    };
                    match admitted {
                        Ok(()) => {
                            let future = inner.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err(unavailable) => {
                            tracing::error!(error = %unavailable, "request refused: audit queue full");
                            let response = refusal(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "audit log unavailable; try again shortly",
                            );
                            if let Some(recorder) = this.recorder.take() {
                                let reason = GatewayReason::of(&response).map(str::to_owned);
                                recorder.finish(response.status(), reason);
                            }
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let outcome = ready!(future.poll(cx));
                    let Some(recorder) = this.recorder.take() else {
                        this.state.set(State::Done);
                        return Poll::Ready(outcome.map(passed));
                    };
                    let response = match outcome {
                        Ok(response) => response,
                        Err(error) => {
                            // Only reachable without the rescue layer inside: still recorded.
                            recorder.finish(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                Some("internal gateway error".to_owned()),
                            );
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                    };
                    let reason = GatewayReason::of(&response).map(str::to_owned);
                    let durable = recorder.draft.facts().annotations.durable;
                    if !durable {
                        recorder.finish(response.status(), reason);
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(passed(response)));
                    }
                    // The response reveals something that must be on the record first.
                    let ending = recorder.ending(response.status(), reason);
                    let events = records(&recorder.draft, &ending);
                    // Kept in case the seal fails: what the request did still happened.
                    let derived = events[1..].to_vec();
                    let writer = recorder.writer.clone();
                    *this.recorder = Some(recorder);
                    this.state.set(State::Sealing {
                        sealing: Box::pin(async move { writer.record_durable_batch(events).await }),
                        response: Some(response),
                        derived,
                    });
                }
                StateProj::Sealing {
                    sealing,
                    response,
                    derived,
                } => {
                    let sealed = ready!(sealing.as_mut().poll(cx));
                    let recorder = this.recorder.take();
                    let response = response.take();
                    let derived = std::mem::take(derived);
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(match (sealed, response, recorder) {
                        (Ok(_), Some(response), _) => passed(response),
                        (sealed, _, recorder) => {
                            if let Err(error) = sealed {
                                tracing::error!(%error, "response withheld: its audit record is not durable");
                            }
                            let withheld = refusal(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "audit log unavailable: the response was withheld; try again shortly",
                            );
                            // The attempt is recorded as what the client got.
                            if let Some(recorder) = recorder {
                                withheld_record(recorder, derived, &withheld);
                            }
                            withheld
                        }
                    }));
                }
                StateProj::Done => {
                    // Polled after completion: stay pending rather than panic.
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Records a response withheld for want of a durable record, as an error.
fn withheld_record<B>(recorder: Recorder, derived: Vec<AuditEvent>, withheld: &Response<B>) {
    let reason = GatewayReason::of(withheld).map(str::to_owned);
    let ending = recorder.ending(withheld.status(), reason);
    let mut event = complete_event(&recorder.draft.facts(), &ending);
    event.decision = AuditDecision::Error;
    let mut events = vec![event];
    events.extend(derived);
    recorder.writer.record_detached(events);
}

//! The response future of [`Audit`](super::Audit).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::Service;

use super::event::{complete_event, Ending};
use super::note::AuditNote;
use super::writer::{AuditSlot, AuditUnavailable, AuditWriter};
use crate::body::{refusal, Body};
use crate::forward::RelayStats;

type Reserve = Pin<Box<dyn Future<Output = Result<AuditSlot, AuditUnavailable>> + Send>>;

struct Pending {
    note: AuditNote,
    started: Instant,
    relay: Option<oneshot::Receiver<RelayStats>>,
}

pin_project! {
    /// Waits for room in the audit queue if needed, calls the inner service, then records.
    pub struct ResponseFuture<S: Service<Request<B>>, B> {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<B>>, B> {
        Reserving { reserve: Reserve, request: Option<Request<B>>, inner: S, pending: Option<Pending> },
        Calling { #[pin] future: S::Future, slot: Option<AuditSlot>, pending: Option<Pending> },
        Done,
    }
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    pub(super) fn calling(
        future: S::Future,
        slot: AuditSlot,
        note: AuditNote,
        started: Instant,
        relay: Option<oneshot::Receiver<RelayStats>>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling {
                future,
                slot: Some(slot),
                pending: Some(Pending {
                    note,
                    started,
                    relay,
                }),
            },
        }
    }

    pub(super) fn reserving(
        writer: AuditWriter,
        request: Request<B>,
        inner: S,
        note: AuditNote,
        started: Instant,
        relay: Option<oneshot::Receiver<RelayStats>>,
    ) -> Self {
        ResponseFuture {
            state: State::Reserving {
                reserve: Box::pin(async move { writer.reserve().await }),
                request: Some(request),
                inner,
                pending: Some(Pending {
                    note,
                    started,
                    relay,
                }),
            },
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Output = Result<Response<Body>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Reserving {
                    reserve,
                    request,
                    inner,
                    pending,
                } => {
                    let reserved = ready!(reserve.as_mut().poll(cx));
                    let (Some(request), Some(pending)) = (request.take(), pending.take()) else {
                        this.state.set(State::Done);
                        continue;
                    };
                    match reserved {
                        Ok(slot) => {
                            let future = inner.call(request);
                            this.state.set(State::Calling {
                                future,
                                slot: Some(slot),
                                pending: Some(pending),
                            });
                        }
                        Err(unavailable) => {
                            tracing::error!(error = %unavailable, "request refused: audit queue full");
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(refusal(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "audit log unavailable; try again shortly",
                            )));
                        }
                    }
                }
                StateProj::Calling {
                    future,
                    slot,
                    pending,
                } => {
                    let outcome = ready!(future.poll(cx));
                    if let (Some(slot), Some(pending)) = (slot.take(), pending.take()) {
                        let status = match &outcome {
                            Ok(response) => response.status(),
                            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                        };
                        let gateway_reason = outcome.as_ref().ok().and_then(|response| {
                            response
                                .headers()
                                .get("x-error-reason")
                                .filter(|_| response.status().as_u16() >= 400)
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        });
                        record(slot, pending, status, gateway_reason);
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(outcome);
                }
                StateProj::Done => {
                    // Polled after completion: stay pending rather than panic.
                    return Poll::Pending;
                }
            }
        }
    }
}

fn record(slot: AuditSlot, pending: Pending, status: StatusCode, gateway_reason: Option<String>) {
    let latency_ms = pending.started.elapsed().as_millis() as u64;
    let mut ending = Ending {
        status: status.as_u16(),
        latency_ms,
        gateway_reason,
        relay: None,
    };
    match (status, pending.relay) {
        (StatusCode::SWITCHING_PROTOCOLS, Some(relay)) => {
            // The session is recorded when it closes, with its duration and bytes.
            tokio::spawn(async move {
                ending.relay = relay.await.ok();
                let event = complete_event(&pending.note.facts(), &ending);
                slot.send(event);
            });
        }
        _ => {
            let event = complete_event(&pending.note.facts(), &ending);
            slot.send(event);
        }
    }
}

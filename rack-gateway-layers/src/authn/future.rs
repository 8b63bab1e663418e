//! The response future of [`Authenticate`](super::Authenticate).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use rack_gateway_core::identity::{Principal, ResolveError};
use tower::Service;

use super::layer::{accept, admit, refuse, AuthenticateLayer, Via};
use crate::body::{passed, GatewayBody};
use crate::error::{BoxError, StoreUnavailable};

/// The credential's lookup in the store (ours, boxed; never the inner service).
type Resolve = Pin<Box<dyn Future<Output = Result<Arc<Principal>, ResolveError>> + Send>>;

pin_project! {
    /// Resolves the credential when the cache could not, then calls the inner service.
    pub struct ResponseFuture<S: Service<Request<B>>, B, ResBody> {
        #[pin]
        state: State<S, B, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<B>>, B, ResBody> {
        Refused { response: Option<Response<GatewayBody<ResBody>>> },
        Resolving { resolve: Resolve, request: Option<Request<B>>, inner: S, layer: AuthenticateLayer, via: Via },
        Forwarding { #[pin] future: S::Future },
        Done,
    }
}

impl<S: Service<Request<B>>, B, ResBody> ResponseFuture<S, B, ResBody> {
    pub(super) fn refused(response: Response<GatewayBody<ResBody>>) -> Self {
        ResponseFuture {
            state: State::Refused {
                response: Some(response),
            },
        }
    }

    pub(super) fn forward(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Forwarding { future },
        }
    }

    pub(super) fn resolving(
        resolve: Resolve,
        request: Request<B>,
        inner: S,
        layer: AuthenticateLayer,
        via: Via,
    ) -> Self {
        ResponseFuture {
            state: State::Resolving {
                resolve,
                request: Some(request),
                inner,
                layer,
                via,
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<GatewayBody<ResBody>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Refused { response } => {
                    let response = response.take();
                    this.state.set(State::Done);
                    return Poll::Ready(response.ok_or_else(|| "polled after completion".into()));
                }
                StateProj::Resolving {
                    resolve,
                    request,
                    inner,
                    layer,
                    via,
                } => {
                    let outcome = ready!(resolve.as_mut().poll(cx));
                    let Some(mut request) = request.take() else {
                        return Poll::Ready(Err("polled after completion".into()));
                    };
                    match outcome {
                        Ok(principal) => {
                            if let Err(refusal) = admit(&principal, *via, layer, &request) {
                                this.state.set(State::Done);
                                return Poll::Ready(Ok(refusal.response(&request)));
                            }
                            accept(&mut request, principal);
                            let future = inner.call(request);
                            this.state.set(State::Forwarding { future });
                        }
                        Err(ResolveError::Refused(reason)) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(refuse(&request, reason)));
                        }
                        Err(ResolveError::Store(error)) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(StoreUnavailable(error.to_string()).into()));
                        }
                    }
                }
                StateProj::Forwarding { future } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    return Poll::Ready(Ok(passed(response)));
                }
                StateProj::Done => return Poll::Ready(Err("polled after completion".into())),
            }
        }
    }
}

//! The response future of [`Redact`](super::Redact).
//!
//! The inner service's future is held as it is (pinned in place), never boxed; the layer's own
//! work (reading and merging a release create's form, masking a response) runs in boxed futures
//! of its own, which exist only for the routes that need them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::env_request::EnvRequest;
use super::response::mask_response;
use super::Config;
use crate::body::{passed, GatewayBody};
use crate::error::BoxError;

/// Turning a release create into the request to send (or into a refusal).
pub(crate) type Preparing<B, ResBody> = Pin<
    Box<
        dyn Future<Output = Result<Request<GatewayBody<B>>, Response<GatewayBody<ResBody>>>> + Send,
    >,
>;

/// Masking a response.
type Masking<ResBody> =
    Pin<Box<dyn Future<Output = Result<Response<GatewayBody<ResBody>>, BoxError>> + Send>>;

pin_project! {
    /// Prepares the request when needed, calls the inner service, masks the answer when needed.
    pub struct RedactFuture<S: Service<Request<GatewayBody<B>>>, B, ResBody> {
        #[pin]
        state: State<S, B, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<GatewayBody<B>>>, B, ResBody> {
        Preparing {
            preparing: Preparing<B, ResBody>,
            inner: Option<S>,
            config: Arc<Config>,
            masking: Option<EnvRequest>,
        },
        Calling {
            #[pin] future: S::Future,
            masking: Option<(Arc<Config>, EnvRequest)>,
        },
        Masking { masking: Masking<ResBody> },
        Ready { outcome: Option<Result<Response<GatewayBody<ResBody>>, BoxError>> },
    }
}

impl<S, B, ResBody> RedactFuture<S, B, ResBody>
where
    S: Service<Request<GatewayBody<B>>>,
{
    pub(crate) fn calling(future: S::Future, masking: Option<(Arc<Config>, EnvRequest)>) -> Self {
        RedactFuture {
            state: State::Calling { future, masking },
        }
    }

    pub(crate) fn preparing(
        preparing: Preparing<B, ResBody>,
        inner: S,
        config: Arc<Config>,
        masking: Option<EnvRequest>,
    ) -> Self {
        RedactFuture {
            state: State::Preparing {
                preparing,
                inner: Some(inner),
                config,
                masking,
            },
        }
    }

    pub(crate) fn refused(response: Response<GatewayBody<ResBody>>) -> Self {
        RedactFuture {
            state: State::Ready {
                outcome: Some(Ok(response)),
            },
        }
    }

    pub(crate) fn failed(error: BoxError) -> Self {
        RedactFuture {
            state: State::Ready {
                outcome: Some(Err(error)),
            },
        }
    }
}

impl<S, B, ResBody> Future for RedactFuture<S, B, ResBody>
where
    S: Service<Request<GatewayBody<B>>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<GatewayBody<ResBody>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Preparing {
                    preparing,
                    inner,
                    config,
                    masking,
                } => {
                    let prepared = ready!(preparing.as_mut().poll(cx));
                    let Some(mut inner) = inner.take() else {
                        return Poll::Ready(Err("polled after completion".into()));
                    };
                    match prepared {
                        Ok(request) => {
                            let future = inner.call(request);
                            let masking = masking
                                .take()
                                .map(|env_request| (Arc::clone(config), env_request));
                            this.state.set(State::Calling { future, masking });
                        }
                        Err(refusal) => {
                            this.state.set(State::Ready {
                                outcome: Some(Ok(refusal)),
                            });
                        }
                    }
                }
                StateProj::Calling { future, masking } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    match masking.take() {
                        None => return Poll::Ready(Ok(passed(response))),
                        Some((config, env_request)) => {
                            let masking = Box::pin(async move {
                                mask_response(
                                    response,
                                    &env_request.scope(&config),
                                    config.response_limit,
                                    &config.budget,
                                )
                                .await
                            });
                            this.state.set(State::Masking { masking });
                        }
                    }
                }
                StateProj::Masking { masking } => return masking.as_mut().poll(cx),
                StateProj::Ready { outcome } => {
                    return Poll::Ready(
                        outcome
                            .take()
                            .unwrap_or_else(|| Err("polled after completion".into())),
                    )
                }
            }
        }
    }
}

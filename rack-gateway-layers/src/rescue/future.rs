//! The response future of [`Rescue`](super::Rescue).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::classify::rescue_response;
use crate::body::GatewayBody;
use crate::error::BoxError;

pin_project! {
    /// The inner future, with its error turned into a response.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Failed { response: Option<Response<GatewayBody<B>>> },
        Calling { #[pin] inner: F },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn new(inner: F) -> Self {
        ResponseFuture {
            state: State::Calling { inner },
        }
    }

    /// Answers with `error` without calling the inner service.
    pub(super) fn failed(error: &(dyn std::error::Error + 'static)) -> Self {
        ResponseFuture {
            state: State::Failed {
                response: Some(rescue_response(error)),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<GatewayBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Failed { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| rescue_response(&*BoxError::from("polled after completion"))))),
            StateProj::Calling { inner } => {
                let outcome = ready!(inner.poll(cx));
                Poll::Ready(Ok(match outcome {
                    Ok(response) => crate::body::passed(response),
                    Err(error) => rescue_response(error.into().as_ref()),
                }))
            }
        }
    }
}

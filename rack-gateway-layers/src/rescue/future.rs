//! The response future of [`Rescue`](super::Rescue).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::classify::rescue_response;
use crate::body::Body;
use crate::error::BoxError;

pin_project! {
    /// The inner future, with its error turned into a response.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Failed { response: Option<Response<Body>> },
        Calling { #[pin] inner: F },
    }
}

impl<F> ResponseFuture<F> {
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

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, BoxError>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Failed { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| rescue_response(&*BoxError::from("polled after completion"))))),
            StateProj::Calling { inner } => {
                let outcome = ready!(inner.poll(cx));
                Poll::Ready(Ok(
                    outcome.unwrap_or_else(|error| rescue_response(error.as_ref()))
                ))
            }
        }
    }
}

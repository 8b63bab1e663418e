//! The response future of [`Authorize`](super::Authorize).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use crate::body::Body;
use crate::error::BoxError;

pin_project! {
    /// Either the refusal, or the inner service's future.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Refused { response: Option<Response<Body>> },
        Forwarding { #[pin] future: F },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn refused(response: Response<Body>) -> Self {
        ResponseFuture {
            state: State::Refused {
                response: Some(response),
            },
        }
    }

    pub(super) fn forward(future: F) -> Self {
        ResponseFuture {
            state: State::Forwarding { future },
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, BoxError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused { response } => Poll::Ready(
                response
                    .take()
                    .ok_or_else(|| "polled after completion".into()),
            ),
            StateProj::Forwarding { future } => future.poll(cx),
        }
    }
}

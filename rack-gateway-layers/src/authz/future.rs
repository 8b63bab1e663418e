//! The response future of [`Authorize`](super::Authorize).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use crate::body::{passed, GatewayBody};
use crate::error::BoxError;

pin_project! {
    /// Either the refusal, or the inner service's future.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Refused { response: Option<Response<GatewayBody<B>>> },
        Forwarding { #[pin] future: F },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn refused(response: Response<GatewayBody<B>>) -> Self {
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

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<GatewayBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused { response } => Poll::Ready(
                response
                    .take()
                    .ok_or_else(|| "polled after completion".into()),
            ),
            StateProj::Forwarding { future } => {
                let response = ready!(future.poll(cx)).map_err(Into::into)?;
                Poll::Ready(Ok(passed(response)))
            }
        }
    }
}

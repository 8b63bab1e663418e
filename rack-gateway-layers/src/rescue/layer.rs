//! `RescueLayer` and the `Rescue` service.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::future::ResponseFuture;
use crate::body::Body;
use crate::error::BoxError;

/// Adds [`Rescue`] around a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct RescueLayer;

impl RescueLayer {
    /// A new rescue layer.
    pub fn new() -> Self {
        RescueLayer
    }
}

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Rescue { inner }
    }
}

/// Turns the inner service's errors into 5xx responses; never fails itself.
#[derive(Clone, Debug)]
pub struct Rescue<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Rescue<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A service that cannot become ready still gets requests; its error is rescued per call.
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(error)) => {
                tracing::error!(error = %error, "inner service failed to become ready");
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ResponseFuture::new(self.inner.call(request))
    }
}

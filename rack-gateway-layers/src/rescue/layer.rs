//! `RescueLayer` and the `Rescue` service.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::future::ResponseFuture;
use crate::body::GatewayBody;
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
        Rescue::new(inner)
    }
}

/// Turns the inner service's errors into 5xx responses; never fails itself.
#[derive(Debug)]
pub struct Rescue<S> {
    inner: S,
    /// Why the inner service could not become ready: the next call is answered with it instead
    /// of calling a service that is not ready.
    not_ready: Option<BoxError>,
}

impl<S> Rescue<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Rescue {
            inner,
            not_ready: None,
        }
    }
}

impl<S: Clone> Clone for Rescue<S> {
    fn clone(&self) -> Self {
        // A readiness failure belongs to the clone that saw it.
        Rescue::new(self.inner.clone())
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Rescue<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<GatewayBody<ResBody>>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.not_ready.is_some() {
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            // The request that follows is answered with this failure, and the inner service is
            // not called without having been ready.
            Poll::Ready(Err(error)) => {
                self.not_ready = Some(error.into());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.not_ready.take() {
            Some(error) => ResponseFuture::failed(error.as_ref()),
            None => ResponseFuture::new(self.inner.call(request)),
        }
    }
}

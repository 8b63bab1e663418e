//! The response future of [`Authenticate`](super::Authenticate).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use rack_gateway_core::identity::{Principal, ResolveError};
use tower::Service;

use super::layer::refuse;
use crate::audit::AuditNote;
use crate::body::Body;
use crate::error::{BoxError, StoreUnavailable};

type Resolve = Pin<Box<dyn Future<Output = Result<Arc<Principal>, ResolveError>> + Send>>;

pin_project! {
    /// Resolves the credential, then calls the inner service.
    pub struct ResponseFuture<S: Service<Request<B>>, B> {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request<B>>, B> {
        Refused { response: Option<Response<Body>> },
        Resolving { resolve: Resolve, request: Option<Request<B>>, inner: S },
        Forwarding { #[pin] future: S::Future },
    }
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    pub(super) fn refused(response: Response<Body>) -> Self {
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

    pub(super) fn resolving(resolve: Resolve, request: Request<B>, inner: S) -> Self {
        ResponseFuture {
            state: State::Resolving {
                resolve,
                request: Some(request),
                inner,
            },
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
{
    type Output = Result<Response<Body>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Refused { response } => {
                    return Poll::Ready(
                        response
                            .take()
                            .ok_or_else(|| "polled after completion".into()),
                    )
                }
                StateProj::Resolving {
                    resolve,
                    request,
                    inner,
                } => {
                    let outcome = ready!(resolve.as_mut().poll(cx));
                    let Some(mut request) = request.take() else {
                        return Poll::Ready(Err("polled after completion".into()));
                    };
                    match outcome {
                        Ok(principal) => {
                            if let Some(note) = request.extensions().get::<AuditNote>() {
                                note.set_principal(Arc::clone(&principal));
                            }
                            request.extensions_mut().insert(principal);
                            let future = inner.call(request);
                            this.state.set(State::Forwarding { future });
                        }
                        Err(ResolveError::Refused(reason)) => {
                            return Poll::Ready(Ok(refuse(&request, reason)))
                        }
                        Err(ResolveError::Store(error)) => {
                            return Poll::Ready(Err(StoreUnavailable(error.to_string()).into()))
                        }
                    }
                }
                StateProj::Forwarding { future } => return future.poll(cx),
            }
        }
    }
}

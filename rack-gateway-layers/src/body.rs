//! Bodies: the layers' own answers next to the inner service's, without boxing either.
//!
//! Every layer is generic over the body its inner service answers with. A layer that refuses a
//! request answers with a small body of its own; [`GatewayBody`] carries one or the other, so a
//! stack of layers answers with `GatewayBody<GatewayBody<…<B>>>`, all static dispatch. A binary
//! that wants one body type boxes once, at its edge ([`boxed`]).

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt as _, Empty, Full};
use pin_project_lite::pin_project;

use crate::error::BoxError;

/// A boxed, streaming body, for code that needs one concrete type (a binary's edge).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pin_project! {
    /// The inner service's body, or one the gateway made itself (a refusal, a masked response).
    pub struct GatewayBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        // What the inner service sent, passed through.
        Inner { #[pin] body: B },
        // The gateway's own bytes; `keep` lives as long as the body (a buffer-budget claim).
        Own { #[pin] body: Full<Bytes>, keep: Option<Box<dyn Any + Send + Sync>> },
    }
}

impl<B> GatewayBody<B> {
    /// Passes the inner body through.
    pub fn inner(body: B) -> Self {
        GatewayBody {
            kind: Kind::Inner { body },
        }
    }

    /// The gateway's own bytes.
    pub fn own(bytes: impl Into<Bytes>) -> Self {
        GatewayBody {
            kind: Kind::Own {
                body: Full::new(bytes.into()),
                keep: None,
            },
        }
    }

    /// The gateway's own bytes, keeping `guard` alive until the body is dropped (sent).
    pub fn own_keeping(bytes: impl Into<Bytes>, guard: impl Any + Send + Sync) -> Self {
        GatewayBody {
            kind: Kind::Own {
                body: Full::new(bytes.into()),
                keep: Some(Box::new(guard)),
            },
        }
    }

    /// Whether this is the gateway's own body (not the inner service's).
    pub fn is_own(&self) -> bool {
        matches!(self.kind, Kind::Own { .. })
    }
}

impl<B: Default> Default for GatewayBody<B> {
    fn default() -> Self {
        GatewayBody::inner(B::default())
    }
}

impl<B> std::fmt::Debug for GatewayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Kind::Inner { .. } => f.write_str("GatewayBody::Inner(..)"),
            Kind::Own { .. } => f.write_str("GatewayBody::Own(..)"),
        }
    }
}

impl<B> http_body::Body for GatewayBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Own { body, .. } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Own { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Own { body, .. } => body.size_hint(),
        }
    }
}

/// A boxed body with the given bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty boxed body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Why the gateway itself answered a request the way it did (a refusal or a failure), as a typed
/// response extension.
///
/// Outer layers (audit, metrics) read the reason from here, never from a header: a rack can send
/// any header it likes, but only the gateway's own code can put this extension on a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayReason(pub String);

impl GatewayReason {
    /// The reason a response carries, if the gateway made it.
    pub fn of<B>(response: &Response<B>) -> Option<&str> {
        response
            .extensions()
            .get::<GatewayReason>()
            .map(|reason| reason.0.as_str())
    }
}

/// A plain-text refusal with the reason on one line (the Convox CLI prints it verbatim), also
/// echoed in `X-Error-Reason` for clients and in a [`GatewayReason`] extension for outer layers.
pub fn refusal<B>(status: http::StatusCode, reason: &str) -> Response<GatewayBody<B>> {
    let one_line = one_line(reason);
    let mut response = Response::new(GatewayBody::own(format!("{one_line}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(value) = http::HeaderValue::from_str(&one_line) {
        headers.insert("x-error-reason", value);
    }
    response.extensions_mut().insert(GatewayReason(one_line));
    response
}

/// `text` with control characters (line breaks included) replaced by spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The inner service's response, passed through.
pub(crate) fn passed<B>(response: Response<B>) -> Response<GatewayBody<B>> {
    response.map(GatewayBody::inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_kinds_stream_their_bytes() {
        let inner: GatewayBody<Full<Bytes>> = GatewayBody::inner(Full::new(Bytes::from("rack")));
        assert_eq!(inner.collect().await.unwrap().to_bytes(), "rack");
        let refused = refusal::<Full<Bytes>>(http::StatusCode::FORBIDDEN, "no\nway");
        assert_eq!(GatewayReason::of(&refused), Some("no way"));
        assert_eq!(
            refused.into_body().collect().await.unwrap().to_bytes(),
            "no way\n"
        );
    }
}

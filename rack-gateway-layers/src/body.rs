//! The one body type the layers produce, and helpers to make small ones.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};

use crate::error::BoxError;

/// A boxed, streaming response or request body.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body with the given bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
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
    pub fn of<B>(response: &http::Response<B>) -> Option<&str> {
        response
            .extensions()
            .get::<GatewayReason>()
            .map(|reason| reason.0.as_str())
    }
}

/// A plain-text refusal with the reason on one line (the Convox CLI prints it verbatim), also
/// echoed in `X-Error-Reason` for clients and in a [`GatewayReason`] extension for outer layers.
pub fn refusal(status: http::StatusCode, reason: &str) -> http::Response<Body> {
    let one_line = one_line(reason);
    let mut response = http::Response::new(full(format!("{one_line}\n")));
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

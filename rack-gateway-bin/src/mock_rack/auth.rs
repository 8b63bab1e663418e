//! HTTP Basic auth as a Convox rack checks it: user `convox`, password the rack token,
//! compared in constant time. `GET /health` is open.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::MockRack;

/// Middleware: lets the request through only with valid rack credentials.
pub(super) async fn require_basic(
    State(rack): State<MockRack>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::GET && req.uri().path() == "/health" {
        return next.run(req).await;
    }
    match check(req.headers(), rack.token()) {
        Ok(()) => next.run(req).await,
        Err(reason) => (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Basic realm=\"convox\""),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            format!("{reason}\n"),
        )
            .into_response(),
    }
}

/// Checks the `Authorization` header against `token`; `Err` carries a one-line reason.
fn check(headers: &HeaderMap, token: &str) -> Result<(), &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("missing credentials")?
        .to_str()
        .map_err(|_| "malformed Authorization header")?;
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or("malformed Authorization header")?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("unsupported authorization scheme");
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| "malformed basic credentials")?;
    let colon = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or("malformed basic credentials")?;
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    let user_ok = user.ct_eq(b"convox");
    let password_ok = password.ct_eq(token.as_bytes());
    if bool::from(user_ok & password_ok) {
        Ok(())
    } else {
        Err("invalid credentials")
    }
}

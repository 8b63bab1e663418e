//! Errors as the real rack renders them: a status code and a one-line `text/plain` reason.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A failed request: status plus a one-line reason.
#[derive(Debug)]
pub(super) struct MockError {
    status: StatusCode,
    message: String,
}

/// Result of a mock handler.
pub(super) type MockResult<T> = Result<T, MockError>;

impl MockError {
    /// An error with an explicit status.
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409 Conflict.
    pub(super) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
}

impl IntoResponse for MockError {
    fn into_response(self) -> Response {
        let body = format!("{}\n", self.message.replace(['\r', '\n'], " "));
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// The `ok\n` body real Convox answers for writes that return nothing (`RenderOK`).
pub(super) fn ok() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
        .into_response()
}

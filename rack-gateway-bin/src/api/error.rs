//! API errors: a status and a one-line JSON reason.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A refusal or failure of an API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// One-line reason shown to the caller.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 with a reason.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 503: something the gateway depends on failed (details go to the log, not the caller).
    pub fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{what} failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} unavailable; try again shortly"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

//! API errors: a status and a one-line JSON reason.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rack_gateway_layers::body::{one_line, GatewayReason};
use serde_json::json;

/// A refusal or failure of an API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// One-line reason shown to the caller.
    pub message: String,
    /// What the audit record says, when it should say more than the caller is told (which
    /// permission was missing); never a value.
    pub audit_reason: Option<String>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            audit_reason: None,
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

    /// The same error, recorded in the audit trail with `reason` instead of the message.
    pub fn recorded_as(mut self, reason: impl Into<String>) -> Self {
        self.audit_reason = Some(reason.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let recorded = one_line(self.audit_reason.as_deref().unwrap_or(&self.message));
        let mut response = (self.status, Json(json!({"error": self.message}))).into_response();
        response.extensions_mut().insert(GatewayReason(recorded));
        response
    }
}

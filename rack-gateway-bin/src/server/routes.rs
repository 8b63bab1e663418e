//! The endpoints outside the rack proxy.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::health::{self, Health};

/// Health endpoints now; the admin API and web UI join here.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/api/v1/health", get(health::live))
        .route("/api/v1/health/ready", get(health::ready))
        .with_state(health)
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))) })
}

//! The endpoints outside the rack proxy.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::health::{self, Health};
use crate::api::ApiState;

/// Health endpoints and the admin API; the web UI joins here.
pub fn router(health: Health, api: ApiState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health::live))
        .route("/api/v1/health/ready", get(health::ready))
        .with_state(health)
        .merge(crate::api::router(api))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))) })
}

//! The endpoints outside the rack proxy.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::health::{self, Health};

/// The health endpoints (no credential, not audited: load balancers poll them); everything else
/// outside the proxy and the API is 404 (the web UI joins here).
pub fn router(health: Health) -> Router {
    Router::new()
        .route(HEALTH, get(health::live))
        .route(READY, get(health::ready))
        .with_state(health)
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))) })
}

/// Liveness.
pub const HEALTH: &str = "/api/v1/health";
/// Readiness.
pub const READY: &str = "/api/v1/health/ready";

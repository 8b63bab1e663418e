//! The route table: every Convox route of the gateway's allow-list plus `/health` and
//! `/racks`, behind Basic auth; anything else is a plain-text 404.

use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post, put};
use axum::Router;

use super::error::MockError;
use super::MockRack;
use super::{apps, auth, builds, exec, logs, objects, processes, releases, services, system};

async fn not_found() -> MockError {
    MockError::not_found("404 page not found")
}

async fn method_not_allowed() -> MockError {
    MockError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// All routes, with `rack` as state.
pub(super) fn build(rack: MockRack) -> Router {
    Router::new()
        .route("/health", get(system::health))
        .route("/racks", get(system::racks))
        .route("/apps", get(apps::list).post(apps::create))
        .route(
            "/apps/{app}",
            get(apps::get).put(apps::update).delete(apps::delete),
        )
        .route("/apps/{app}/restart", post(apps::restart))
        .route("/apps/{app}/logs", get(logs::app))
        .route("/apps/{app}/services", get(services::list))
        .route("/apps/{app}/services/{service}", put(services::update))
        .route(
            "/apps/{app}/services/{service}/restart",
            post(services::restart),
        )
        .route(
            "/apps/{app}/services/{service}/processes",
            post(processes::run),
        )
        .route("/apps/{app}/processes", get(processes::list))
        .route(
            "/apps/{app}/processes/{pid}",
            get(processes::get).delete(processes::stop),
        )
        .route("/apps/{app}/processes/{pid}/exec", get(exec::exec))
        .route("/apps/{app}/processes/{pid}/logs", get(logs::process))
        .route("/apps/{app}/builds", get(builds::list).post(builds::create))
        .route("/apps/{app}/builds/import", post(builds::import))
        .route(
            "/apps/{app}/builds/{id}",
            get(builds::get).put(builds::update),
        )
        .route("/apps/{app}/builds/{id}/logs", get(logs::build))
        .route(
            "/apps/{app}/releases",
            get(releases::list).post(releases::create),
        )
        .route("/apps/{app}/releases/{id}", get(releases::get))
        .route("/apps/{app}/releases/{id}/promote", post(releases::promote))
        .route("/apps/{app}/objects/tmp/{name}", post(objects::upload))
        .route("/instances", get(system::instances))
        .route("/instances/{id}", get(system::instance))
        .route("/system", get(system::get).put(system::update))
        .route("/system/capacity", get(system::capacity))
        .route("/system/metrics", get(system::metrics))
        .route("/system/processes", get(system::processes))
        .route("/system/releases", get(system::releases))
        .route("/system/logs", get(logs::system))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            rack.clone(),
            auth::require_basic,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(rack)
}

/// One debug line per request, so tests can tell what reached the rack (and what did not).
async fn log_request(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let response = next.run(request).await;
    tracing::debug!(target: "mock_rack", %method, %path, %request_id, status = response.status().as_u16(), "mock rack request");
    response
}

//! `/apps/{app}/releases`: list (newest first, query `limit`), read, create (SDK form `build`,
//! `description`, `env` — the env is stored exactly as posted) and promote.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chrono::Utc;

use super::builds::limited;
use super::error::{ok, MockResult};
use super::ids;
use super::model::Release;
use super::params::Params;
use super::MockRack;

/// `GET /apps/{app}/releases`.
pub(super) async fn list(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    params: Params,
) -> MockResult<Json<Vec<Release>>> {
    Ok(Json(limited(&rack.state().app(&app)?.releases, &params)?))
}

/// `GET /apps/{app}/releases/{id}`.
pub(super) async fn get(
    State(rack): State<MockRack>,
    Path((app, id)): Path<(String, String)>,
) -> MockResult<Json<Release>> {
    Ok(Json(rack.state().app(&app)?.release(&id)?.clone()))
}

/// `POST /apps/{app}/releases`: a new release from the latest one, with the posted `build`
/// and `env` (verbatim, even when empty) replacing the inherited ones.
pub(super) async fn create(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    params: Params,
) -> MockResult<Json<Release>> {
    let mut state = rack.state();
    let entry = state.app_mut(&app)?;
    let base = entry.latest_release().cloned();
    let (build, manifest) = match params.non_empty("build") {
        Some(id) => {
            let build = entry.build(id.trim())?;
            (build.id.clone(), build.manifest.clone())
        }
        None => base
            .as_ref()
            .map(|r| (r.build.clone(), r.manifest.clone()))
            .unwrap_or_default(),
    };
    let env = match params.get("env") {
        Some(env) => env.to_string(),
        None => base.map(|r| r.env).unwrap_or_default(),
    };
    let release = Release {
        id: ids::release_id(),
        app: app.clone(),
        build,
        env,
        manifest,
        description: params.get("description").unwrap_or_default().to_string(),
        created: Utc::now(),
    };
    entry.releases.push(release.clone());
    Ok(Json(release))
}

/// `POST /apps/{app}/releases/{id}/promote` → `ok`; the app and its processes move to it.
pub(super) async fn promote(
    State(rack): State<MockRack>,
    Path((app, id)): Path<(String, String)>,
) -> MockResult<Response> {
    let mut state = rack.state();
    let manifest = {
        let entry = state.app_mut(&app)?;
        let manifest = entry.release(&id)?.manifest.clone();
        entry.app.release.clone_from(&id);
        entry.app.status = "running".to_string();
        for process in entry.processes.iter_mut().filter(|p| !p.one_off) {
            process.release.clone_from(&id);
            process.image = format!("registry.mock-rack.internal/{app}:{id}");
        }
        manifest
    };
    state.ensure_services(&app, &manifest)?;
    Ok(ok())
}

//! `/apps` and `/apps/{app}`: list, create (SDK form `name`, or JSON), read, update
//! (`lock`, `parameters`), delete and restart.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;

use super::error::{ok, MockError, MockResult};
use super::model::App;
use super::params::Params;
use super::state::AppState;
use super::MockRack;

/// `GET /apps`.
pub(super) async fn list(State(rack): State<MockRack>) -> Json<Vec<App>> {
    Json(rack.state().apps.values().map(|a| a.app.clone()).collect())
}

/// `GET /apps/{app}`.
pub(super) async fn get(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
) -> MockResult<Json<App>> {
    Ok(Json(rack.state().app(&app)?.app.clone()))
}

/// Convox app names: lowercase letters, digits and dashes, starting with a letter.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// `POST /apps` (form `name`, optional `parameters`); 409 if the app exists.
pub(super) async fn create(State(rack): State<MockRack>, params: Params) -> MockResult<Json<App>> {
    let name = params
        .non_empty("name")
        .ok_or_else(|| MockError::bad_request("name required"))?
        .trim()
        .to_string();
    if !valid_name(&name) {
        return Err(MockError::bad_request(format!("invalid app name: {name}")));
    }
    let parameters = params.map("parameters")?;
    let mut state = rack.state();
    if state.apps.contains_key(&name) {
        return Err(MockError::conflict(format!("app already exists: {name}")));
    }
    let app = App {
        generation: "3".to_string(),
        locked: false,
        name: name.clone(),
        release: String::new(),
        router: format!("router.{}", state.system.domain),
        status: "running".to_string(),
        parameters,
    };
    state.apps.insert(
        name,
        AppState {
            app: app.clone(),
            services: Vec::new(),
            processes: Vec::new(),
            builds: Vec::new(),
            releases: Vec::new(),
        },
    );
    Ok(Json(app))
}

/// `PUT /apps/{app}` (form `lock`, `parameters`) → `ok`.
pub(super) async fn update(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    params: Params,
) -> MockResult<Response> {
    let lock = params.flag("lock")?;
    let parameters: BTreeMap<String, String> = params.map("parameters")?;
    let mut state = rack.state();
    let entry = state.app_mut(&app)?;
    if let Some(lock) = lock {
        entry.app.locked = lock;
    }
    entry.app.parameters.extend(parameters);
    Ok(ok())
}

/// `DELETE /apps/{app}` → `ok`; a locked app is refused.
pub(super) async fn delete(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
) -> MockResult<Response> {
    let mut state = rack.state();
    if state.app(&app)?.app.locked {
        return Err(MockError::bad_request(format!("app is locked: {app}")));
    }
    state.apps.remove(&app);
    state
        .objects
        .retain(|key, _| !key.starts_with(&format!("{app}/")));
    Ok(ok())
}

/// `POST /apps/{app}/restart` → `ok`; every service gets fresh processes.
pub(super) async fn restart(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
) -> MockResult<Response> {
    rack.state().restart(&app, None)?;
    Ok(ok())
}

//! `/apps/{app}/processes`: list (query `service`, `release`), read, stop, and
//! `POST /apps/{app}/services/{service}/processes` (`convox run`, options as headers).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;

use super::error::{ok, MockError, MockResult};
use super::ids;
use super::model::Process;
use super::params::Params;
use super::state::Launch;
use super::ws::header_str;
use super::MockRack;

/// `GET /apps/{app}/processes`, sorted by service then id.
pub(super) async fn list(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    params: Params,
) -> MockResult<Json<Vec<Process>>> {
    let service = params.non_empty("service");
    let release = params.non_empty("release");
    let state = rack.state();
    let mut processes: Vec<Process> = state
        .app(&app)?
        .processes
        .iter()
        .filter(|p| service.is_none_or(|s| p.name == s))
        .filter(|p| release.is_none_or(|r| p.release == r))
        .cloned()
        .collect();
    processes.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(Json(processes))
}

/// `GET /apps/{app}/processes/{pid}`.
pub(super) async fn get(
    State(rack): State<MockRack>,
    Path((app, pid)): Path<(String, String)>,
) -> MockResult<Json<Process>> {
    Ok(Json(rack.state().app(&app)?.process(&pid)?.clone()))
}

/// `DELETE /apps/{app}/processes/{pid}` → `ok`; the process is gone (no respawn).
pub(super) async fn stop(
    State(rack): State<MockRack>,
    Path((app, pid)): Path<(String, String)>,
) -> MockResult<Response> {
    let mut state = rack.state();
    let entry = state.app_mut(&app)?;
    entry.process(&pid)?;
    entry.processes.retain(|p| p.id != pid);
    Ok(ok())
}

/// `POST /apps/{app}/services/{service}/processes`: starts a one-off process.
///
/// The SDK sends `Command` and `Release` as headers; form/query values are accepted too.
pub(super) async fn run(
    State(rack): State<MockRack>,
    Path((app, service)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> MockResult<Json<Process>> {
    let command = header_str(&headers, "command")
        .or_else(|| params.get("command"))
        .unwrap_or("sh")
        .to_string();
    let release = header_str(&headers, "release")
        .or_else(|| params.non_empty("release"))
        .map(str::to_string);
    let mut state = rack.state();
    let (svc, release) = {
        let entry = state.app(&app)?;
        let svc = entry
            .services
            .iter()
            .find(|s| s.name == service)
            .cloned()
            .ok_or_else(|| MockError::not_found(format!("no such service: {service}")))?;
        let release = match release {
            Some(id) => entry.release(&id)?.id.clone(),
            None => entry.app.release.clone(),
        };
        (svc, release)
    };
    let launch = Launch {
        command: &command,
        release: &release,
        one_off: true,
    };
    let process = state.new_process(&app, &svc, &launch, ids::process_id(&service));
    state.app_mut(&app)?.processes.push(process.clone());
    Ok(Json(process))
}

//! `/apps/{app}/services`: list, scale (SDK form `count`, `cpu`, `memory`) and restart.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;

use super::error::{ok, MockError, MockResult};
use super::model::Service;
use super::params::Params;
use super::MockRack;

/// Most processes one service may be scaled to.
const MAX_COUNT: u32 = 100;
/// CPU units accepted by scale (Convox: 1024 = one core).
const MAX_CPU: u32 = 32 * 1024;
/// Memory (MB) accepted by scale.
const MAX_MEMORY: u32 = 256 * 1024;

/// `GET /apps/{app}/services`.
pub(super) async fn list(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
) -> MockResult<Json<Vec<Service>>> {
    Ok(Json(rack.state().app(&app)?.services.clone()))
}

/// `key` as a number in `0..=max` (or `1..=max` when `min_one`).
fn bounded(params: &Params, key: &str, max: u32, min_one: bool) -> MockResult<Option<u32>> {
    let value = params.parse::<u32>(key)?;
    match value {
        Some(v) if v > max || (min_one && v == 0) => Err(MockError::bad_request(format!(
            "invalid {key}: {v} (allowed {}..={max})",
            u32::from(min_one)
        ))),
        other => Ok(other),
    }
}

/// `PUT /apps/{app}/services/{service}` → `ok`; changes count, cpu and memory.
pub(super) async fn update(
    State(rack): State<MockRack>,
    Path((app, service)): Path<(String, String)>,
    params: Params,
) -> MockResult<Response> {
    let count = bounded(&params, "count", MAX_COUNT, false)?;
    let cpu = bounded(&params, "cpu", MAX_CPU, true)?;
    let memory = bounded(&params, "memory", MAX_MEMORY, true)?;
    let gpu = bounded(&params, "gpu", 8, false)?;
    let mut state = rack.state();
    let entry = state.app_mut(&app)?;
    let svc = entry
        .services
        .iter_mut()
        .find(|s| s.name == service)
        .ok_or_else(|| MockError::not_found(format!("no such service: {service}")))?;
    svc.cpu = cpu.unwrap_or(svc.cpu);
    svc.memory = memory.unwrap_or(svc.memory);
    svc.gpu = gpu.unwrap_or(svc.gpu);
    svc.count = count.unwrap_or(svc.count);
    let (new_count, cpu, memory) = (svc.count, svc.cpu, svc.memory);
    for process in entry
        .processes
        .iter_mut()
        .filter(|p| p.name == service && !p.one_off)
    {
        process.cpu = f64::from(cpu);
        process.memory = f64::from(memory);
    }
    state.scale(&app, &service, new_count as usize)?;
    Ok(ok())
}

/// `POST /apps/{app}/services/{service}/restart` → `ok`.
pub(super) async fn restart(
    State(rack): State<MockRack>,
    Path((app, service)): Path<(String, String)>,
) -> MockResult<Response> {
    rack.state().restart(&app, Some(&service))?;
    Ok(ok())
}

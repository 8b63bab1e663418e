//! Rack-level routes: `/health`, `/system` (read, update with `parameters`), its capacity,
//! metrics, processes and releases, `/instances`, and `/racks` (always `[]`).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chrono::{Duration, Utc};
use serde_json::{json, Value};

use super::error::{ok, MockError, MockResult};
use super::model::{Capacity, Instance, Metric, MetricValue, Process, Release, System};
use super::params::Params;
use super::state::State as RackState;
use super::MockRack;

/// `GET /health` (no auth).
pub(super) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /racks`: the SDK asks before every websocket; there are no other racks.
pub(super) async fn racks() -> Json<Vec<Value>> {
    Json(Vec::new())
}

/// `GET /system`.
pub(super) async fn get(State(rack): State<MockRack>) -> Json<System> {
    Json(rack.state().system.clone())
}

/// `PUT /system` (form `count`, `type`, `version`, `parameters`) → `ok`.
pub(super) async fn update(State(rack): State<MockRack>, params: Params) -> MockResult<Response> {
    let count = params.parse::<u32>("count")?;
    if count.is_some_and(|c| c == 0 || c > 100) {
        return Err(MockError::bad_request("invalid count: allowed 1..=100"));
    }
    let parameters = params.map("parameters")?;
    let mut state = rack.state();
    let system = &mut state.system;
    system.count = count.unwrap_or(system.count);
    if let Some(kind) = params.non_empty("type") {
        system.kind = kind.to_string();
    }
    if let Some(version) = params.non_empty("version") {
        system.version = version.to_string();
    }
    system.parameters.extend(parameters);
    Ok(ok())
}

/// Every app process plus the system ones.
fn all_processes(state: &RackState) -> impl Iterator<Item = &Process> {
    state
        .apps
        .values()
        .flat_map(|a| a.processes.iter())
        .chain(state.system_processes.iter())
}

/// `GET /system/capacity`.
pub(super) async fn capacity(State(rack): State<MockRack>) -> Json<Capacity> {
    let state = rack.state();
    let instances = state.instances.len() as u64;
    let (mut count, mut memory, mut largest_cpu, mut largest_memory) = (0u64, 0u64, 0u64, 0u64);
    for process in all_processes(&state) {
        count += 1;
        memory += process.memory as u64;
        largest_cpu = largest_cpu.max(process.cpu as u64);
        largest_memory = largest_memory.max(process.memory as u64);
    }
    Json(Capacity {
        cluster_cpu: instances * 2048,
        cluster_memory: instances * 8192,
        instance_cpu: 2048,
        instance_memory: 8192,
        process_count: count,
        process_memory: memory,
        process_width: 1,
        largest_process_cpu: largest_cpu,
        largest_process_memory: largest_memory,
    })
}

/// `GET /system/metrics`: a few recent points per metric.
pub(super) async fn metrics() -> Json<Vec<Metric>> {
    let now = Utc::now();
    let metric = |name: &str, base: f64| Metric {
        name: name.to_string(),
        values: (0..6i32)
            .map(|i| {
                let v = base + f64::from(i % 3) * 2.5;
                MetricValue {
                    time: now - Duration::minutes(i64::from(5 * (6 - i))),
                    average: v,
                    count: 60.0,
                    maximum: v + 4.0,
                    minimum: v - 3.0,
                    sum: v * 60.0,
                    p50: v,
                    p90: v + 2.0,
                    p95: v + 3.0,
                    p99: v + 3.5,
                }
            })
            .collect(),
    };
    Json(vec![
        metric("cluster:cpu:utilization", 23.0),
        metric("cluster:mem:utilization", 41.0),
    ])
}

/// `GET /system/processes` (query `all`): the rack's own processes, with app ones if `all`.
pub(super) async fn processes(
    State(rack): State<MockRack>,
    params: Params,
) -> MockResult<Json<Vec<Process>>> {
    let all = params.flag("all")?.unwrap_or(false);
    let state = rack.state();
    let list = if all {
        all_processes(&state).cloned().collect()
    } else {
        state.system_processes.clone()
    };
    Ok(Json(list))
}

/// `GET /system/releases`, newest first.
pub(super) async fn releases(State(rack): State<MockRack>) -> Json<Vec<Release>> {
    Json(rack.state().system_releases.iter().rev().cloned().collect())
}

/// An instance with its live process count.
fn counted(state: &RackState, instance: &Instance) -> Instance {
    let processes = all_processes(state)
        .filter(|p| p.instance == instance.id)
        .count();
    Instance {
        processes,
        ..instance.clone()
    }
}

/// `GET /instances`.
pub(super) async fn instances(State(rack): State<MockRack>) -> Json<Vec<Instance>> {
    let state = rack.state();
    Json(state.instances.iter().map(|i| counted(&state, i)).collect())
}

/// `GET /instances/{id}`.
pub(super) async fn instance(
    State(rack): State<MockRack>,
    Path(id): Path<String>,
) -> MockResult<Json<Instance>> {
    let state = rack.state();
    let instance = state
        .instances
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| MockError::not_found(format!("no such instance: {id}")))?;
    Ok(Json(counted(&state, instance)))
}

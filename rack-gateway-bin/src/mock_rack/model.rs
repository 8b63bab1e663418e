//! The JSON shapes of the real Convox API (`convox/convox` `pkg/structs`), hyphenated keys.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `structs.App`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct App {
    pub(super) generation: String,
    pub(super) locked: bool,
    pub(super) name: String,
    pub(super) release: String,
    pub(super) router: String,
    pub(super) status: String,
    pub(super) parameters: BTreeMap<String, String>,
}

/// `structs.ServicePort`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct ServicePort {
    pub(super) balancer: u16,
    pub(super) certificate: String,
    pub(super) container: u16,
}

/// `structs.Service`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Service {
    pub(super) count: u32,
    pub(super) cpu: u32,
    pub(super) domain: String,
    pub(super) gpu: u32,
    pub(super) memory: u32,
    pub(super) name: String,
    pub(super) ports: Vec<ServicePort>,
}

/// `structs.Process`; `one_off` (a `convox run` process) is internal.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Process {
    pub(super) id: String,
    pub(super) app: String,
    pub(super) command: String,
    pub(super) cpu: f64,
    pub(super) gpu: u32,
    pub(super) host: String,
    pub(super) image: String,
    pub(super) instance: String,
    pub(super) memory: f64,
    pub(super) name: String,
    pub(super) ports: Vec<String>,
    pub(super) release: String,
    pub(super) started: DateTime<Utc>,
    pub(super) status: String,
    #[serde(skip)]
    pub(super) one_off: bool,
}

/// `structs.Build`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Build {
    pub(super) id: String,
    pub(super) app: String,
    pub(super) description: String,
    pub(super) entrypoint: String,
    pub(super) git_sha: String,
    pub(super) logs: String,
    pub(super) manifest: String,
    pub(super) process: String,
    pub(super) release: String,
    pub(super) reason: String,
    pub(super) repository: String,
    pub(super) status: String,
    pub(super) started: DateTime<Utc>,
    pub(super) ended: DateTime<Utc>,
}

/// `structs.Release`; `env` is newline-separated `KEY=VALUE`, stored verbatim.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Release {
    pub(super) id: String,
    pub(super) app: String,
    pub(super) build: String,
    pub(super) env: String,
    pub(super) manifest: String,
    pub(super) description: String,
    pub(super) created: DateTime<Utc>,
}

/// `structs.Instance`; `processes` is filled in when served.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Instance {
    pub(super) agent: bool,
    pub(super) cpu: f64,
    pub(super) cpu_capacity: f64,
    pub(super) id: String,
    pub(super) memory: f64,
    pub(super) private_ip: String,
    pub(super) processes: usize,
    pub(super) public_ip: String,
    pub(super) status: String,
    pub(super) started: DateTime<Utc>,
}

/// `structs.System`; unlike the reference mock, `parameters` is served.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct System {
    pub(super) count: u32,
    pub(super) domain: String,
    pub(super) name: String,
    pub(super) provider: String,
    pub(super) rack_domain: String,
    pub(super) region: String,
    pub(super) status: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) version: String,
    pub(super) parameters: BTreeMap<String, String>,
}

/// `structs.Capacity`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Capacity {
    pub(super) cluster_cpu: u64,
    pub(super) cluster_memory: u64,
    pub(super) instance_cpu: u64,
    pub(super) instance_memory: u64,
    pub(super) process_count: u64,
    pub(super) process_memory: u64,
    pub(super) process_width: u64,
    pub(super) largest_process_cpu: u64,
    pub(super) largest_process_memory: u64,
}

/// `structs.Metric`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Metric {
    pub(super) name: String,
    pub(super) values: Vec<MetricValue>,
}

/// `structs.MetricValue`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct MetricValue {
    pub(super) time: DateTime<Utc>,
    pub(super) average: f64,
    pub(super) count: f64,
    pub(super) maximum: f64,
    pub(super) minimum: f64,
    pub(super) sum: f64,
    pub(super) p50: f64,
    pub(super) p90: f64,
    pub(super) p95: f64,
    pub(super) p99: f64,
}

/// `structs.Object` (its field has no JSON tag, hence `Url`).
#[derive(Debug, Clone, Serialize)]
pub(super) struct Object {
    #[serde(rename = "Url")]
    pub(super) url: String,
}

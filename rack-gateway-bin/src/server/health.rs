//! Liveness and readiness.
//!
//! `/api/v1/health` answers while the process serves. `/api/v1/health/ready` is 200 only when
//! the store answers and the rack answered a probe recently; its JSON lists each check.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use http::Request;
use rack_gateway_core::store::Store;
use rack_gateway_layers::audit::AuditWriter;
use rack_gateway_layers::forward::{RackForward, RackPath};
use tokio::sync::watch;

use crate::anchors::AnchorStatus;
use serde_json::{json, Value};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// How often the rack is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// A probe older than this no longer counts.
const PROBE_FRESHNESS: Duration = Duration::from_secs(30);
/// How long the store gets to answer a readiness ping.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct ProbeState {
    last_success: Option<Instant>,
    last_error: Option<String>,
}

/// The latest result of probing the rack with `GET /system`.
#[derive(Clone, Debug, Default)]
pub struct RackProbe {
    state: Arc<Mutex<ProbeState>>,
}

impl RackProbe {
    /// Starts probing the rack through `forward` every [`PROBE_INTERVAL`].
    pub fn spawn(forward: RackForward) -> Self {
        let probe = RackProbe::default();
        let state = Arc::clone(&probe.state);
        tokio::spawn(async move {
            loop {
                let outcome = probe_once(forward.clone()).await;
                {
                    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                    match outcome {
                        Ok(()) => {
                            state.last_success = Some(Instant::now());
                            state.last_error = None;
                        }
                        Err(error) => state.last_error = Some(error),
                    }
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        });
        probe
    }

    fn report(&self) -> (bool, Value) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let age = state.last_success.map(|at| at.elapsed());
        let ok = age.is_some_and(|age| age < PROBE_FRESHNESS);
        let detail = json!({
            "ok": ok,
            "last_success_seconds_ago": age.map(|a| a.as_secs()),
            "error": state.last_error,
        });
        (ok, detail)
    }
}

async fn probe_once(forward: RackForward) -> Result<(), String> {
    // A concrete, infallible body keeps the spawned future's type simple.
    let mut request = Request::get("/system")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    request
        .extensions_mut()
        .insert(RackPath("/system".to_owned()));
    let response = forward.oneshot(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("rack answered {}", response.status()))
    }
}

/// What readiness checks.
#[derive(Clone)]
pub struct Health {
    store: Arc<dyn Store>,
    rack: RackProbe,
    writer: AuditWriter,
    anchors: Option<watch::Receiver<AnchorStatus>>,
}

impl Health {
    /// Checks `store`, the rack probe and the audit writer; reports anchoring when it is on.
    pub fn new(
        store: Arc<dyn Store>,
        rack: RackProbe,
        writer: AuditWriter,
        anchors: Option<watch::Receiver<AnchorStatus>>,
    ) -> Self {
        Health {
            store,
            rack,
            writer,
            anchors,
        }
    }
}

/// `GET /api/v1/health`.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok", "service": "rack-gateway"}))
}

/// `GET /api/v1/health/ready`.
pub async fn ready(State(health): State<Health>) -> (StatusCode, Json<Value>) {
    let started = Instant::now();
    let store = match tokio::time::timeout(STORE_PING_TIMEOUT, health.store.ping()).await {
        Ok(Ok(())) => {
            json!({"ok": true, "backend": health.store.backend(), "latency_ms": started.elapsed().as_millis() as u64})
        }
        Ok(Err(error)) => {
            json!({"ok": false, "backend": health.store.backend(), "error": error.to_string()})
        }
        Err(_) => json!({"ok": false, "backend": health.store.backend(), "error": "timed out"}),
    };
    let store_ok = store["ok"] == json!(true);
    let (rack_ok, rack) = health.rack.report();
    let writer = health.writer.health();
    let audit_ok = writer.healthy;
    let audit = json!({
        "ok": audit_ok,
        "appended": writer.appended,
        "queued": writer.queued,
        "error": writer.last_error,
    });
    // Anchoring problems are reported but never make the gateway unready: requests do not
    // depend on S3.
    let anchors = health.anchors.as_ref().map(|status| {
        let status = status.borrow().clone();
        json!({
            "leader": status.leader,
            "last_success": status.last_success.map(|t| t.to_rfc3339()),
            "last_written": status.last_written.map(|t| t.to_rfc3339()),
            "last_seq": status.last_seq,
            "consecutive_failures": status.consecutive_failures,
            "error": status.last_error,
        })
    });
    let ready = store_ok && rack_ok && audit_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {"store": store, "rack": rack, "audit_writer": audit, "audit_anchors": anchors},
    });
    (status, Json(body))
}

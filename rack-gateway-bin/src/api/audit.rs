//! `GET /api/v1/audit-logs`, `/api/v1/audit-logs/export` and `/api/v1/audit/verify`.
//!
//! All need `gateway:audit_log:read` (checked by the API's route table), and every call is
//! recorded (`audit.list`, `audit.export`, `audit.verify`) with its filters in the details.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rack_gateway_core::audit::{AuditDecision, AuditRecord};
use rack_gateway_core::store::AuditFilter;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState, Caller};
use crate::audit::{export as export_stream, parse_time, verify_chain, ExportFormat};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// Filters of the listing and the export.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    decision: Option<String>,
    status: Option<u16>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<u64>,
    limit: Option<usize>,
    format: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let texts = [
            &self.actor,
            &self.action,
            &self.since,
            &self.until,
            &self.decision,
        ];
        if texts.iter().any(|t| {
            t.as_deref()
                .is_some_and(|t| t.contains('\0') || t.len() > 512)
        }) {
            return Err(ApiError::bad_request(
                "filters must be text without NUL, at most 512 bytes",
            ));
        }
        let time = |raw: &Option<String>| {
            raw.as_deref()
                .map(parse_time)
                .transpose()
                .map_err(ApiError::bad_request)
        };
        Ok(AuditFilter {
            actor: self.actor.clone().filter(|s| !s.is_empty()),
            action: self.action.clone().filter(|s| !s.is_empty()),
            decision: match self.decision.as_deref() {
                None | Some("") => None,
                Some(text) => Some(AuditDecision::parse(text).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown decision {text:?} (allow, deny or error)"
                    ))
                })?),
            },
            status: self.status,
            since: time(&self.since)?,
            until: time(&self.until)?,
            cursor: self.cursor,
            oldest_first: false,
        })
    }

    /// The filters, for the call's record.
    fn details(&self) -> serde_json::Value {
        json!({
            "actor": self.actor, "action": self.action, "decision": self.decision,
            "status": self.status, "since": self.since, "until": self.until,
            "cursor": self.cursor, "format": self.format,
        })
    }
}

/// `GET /api/v1/audit-logs`: newest first, keyset pagination with `cursor`.
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    caller.details(query.details());
    let filter = query.filter()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let rows: Vec<AuditRecord> = state
        .store
        .audit_query(&filter, limit)
        .await
        .map_err(|e| ApiError::unavailable("audit store", &e))?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({"logs": rows, "next_cursor": next_cursor})))
}

/// `GET /api/v1/audit-logs/export?format=jsonl|csv&since&until`: streamed, oldest first.
pub(super) async fn export(
    State(state): State<ApiState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    caller.details(query.details());
    let format: ExportFormat = query
        .format
        .as_deref()
        .unwrap_or("jsonl")
        .parse()
        .map_err(ApiError::bad_request)?;
    let filter = query.filter()?;
    let (content_type, extension) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let stream = export_stream(state.store.clone(), filter.since, filter.until, format);
    let disposition = format!(
        "attachment; filename=\"audit-{}.{extension}\"",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `GET /api/v1/audit/verify`: 200 when intact, 409 when tampering was found.
pub(super) async fn verify(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let anchors = match &state.anchors {
        Some(verifier) => Some(
            verifier
                .check(state.store.as_ref())
                .await
                .map_err(|e| ApiError::unavailable("audit anchors", &e))?,
        ),
        None => None,
    };
    let report = verify_chain(state.store.as_ref(), &state.keyring, anchors.as_ref())
        .await
        .map_err(|e| ApiError::unavailable("audit store", &e))?;
    let status = if report.intact {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    caller.details(json!({
        "intact": report.intact,
        "first_bad_seq": report.first_bad_seq,
    }));
    Ok((status, Json(report)).into_response())
}

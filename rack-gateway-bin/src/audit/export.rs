//! Streaming the audit log as JSON Lines or CSV, oldest first, with no row cap.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::Stream;
use rack_gateway_core::audit::{encode, AuditRecord};
use rack_gateway_core::store::{AuditFilter, Store, StoreError};

/// Rows fetched per round trip.
const PAGE: usize = 2_000;

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, every column (MACs in hex).
    Jsonl,
    /// A header row, then one row per record (cells that could start a formula are prefixed `'`).
    Csv,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" | "json" | "ndjson" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(format!("unknown format {other:?} (expected jsonl or csv)")),
        }
    }
}

/// Parses RFC 3339 (`2026-01-02T03:04:05Z`) or a date (`2026-01-02`, midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!(
                "invalid time {text:?}: use RFC 3339 (2026-01-02T03:04:05Z) or a date (2026-01-02)"
            )
        })
}

const CSV_COLUMNS: &str = "seq,recorded_at,request_id,actor_kind,actor_email,actor_name,token_id,token_name,client_ip,user_agent,action,phase,resource,method,path,decision,reason,http_status,latency_ms,details,key_id,prev_mac,mac\n";

/// The export as a stream of chunks; each chunk is one page of rows.
pub fn export(
    store: Arc<dyn Store>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    format: ExportFormat,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send {
    struct Cursor {
        store: Arc<dyn Store>,
        filter: AuditFilter,
        header: bool,
        done: bool,
    }
    let start = Cursor {
        store,
        filter: AuditFilter {
            since,
            until,
            oldest_first: true,
            ..AuditFilter::default()
        },
        header: format == ExportFormat::Csv,
        done: false,
    };
    futures_util::stream::unfold(start, move |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let rows = match cursor.store.audit_query(&cursor.filter, PAGE).await {
            Ok(rows) => rows,
            Err(error) => {
                cursor.done = true;
                return Some((Err(error), cursor));
            }
        };
        let mut out = String::with_capacity(rows.len() * 400);
        if std::mem::take(&mut cursor.header) {
            out.push_str(CSV_COLUMNS);
        }
        for row in &rows {
            match format {
                ExportFormat::Jsonl => {
                    out.push_str(&serde_json::to_string(row).unwrap_or_default());
                    out.push('\n');
                }
                ExportFormat::Csv => csv_row(&mut out, row),
            }
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => cursor.filter.cursor = Some(last.seq),
            _ => cursor.done = true,
        }
        if out.is_empty() {
            return None;
        }
        Some((Ok(Bytes::from(out)), cursor))
    })
}

fn csv_row(out: &mut String, row: &AuditRecord) {
    let e = &row.event;
    let cells: [std::borrow::Cow<'_, str>; 23] = [
        row.seq.to_string().into(),
        encode::timestamp(&row.recorded_at).into(),
        e.request_id.as_str().into(),
        e.actor_kind.as_str().into(),
        e.actor_email.as_str().into(),
        e.actor_name.as_str().into(),
        e.token_id.as_deref().unwrap_or_default().into(),
        e.token_name.as_deref().unwrap_or_default().into(),
        e.client_ip.as_deref().unwrap_or_default().into(),
        e.user_agent.as_deref().unwrap_or_default().into(),
        e.action.as_str().into(),
        e.phase.as_str().into(),
        e.resource.as_deref().unwrap_or_default().into(),
        e.method.as_deref().unwrap_or_default().into(),
        e.path.as_deref().unwrap_or_default().into(),
        e.decision.as_str().into(),
        e.reason.as_str().into(),
        e.http_status.to_string().into(),
        e.latency_ms.to_string().into(),
        e.details.as_str().into(),
        row.key_id.as_str().into(),
        encode::hex(&row.prev_mac).into(),
        encode::hex(&row.mac).into(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(out, cell);
    }
    out.push('\n');
}

/// Quotes when needed, and defuses spreadsheet formulas (`=`, `+`, `-`, `@`, tab, CR).
fn csv_cell(out: &mut String, cell: &str) {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || cell.contains([',', '"', '\n', '\r']);
    if !quote {
        out.push_str(cell);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    out.push_str(&cell.replace('"', "\"\""));
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        for cell in [
            "plain",
            "a,b",
            "say \"hi\"",
            "=SUM(A1)",
            "-1",
            "line\nbreak",
        ] {
            csv_cell(&mut out, cell);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"'=SUM(A1)\"|\"'-1\"|\"line\nbreak\"|"
        );
    }

    #[test]
    fn times_parse_as_rfc3339_or_dates() {
        assert_eq!(
            parse_time("2026-01-02").unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        assert!(parse_time("2026-01-02T03:04:05+02:00").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}

//! An [`AuditSink`] over a JSON-lines file: one sealed record per line, oldest first.
//!
//! Appending reads the head (the last line), seals the batch after it with [`seal`] and appends
//! the lines, all under one mutex: that is the chain lock, so two batches never claim the same
//! seqs. It serialises appenders within this process only; several processes sharing the file
//! would need a file lock instead.
//!
//! A line is an [`AuditRecord`] as its `Serialize` writes it (the event's fields at the top
//! level, MACs in hex). The core verifier checks these records like any others; `rack-gateway
//! audit verify` cannot read them, since it reads the gateway's own stores.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rack_gateway_core::audit::encode::unhex32;
use rack_gateway_core::audit::{
    seal, ActorKind, AuditDecision, AuditEvent, AuditRecord, AuditSink, ChainHead, ChainKey, Phase,
};
use rack_gateway_core::store::StoreError;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

/// The chain in one file.
pub(crate) struct JsonLinesChain {
    path: PathBuf,
    /// Held from reading the head until the batch is written and synced.
    lock: Mutex<()>,
}

impl JsonLinesChain {
    pub(crate) fn new(path: PathBuf) -> Self {
        JsonLinesChain {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Every record in the file, oldest first.
    pub(crate) async fn read_all(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(unavailable(error)),
        };
        text.lines().map(parse_line).collect()
    }
}

#[async_trait]
impl AuditSink for JsonLinesChain {
    async fn append_audit(
        &self,
        key: &ChainKey,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let _chain = self.lock.lock().await;
        // Reading the whole file for its last line keeps the example short; a real sink would
        // remember the head it last wrote.
        let head = match self.read_all().await?.last() {
            Some(newest) => ChainHead {
                seq: newest.seq,
                mac: newest.mac,
            },
            None => ChainHead::genesis(),
        };
        let sealed = seal(head, key, Utc::now(), events);
        let mut lines = String::new();
        for record in &sealed {
            let line = serde_json::to_string(record)
                .map_err(|e| StoreError::Unavailable(format!("encoding a record: {e}")))?;
            lines.push_str(&line);
            lines.push('\n');
        }
        // One write for the batch, synced before the writer hears that it is durable. A crash
        // in the middle leaves a torn last line, which the next read reports as corrupt.
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(unavailable)?;
        file.write_all(lines.as_bytes())
            .await
            .map_err(unavailable)?;
        file.sync_data().await.map_err(unavailable)?;
        Ok(sealed)
    }

    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        let _chain = self.lock.lock().await;
        Ok(self.read_all().await?.pop())
    }
}

fn unavailable(error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("audit file: {error}"))
}

/// One line as [`AuditRecord`]'s `Serialize` writes it. The core types are not `Deserialize`,
/// so reading them back is spelled out here, field by field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    recorded_at: DateTime<Utc>,
    request_id: String,
    actor_kind: String,
    actor_email: String,
    actor_name: String,
    token_id: Option<String>,
    token_name: Option<String>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    action: String,
    phase: String,
    resource: Option<String>,
    method: Option<String>,
    path: Option<String>,
    decision: String,
    reason: String,
    http_status: u16,
    latency_ms: u64,
    details: String,
    key_id: String,
    prev_mac: String,
    mac: String,
}

fn parse_line(text: &str) -> Result<AuditRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("audit line: {what}"));
    let line: Line = serde_json::from_str(text).map_err(|e| corrupt(&e.to_string()))?;
    Ok(AuditRecord {
        seq: line.seq,
        recorded_at: line.recorded_at,
        event: AuditEvent {
            request_id: line.request_id,
            actor_kind: ActorKind::parse(&line.actor_kind).ok_or_else(|| corrupt("actor_kind"))?,
            actor_email: line.actor_email,
            actor_name: line.actor_name,
            token_id: line.token_id,
            token_name: line.token_name,
            client_ip: line.client_ip,
            user_agent: line.user_agent,
            action: line.action,
            phase: Phase::parse(&line.phase).ok_or_else(|| corrupt("phase"))?,
            resource: line.resource,
            method: line.method,
            path: line.path,
            decision: AuditDecision::parse(&line.decision).ok_or_else(|| corrupt("decision"))?,
            reason: line.reason,
            http_status: line.http_status,
            latency_ms: line.latency_ms,
            details: line.details,
        },
        key_id: line.key_id,
        prev_mac: unhex32(&line.prev_mac).ok_or_else(|| corrupt("prev_mac"))?,
        mac: unhex32(&line.mac).ok_or_else(|| corrupt("mac"))?,
    })
}

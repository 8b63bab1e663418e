//! An [`AuditSink`] over a JSON-lines file: one sealed record per line, oldest first.
//!
//! Appending reads the head (the last line), seals the batch after it with [`seal`] and appends
//! the lines, all under one mutex: that is the chain lock, so two batches never claim the same
//! seqs. It serialises appenders within this process only; several processes sharing the file
//! would need a file lock instead.
//!
//! A line is an [`AuditRecord`] as serde writes and reads it (the event's fields at the top
//! level, MACs in hex). The core verifier checks these records like any others; `rack-gateway
//! audit verify` cannot read them, since it reads the gateway's own stores.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::Utc;
use rack_gateway_core::audit::{seal, AuditEvent, AuditRecord, AuditSink, ChainHead, ChainKey};
use rack_gateway_core::store::StoreError;
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

fn parse_line(text: &str) -> Result<AuditRecord, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("audit line: {e}")))
}

//! The audit chain in SQLite.
//!
//! Appending is one `BEGIN IMMEDIATE` transaction per batch: the write lock it takes up front
//! serialises appenders across processes, the head is read under it, the batch is sealed and
//! inserted with one cached prepared statement, and the commit (fsynced: `synchronous=FULL`)
//! releases it. A failed transaction rolls back and leaves the head where it was.
//!
//! Retention deletes while `audit_prune_guard` holds its row, which it inserts and removes
//! inside its own transaction: the triggers of migration 0002 refuse every other DELETE.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{col, db, micros, now, time, EmbeddedStore};
use crate::audit::{seal, Anchor, AuditEvent, AuditRecord, AuditSink, ChainHead, ChainKey};
use crate::store::audit_codec::{self as codec, QueryParam, AUDIT_COLUMNS};
use crate::store::{AuditFilter, AuditStore, PruneOutcome, StoreError};

/// The longest lease accepted (longer ones are shortened to this).
const LEASE_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// The chain's head: the newest row, else the checkpoint (none: genesis).
const HEAD_SQL: &str = "SELECT seq, mac FROM (SELECT seq, mac FROM audit_events \
     ORDER BY seq DESC LIMIT 1) UNION ALL SELECT seq, mac FROM audit_checkpoint \
     ORDER BY seq DESC LIMIT 1";

const INSERT_SQL: &str = "INSERT INTO audit_events (seq, recorded_at, request_id, actor_kind, \
     actor_email, actor_name, token_id, token_name, client_ip, user_agent, action, phase, \
     resource, method, path, decision, reason, http_status, latency_ms, details, key_id, \
     prev_mac, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
     ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)";

fn text(row: &Row<'_>, index: usize) -> Result<String, StoreError> {
    col(row, index)
}

fn opt_text(row: &Row<'_>, index: usize) -> Result<Option<String>, StoreError> {
    col(row, index)
}

fn blob_mac(row: &Row<'_>, index: usize) -> Result<[u8; 32], StoreError> {
    let value = row
        .get_ref(index)
        .map_err(|e| StoreError::Corrupt(format!("audit column {index}: {e}")))?;
    let bytes = value
        .as_blob()
        .map_err(|e| StoreError::Corrupt(format!("audit column {index}: {e}")))?;
    codec::mac(bytes)
}

/// Decodes a row selected with [`AUDIT_COLUMNS`].
fn record_from_row(row: &Row<'_>) -> Result<AuditRecord, StoreError> {
    let actor_kind: String = text(row, 3)?;
    let phase: String = text(row, 11)?;
    let decision: String = text(row, 15)?;
    Ok(AuditRecord {
        seq: codec::seq(col(row, 0)?)?,
        recorded_at: time(col(row, 1)?)?,
        event: AuditEvent {
            request_id: text(row, 2)?,
            actor_kind: codec::actor_kind(&actor_kind)?,
            actor_email: text(row, 4)?,
            actor_name: text(row, 5)?,
            token_id: opt_text(row, 6)?,
            token_name: opt_text(row, 7)?,
            client_ip: opt_text(row, 8)?,
            user_agent: opt_text(row, 9)?,
            action: text(row, 10)?,
            phase: codec::phase(&phase)?,
            resource: opt_text(row, 12)?,
            method: opt_text(row, 13)?,
            path: opt_text(row, 14)?,
            decision: codec::decision(&decision)?,
            reason: text(row, 16)?,
            http_status: codec::http_status(col(row, 17)?)?,
            latency_ms: codec::latency_ms(col(row, 18)?)?,
            details: text(row, 19)?,
        },
        key_id: text(row, 20)?,
        prev_mac: blob_mac(row, 21)?,
        mac: blob_mac(row, 22)?,
    })
}

fn head_from_row(row: &Row<'_>) -> Result<ChainHead, StoreError> {
    Ok(ChainHead {
        seq: codec::seq(col(row, 0)?)?,
        mac: blob_mac(row, 1)?,
    })
}

/// Runs a query returning at most one head (seq, mac).
fn read_head(conn: &Connection, sql: &str) -> Result<Option<ChainHead>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = statement.query([]).map_err(db)?;
    rows.next().map_err(db)?.map(head_from_row).transpose()
}

fn read_records(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = statement.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(record_from_row(row)?);
    }
    Ok(out)
}

fn insert_records(conn: &Connection, records: &[AuditRecord]) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(INSERT_SQL).map_err(db)?;
    for record in records {
        let event = &record.event;
        // Validated by `codec::storable` and `seal`: seq and latency fit in i64.
        let seq = codec::seq_param(record.seq).unwrap_or(i64::MAX);
        let latency = i64::try_from(event.latency_ms).unwrap_or(i64::MAX);
        insert
            .execute(params![
                seq,
                micros(record.recorded_at),
                event.request_id,
                event.actor_kind.as_str(),
                event.actor_email,
                event.actor_name,
                event.token_id,
                event.token_name,
                event.client_ip,
                event.user_agent,
                event.action,
                event.phase.as_str(),
                event.resource,
                event.method,
                event.path,
                event.decision.as_str(),
                event.reason,
                i64::from(event.http_status),
                latency,
                event.details,
                record.key_id,
                record.prev_mac.as_slice(),
                record.mac.as_slice(),
            ])
            .map_err(db)?;
    }
    Ok(())
}

fn anchor_from_row(row: &Row<'_>) -> Result<(String, Anchor), StoreError> {
    let body: String = col(row, 1)?;
    let anchor = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("audit anchor: {e}")))?;
    Ok((col(row, 0)?, anchor))
}

fn read_anchors(conn: &Connection, sql: &str) -> Result<Vec<(String, Anchor)>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = statement.query([]).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(anchor_from_row(row)?);
    }
    Ok(out)
}

/// Deletes the prunable prefix and moves the checkpoint, inside `tx`.
fn prune(
    tx: &rusqlite::Transaction<'_>,
    up_to: i64,
    before: i64,
) -> Result<PruneOutcome, StoreError> {
    let checkpoint = read_head(tx, "SELECT seq, mac FROM audit_checkpoint")?;
    let first_kept: Option<i64> = tx
        .query_row(
            "SELECT seq FROM audit_events WHERE seq <= ?1 AND recorded_at >= ?2 \
             ORDER BY seq LIMIT 1",
            params![up_to, before],
            |row| row.get(0),
        )
        .optional()
        .map_err(db)?;
    let (oldest, newest): (Option<i64>, Option<i64>) = tx
        .query_row("SELECT min(seq), max(seq) FROM audit_events", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map_err(db)?;
    let Some(plan) = codec::prune_plan(up_to, first_kept, oldest, newest) else {
        return Ok(PruneOutcome {
            deleted: 0,
            checkpoint,
        });
    };
    let expected_first = codec::expected_chain_start(checkpoint, oldest)?;
    let last_mac: Vec<u8> = tx
        .query_row(
            "SELECT mac FROM audit_events WHERE seq = ?1",
            [plan.last_seq],
            |row| row.get(0),
        )
        .map_err(db)?;
    let new_checkpoint = ChainHead {
        seq: codec::seq(plan.last_seq)?,
        mac: codec::mac(&last_mac)?,
    };
    tx.execute("INSERT INTO audit_prune_guard (id) VALUES (1)", [])
        .map_err(db)?;
    let deleted = tx
        .execute("DELETE FROM audit_events WHERE seq <= ?1", [plan.last_seq])
        .map_err(db)?;
    let deleted = u64::try_from(deleted).unwrap_or(u64::MAX);
    if deleted != new_checkpoint.seq - expected_first + 1 {
        return Err(StoreError::Corrupt(format!(
            "audit rows {expected_first}..={} have gaps: refusing to prune",
            new_checkpoint.seq
        )));
    }
    let mac = new_checkpoint.mac.as_slice();
    let moved = tx
        .execute(
            "UPDATE audit_checkpoint SET seq = ?1, mac = ?2, pruned_at = ?3",
            params![plan.last_seq, mac, now()],
        )
        .map_err(db)?;
    if moved == 0 {
        tx.execute(
            "INSERT INTO audit_checkpoint (seq, mac, pruned_at) VALUES (?1, ?2, ?3)",
            params![plan.last_seq, mac, now()],
        )
        .map_err(db)?;
    }
    tx.execute("DELETE FROM audit_prune_guard", [])
        .map_err(db)?;
    Ok(PruneOutcome {
        deleted,
        checkpoint: Some(new_checkpoint),
    })
}

#[async_trait]
impl AuditSink for EmbeddedStore {
    async fn append_audit(
        &self,
        key: &ChainKey,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let events: Vec<AuditEvent> = events.into_iter().map(codec::storable).collect();
        let key = key.clone();
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let head = read_head(&tx, HEAD_SQL)?.unwrap_or_else(ChainHead::genesis);
            let records = seal(head, &key, Utc::now(), events);
            insert_records(&tx, &records)?;
            tx.commit().map_err(db)?;
            Ok(records)
        })
        .await
    }

    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        self.call(|conn| {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events ORDER BY seq DESC LIMIT 1");
            Ok(read_records(conn, &sql, [])?.into_iter().next())
        })
        .await
    }
}

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn audit_start(&self) -> Result<ChainHead, StoreError> {
        self.call(|conn| {
            Ok(read_head(conn, "SELECT seq, mac FROM audit_checkpoint")?
                .unwrap_or_else(ChainHead::genesis))
        })
        .await
    }

    async fn audit_range(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let Some(from) = codec::seq_param(from_seq) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = codec::limit_param(limit);
        self.call(move |conn| {
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            );
            read_records(conn, &sql, params![from, limit])
        })
        .await
    }

    async fn audit_query(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some((sql, params)) = codec::query_sql(filter, limit, |n| format!("?{n}")) else {
            return Ok(Vec::new());
        };
        let values: Vec<Value> = params
            .into_iter()
            .map(|param| match param {
                QueryParam::Text(value) => Value::Text(value),
                QueryParam::Status(value) => Value::Integer(i64::from(value)),
                QueryParam::Int(value) => Value::Integer(value),
                QueryParam::Time(value) => Value::Integer(micros(value)),
            })
            .collect();
        self.call(move |conn| read_records(conn, &sql, params_from_iter(values)))
            .await
    }

    async fn prune_audit(
        &self,
        up_to_seq: u64,
        before: DateTime<Utc>,
    ) -> Result<PruneOutcome, StoreError> {
        let up_to = codec::seq_param(up_to_seq).unwrap_or(i64::MAX);
        let before = micros(before);
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let outcome = prune(&tx, up_to, before)?;
            tx.commit().map_err(db)?;
            Ok(outcome)
        })
        .await
    }

    async fn record_anchor(&self, object_key: &str, anchor: &Anchor) -> Result<(), StoreError> {
        let body = serde_json::to_string(anchor)
            .map_err(|e| StoreError::Corrupt(format!("encoding anchor: {e}")))?;
        let seq = codec::seq_param(anchor.seq).ok_or_else(|| StoreError::Invalid {
            field: "seq",
            reason: "out of range".into(),
        })?;
        let object_key = object_key.to_owned();
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            tx.execute(
                "INSERT INTO audit_anchors (object_key, seq, body, written_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (object_key) DO NOTHING",
                params![object_key, seq, body, now()],
            )
            .map_err(db)?;
            let stored: String = tx
                .query_row(
                    "SELECT body FROM audit_anchors WHERE object_key = ?1",
                    [&object_key],
                    |row| row.get(0),
                )
                .map_err(db)?;
            tx.commit().map_err(db)?;
            // Recording the same anchor again is a no-op; a different body under the key is not.
            if stored == body {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!("anchor {object_key}")))
            }
        })
        .await
    }

    async fn latest_anchor(&self) -> Result<Option<(String, Anchor)>, StoreError> {
        self.call(|conn| {
            let sql = "SELECT object_key, body FROM audit_anchors \
                       ORDER BY seq DESC, written_at DESC, object_key DESC LIMIT 1";
            Ok(read_anchors(conn, sql)?.into_iter().next())
        })
        .await
    }

    async fn list_anchors(&self) -> Result<Vec<(String, Anchor)>, StoreError> {
        self.call(|conn| {
            read_anchors(
                conn,
                "SELECT object_key, body FROM audit_anchors ORDER BY seq, written_at, object_key",
            )
        })
        .await
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl = i64::try_from(ttl.min(LEASE_MAX).as_micros()).unwrap_or(i64::MAX);
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.call(move |conn| {
            let at = now();
            let taken: Option<String> = conn
                .query_row(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4) \
                     ON CONFLICT (name) DO UPDATE \
                         SET holder = excluded.holder, expires_at = excluded.expires_at \
                         WHERE leases.expires_at <= ?3 OR leases.holder = excluded.holder \
                     RETURNING holder",
                    params![name, holder, at, at.saturating_add(ttl)],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db)?;
            Ok(taken.is_some())
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.call(move |conn| {
            conn.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map(drop)
            .map_err(db)
        })
        .await
    }
}

//! Sessions in PostgreSQL.
//!
//! Triggers of migration 0004 notify the identity channel on every insert, delete and update of
//! `sessions` except an update of `last_seen_at` alone, so a revocation reaches every instance
//! as soon as it commits (see `feed.rs`) while recording a use flushes nobody's cache.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{get, pg_error, PostgresStore};
use crate::identity::{NewSession, Session, SessionEnd, SessionKind, SessionLimits, TokenHash};
use crate::store::session_codec as codec;
use crate::store::StoreError;

const COLUMNS: &str = "id, public_id, user_id, kind, created_at, last_seen_at, revoked_at, \
     revoked_reason, ip, user_agent, device_name";

fn session_from_row(row: &Row) -> Result<Session, StoreError> {
    Ok(Session {
        id: get(row, "id")?,
        public_id: get(row, "public_id")?,
        user_id: get(row, "user_id")?,
        kind: codec::session_kind(get(row, "kind")?)?,
        created_at: get(row, "created_at")?,
        last_seen_at: get(row, "last_seen_at")?,
        revoked_at: get(row, "revoked_at")?,
        revoked_reason: get(row, "revoked_reason")?,
        ip: get::<Option<IpAddr>>(row, "ip")?,
        user_agent: get(row, "user_agent")?,
        device_name: get(row, "device_name")?,
    })
}

/// Ends the sessions of `kind` past a limit at `now` inside `tx`, returning them.
async fn expire_kind(
    tx: &deadpool_postgres::Transaction<'_>,
    limits: &SessionLimits,
    kind: SessionKind,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    let (absolute_cutoff, idle_cutoff) = limits.cutoffs(kind, now);
    // The absolute limit came first when created_at + absolute <= last_seen_at + idle, that is
    // created_at - absolute_cutoff <= last_seen_at - idle_cutoff.
    let sql = format!(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = \
             CASE WHEN created_at - $3::timestamptz <= last_seen_at - $4::timestamptz \
                  THEN $5::text ELSE $6::text END \
         WHERE revoked_at IS NULL AND kind = $2 \
           AND (created_at <= $3::timestamptz OR last_seen_at <= $4::timestamptz) \
         RETURNING {COLUMNS}"
    );
    let params: [&(dyn ToSql + Sync); 6] = [
        &now,
        &kind.as_str(),
        &absolute_cutoff,
        &idle_cutoff,
        &SessionEnd::ABSOLUTE_REASON,
        &SessionEnd::IDLE_REASON,
    ];
    tx.query(sql.as_str(), &params)
        .await
        .map_err(|e| pg_error(e, ""))?
        .iter()
        .map(session_from_row)
        .collect()
}

impl PostgresStore {
    async fn one_session(
        &self,
        clause: &str,
        key: &(dyn ToSql + Sync),
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE {clause}");
        let rows = self.query(&sql, &[key], "").await?;
        rows.first().map(session_from_row).transpose()
    }

    /// See [`Store::insert_session`](crate::store::Store::insert_session).
    pub(super) async fn add_session(&self, session: &NewSession) -> Result<Session, StoreError> {
        let checked = codec::check_session(session)?;
        let public_id = Uuid::new_v4();
        let sql = format!(
            "INSERT INTO sessions (public_id, user_id, token_hash, kind, ip, user_agent, \
             device_name) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        );
        let params: [&(dyn ToSql + Sync); 7] = [
            &public_id,
            &session.user_id,
            &checked.hash_hex,
            &checked.kind,
            &session.ip,
            &checked.user_agent,
            &checked.device_name,
        ];
        let rows = self
            .query(&sql, &params, "session with this hash")
            .await
            .map_err(codec::user_reference)?;
        rows.first()
            .map(session_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::Unavailable("insert returned no row".into()))
    }

    /// The session with this token hash, ended or not.
    pub(super) async fn find_session_by_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        self.one_session("token_hash = $1", &hash.to_hex()).await
    }

    /// The session with this public id, ended or not.
    pub(super) async fn find_session(
        &self,
        public_id: Uuid,
    ) -> Result<Option<Session>, StoreError> {
        self.one_session("public_id = $1", &public_id).await
    }

    /// The user's sessions not revoked, newest first.
    pub(super) async fn user_sessions(&self, user_id: i64) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC, id DESC"
        );
        self.query(&sql, &[&user_id], "")
            .await?
            .iter()
            .map(session_from_row)
            .collect()
    }

    /// Moves a session's `last_seen_at` forward to `at` (never back, never on an ended one).
    pub(super) async fn record_session_use(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE sessions SET last_seen_at = $2 \
                   WHERE id = $1 AND last_seen_at < $2 AND revoked_at IS NULL";
        self.execute(sql, &[&id, &at]).await.map(drop)
    }

    /// Ends the sessions matching `clause` (over `$1`) that have not ended; how many.
    async fn end_sessions_where(
        &self,
        clause: &str,
        key: &(dyn ToSql + Sync),
        reason: &str,
    ) -> Result<u64, StoreError> {
        codec::check_revoke_reason(reason)?;
        let sql = format!(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 \
             WHERE {clause} AND revoked_at IS NULL"
        );
        self.execute(&sql, &[key, &reason]).await
    }

    /// Ends the session with this store id; false when it had ended or does not exist.
    pub(super) async fn end_session_by_id(
        &self,
        id: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.end_sessions_where("id = $1", &id, reason).await? > 0)
    }

    /// Ends the session with this public id; false when it had ended or does not exist.
    pub(super) async fn end_session_by_public_id(
        &self,
        public_id: Uuid,
        reason: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .end_sessions_where("public_id = $1", &public_id, reason)
            .await?
            > 0)
    }

    /// Ends every session of the user; how many.
    pub(super) async fn end_user_sessions(
        &self,
        user_id: i64,
        reason: &str,
    ) -> Result<u64, StoreError> {
        self.end_sessions_where("user_id = $1", &user_id, reason)
            .await
    }

    /// Ends every session past a limit at `now`, in one transaction; oldest first.
    pub(super) async fn sweep_sessions(
        &self,
        limits: &SessionLimits,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(e, ""))?;
        let mut ended = expire_kind(&tx, limits, SessionKind::Web, now).await?;
        ended.extend(expire_kind(&tx, limits, SessionKind::Cli, now).await?);
        tx.commit().await.map_err(|e| pg_error(e, ""))?;
        ended.sort_by_key(|session| session.id);
        Ok(ended)
    }
}

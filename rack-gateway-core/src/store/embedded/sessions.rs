//! Sessions in SQLite.
//!
//! Triggers of migration 0004 bump `identity_generation` on every insert, delete and update of
//! `sessions` except an update of `last_seen_at` alone, so a revocation reaches every watcher
//! within one poll (see `feed.rs`) while recording a use does not flush anyone's cache.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Params, Row, TransactionBehavior};
use uuid::Uuid;

use super::{col, db, micros, now, query_list, sqlite_error, time, EmbeddedStore};
use crate::identity::{NewSession, Session, SessionEnd, SessionKind, SessionLimits, TokenHash};
use crate::store::session_codec as codec;
use crate::store::StoreError;

const COLUMNS: &str = "id, public_id, user_id, kind, created_at, last_seen_at, revoked_at, \
     revoked_reason, ip, user_agent, device_name";

fn session_from_row(row: &Row<'_>) -> Result<Session, StoreError> {
    let public_id: String = col(row, 1)?;
    let kind: String = col(row, 3)?;
    let revoked_at: Option<i64> = col(row, 6)?;
    let ip: Option<String> = col(row, 8)?;
    Ok(Session {
        id: col(row, 0)?,
        public_id: Uuid::parse_str(&public_id)
            .map_err(|e| StoreError::Corrupt(format!("session public id: {e}")))?,
        user_id: col(row, 2)?,
        kind: codec::session_kind(&kind)?,
        created_at: time(col(row, 4)?)?,
        last_seen_at: time(col(row, 5)?)?,
        revoked_at: revoked_at.map(time).transpose()?,
        revoked_reason: col(row, 7)?,
        ip: ip.as_deref().map(codec::ip).transpose()?,
        user_agent: col(row, 9)?,
        device_name: col(row, 10)?,
    })
}

fn session_where(
    conn: &Connection,
    clause: &str,
    key: impl Params,
) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE {clause}");
    Ok(query_list(conn, &sql, key, session_from_row)?
        .into_iter()
        .next())
}

/// Ends the sessions of `kind` past a limit at `now`, returning them.
fn expire_kind(
    conn: &Connection,
    limits: &SessionLimits,
    kind: SessionKind,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    let (absolute_cutoff, idle_cutoff) = limits.cutoffs(kind, now);
    // The absolute limit came first when created_at + absolute <= last_seen_at + idle, that is
    // created_at - absolute_cutoff <= last_seen_at - idle_cutoff.
    let sql = format!(
        "UPDATE sessions SET revoked_at = ?1, revoked_reason = \
             CASE WHEN created_at - ?3 <= last_seen_at - ?4 THEN ?5 ELSE ?6 END \
         WHERE revoked_at IS NULL AND kind = ?2 AND (created_at <= ?3 OR last_seen_at <= ?4) \
         RETURNING {COLUMNS}"
    );
    query_list(
        conn,
        &sql,
        params![
            micros(now),
            kind.as_str(),
            micros(absolute_cutoff),
            micros(idle_cutoff),
            SessionEnd::ABSOLUTE_REASON,
            SessionEnd::IDLE_REASON,
        ],
        session_from_row,
    )
}

impl EmbeddedStore {
    /// See [`Store::insert_session`](crate::store::Store::insert_session).
    pub(super) async fn add_session(&self, session: &NewSession) -> Result<Session, StoreError> {
        let checked = codec::check_session(session)?;
        let public_id = Uuid::new_v4().to_string();
        let user_id = session.user_id;
        let ip = session.ip.map(|ip| ip.to_string());
        self.call(move |conn| {
            let at = now();
            conn.execute(
                "INSERT INTO sessions (public_id, user_id, token_hash, kind, created_at, \
                 last_seen_at, ip, user_agent, device_name) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)",
                params![
                    public_id,
                    user_id,
                    checked.hash_hex,
                    checked.kind,
                    at,
                    ip,
                    checked.user_agent,
                    checked.device_name,
                ],
            )
            .map_err(|e| codec::user_reference(sqlite_error(e, "session with this hash")))?;
            session_where(conn, "id = ?1", [conn.last_insert_rowid()])?
                .ok_or_else(|| StoreError::Unavailable("inserted session vanished".into()))
        })
        .await
    }

    /// The session with this token hash, ended or not.
    pub(super) async fn find_session_by_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        let hex = hash.to_hex();
        self.call(move |conn| session_where(conn, "token_hash = ?1", [hex]))
            .await
    }

    /// The session with this public id, ended or not.
    pub(super) async fn find_session(
        &self,
        public_id: Uuid,
    ) -> Result<Option<Session>, StoreError> {
        let public_id = public_id.to_string();
        self.call(move |conn| session_where(conn, "public_id = ?1", [public_id]))
            .await
    }

    /// The user's sessions not revoked, newest first.
    pub(super) async fn user_sessions(&self, user_id: i64) -> Result<Vec<Session>, StoreError> {
        self.call(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL \
                 ORDER BY created_at DESC, id DESC"
            );
            query_list(conn, &sql, [user_id], session_from_row)
        })
        .await
    }

    /// Moves a session's `last_seen_at` forward to `at` (never back, never on an ended one).
    pub(super) async fn record_session_use(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = micros(at);
        self.call(move |conn| {
            conn.execute(
                "UPDATE sessions SET last_seen_at = ?2 \
                 WHERE id = ?1 AND last_seen_at < ?2 AND revoked_at IS NULL",
                params![id, at],
            )
            .map(drop)
            .map_err(db)
        })
        .await
    }

    /// Ends the sessions matching `clause` (over `?1`) that have not ended; how many.
    async fn end_sessions_where(
        &self,
        clause: &'static str,
        key: rusqlite::types::Value,
        reason: &str,
    ) -> Result<u64, StoreError> {
        codec::check_revoke_reason(reason)?;
        let reason = reason.to_owned();
        self.call(move |conn| {
            let sql = format!(
                "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 \
                 WHERE {clause} AND revoked_at IS NULL"
            );
            let ended = conn
                .execute(&sql, params![key, now(), reason])
                .map_err(db)?;
            Ok(u64::try_from(ended).unwrap_or(u64::MAX))
        })
        .await
    }

    /// Ends the session with this store id; false when it had ended or does not exist.
    pub(super) async fn end_session_by_id(
        &self,
        id: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .end_sessions_where("id = ?1", id.into(), reason)
            .await?
            > 0)
    }

    /// Ends the session with this public id; false when it had ended or does not exist.
    pub(super) async fn end_session_by_public_id(
        &self,
        public_id: Uuid,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let key = public_id.to_string().into();
        Ok(self
            .end_sessions_where("public_id = ?1", key, reason)
            .await?
            > 0)
    }

    /// Ends every session of the user; how many.
    pub(super) async fn end_user_sessions(
        &self,
        user_id: i64,
        reason: &str,
    ) -> Result<u64, StoreError> {
        self.end_sessions_where("user_id = ?1", user_id.into(), reason)
            .await
    }

    /// Ends every session past a limit at `now`, in one transaction; oldest first.
    pub(super) async fn sweep_sessions(
        &self,
        limits: &SessionLimits,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let limits = *limits;
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let mut ended = expire_kind(&tx, &limits, SessionKind::Web, now)?;
            ended.extend(expire_kind(&tx, &limits, SessionKind::Cli, now)?);
            tx.commit().map_err(db)?;
            ended.sort_by_key(|session| session.id);
            Ok(ended)
        })
        .await
    }
}

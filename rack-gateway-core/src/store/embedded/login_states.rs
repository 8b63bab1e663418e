//! Sign-ins in progress in SQLite.
//!
//! Single use comes from SQLite itself: consuming is one `UPDATE … WHERE consumed_at IS NULL
//! RETURNING`, and taking a CLI result one `DELETE … RETURNING`; writers are serialised by the
//! database's write lock, across processes too, so of two racing callers exactly one changes
//! the row. The other then reads what is left to say why it lost.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::{col, db, micros, now, opt_time, query_list, sqlite_error, time, EmbeddedStore};
use crate::identity::{
    CliLoginPoll, LoginKind, LoginState, LoginStateUse, NewLoginState, TokenHash,
};
use crate::store::session_codec as codec;
use crate::store::StoreError;

const COLUMNS: &str = "state_hash, kind, browser_hash, return_to, device_name, created_at, \
     expires_at, consumed_at, user_id, error";

fn state_from_row(row: &Row<'_>) -> Result<LoginState, StoreError> {
    let state_hash: String = col(row, 0)?;
    let kind: String = col(row, 1)?;
    let browser_hash: Option<String> = col(row, 2)?;
    Ok(LoginState {
        state_hash: codec::hash(&state_hash, "login state hash")?,
        kind: codec::login_kind(&kind)?,
        browser_hash: browser_hash
            .as_deref()
            .map(|hex| codec::hash(hex, "login browser hash"))
            .transpose()?,
        return_to: col(row, 3)?,
        device_name: col(row, 4)?,
        created_at: time(col(row, 5)?)?,
        expires_at: time(col(row, 6)?)?,
        consumed_at: opt_time(col(row, 7)?)?,
        user_id: col(row, 8)?,
        error: col(row, 9)?,
    })
}

impl EmbeddedStore {
    /// See [`Store::insert_login_state`](crate::store::Store::insert_login_state).
    pub(super) async fn add_login_state(&self, state: &NewLoginState) -> Result<(), StoreError> {
        codec::check_login_state(state)?;
        let state = state.clone();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO login_states (state_hash, kind, browser_hash, return_to, \
                 device_name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    state.state_hash.to_hex(),
                    state.kind.as_str(),
                    state.browser_hash.map(|hash| hash.to_hex()),
                    state.return_to,
                    state.device_name,
                    now(),
                    micros(state.expires_at),
                ],
            )
            .map(drop)
            .map_err(|e| sqlite_error(e, "login state"))
        })
        .await
    }

    /// See [`Store::consume_login_state`](crate::store::Store::consume_login_state).
    pub(super) async fn use_login_state(
        &self,
        state_hash: &TokenHash,
        kind: LoginKind,
        at: DateTime<Utc>,
    ) -> Result<LoginStateUse, StoreError> {
        let hex = state_hash.to_hex();
        self.call(move |conn| {
            let at = micros(at);
            let sql = format!(
                "UPDATE login_states SET consumed_at = ?3 \
                 WHERE state_hash = ?1 AND kind = ?2 AND consumed_at IS NULL AND expires_at > ?3 \
                 RETURNING {COLUMNS}"
            );
            let params = params![hex, kind.as_str(), at];
            if let Some(fresh) = query_list(conn, &sql, params, state_from_row)?.pop() {
                return Ok(LoginStateUse::Fresh(fresh));
            }
            let left: Option<(Option<i64>, i64)> = conn
                .query_row(
                    "SELECT consumed_at, expires_at FROM login_states \
                     WHERE state_hash = ?1 AND kind = ?2",
                    params![hex, kind.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            Ok(match left {
                None => LoginStateUse::Unknown,
                Some((Some(_), _)) => LoginStateUse::AlreadyUsed,
                Some((None, _)) => LoginStateUse::Expired,
            })
        })
        .await
    }

    /// See [`Store::finish_cli_login`](crate::store::Store::finish_cli_login).
    pub(super) async fn record_cli_outcome(
        &self,
        state_hash: &TokenHash,
        outcome: Result<i64, String>,
    ) -> Result<bool, StoreError> {
        if let Err(error) = &outcome {
            codec::check_login_error(error)?;
        }
        let hex = state_hash.to_hex();
        let (user_id, error) = match outcome {
            Ok(user_id) => (Some(user_id), None),
            Err(error) => (None, Some(error)),
        };
        self.call(move |conn| {
            conn.execute(
                "UPDATE login_states SET user_id = ?2, error = ?3 \
                 WHERE state_hash = ?1 AND kind = 'cli' AND consumed_at IS NOT NULL \
                 AND user_id IS NULL AND error IS NULL",
                params![hex, user_id, error],
            )
            .map(|n| n > 0)
            .map_err(|e| codec::user_reference(db(e)))
        })
        .await
    }

    /// See [`Store::take_cli_login`](crate::store::Store::take_cli_login).
    pub(super) async fn poll_cli_login(
        &self,
        state_hash: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<CliLoginPoll, StoreError> {
        let hex = state_hash.to_hex();
        self.call(move |conn| {
            let at = micros(at);
            let taken: Option<(Option<i64>, Option<String>, Option<String>)> = conn
                .query_row(
                    "DELETE FROM login_states WHERE state_hash = ?1 AND kind = 'cli' \
                     AND expires_at > ?2 AND (user_id IS NOT NULL OR error IS NOT NULL) \
                     RETURNING user_id, error, device_name",
                    params![hex, at],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(db)?;
            match taken {
                Some((Some(user_id), _, device_name)) => {
                    return Ok(CliLoginPoll::SignedIn {
                        user_id,
                        device_name,
                    })
                }
                Some((None, Some(error), _)) => return Ok(CliLoginPoll::Refused(error)),
                Some((None, None, _)) => {
                    return Err(StoreError::Corrupt(
                        "CLI sign-in taken without an outcome".into(),
                    ))
                }
                None => {}
            }
            let expires_at: Option<i64> = conn
                .query_row(
                    "SELECT expires_at FROM login_states WHERE state_hash = ?1 AND kind = 'cli'",
                    [&hex],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db)?;
            Ok(match expires_at {
                None => CliLoginPoll::Unknown,
                Some(expires_at) if expires_at <= at => CliLoginPoll::Expired,
                // Pending, or an outcome recorded since the DELETE: the next poll takes it.
                Some(_) => CliLoginPoll::Pending,
            })
        })
        .await
    }

    /// See [`Store::delete_expired_login_states`](crate::store::Store::delete_expired_login_states).
    pub(super) async fn purge_login_states(&self, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let at = micros(at);
        self.call(move |conn| {
            let deleted = conn
                .execute("DELETE FROM login_states WHERE expires_at <= ?1", [at])
                .map_err(db)?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }
}

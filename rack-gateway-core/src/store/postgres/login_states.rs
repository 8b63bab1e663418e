//! Sign-ins in progress in PostgreSQL.
//!
//! Single use comes from row locks: consuming is one `UPDATE … WHERE consumed_at IS NULL
//! RETURNING`, and taking a CLI result one `DELETE … RETURNING`. Of two racing callers the
//! second waits for the first to commit, then re-checks its `WHERE` against the new row (or
//! finds it gone) and changes nothing; it then reads what is left to say why it lost.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{get, PostgresStore};
use crate::identity::{
    CliLoginPoll, LoginKind, LoginState, LoginStateUse, NewLoginState, TokenHash,
};
use crate::store::session_codec as codec;
use crate::store::StoreError;

const COLUMNS: &str = "state_hash, kind, browser_hash, return_to, device_name, created_at, \
     expires_at, consumed_at, user_id, error";

fn state_from_row(row: &Row) -> Result<LoginState, StoreError> {
    let browser_hash: Option<String> = get(row, "browser_hash")?;
    Ok(LoginState {
        state_hash: codec::hash(get(row, "state_hash")?, "login state hash")?,
        kind: codec::login_kind(get(row, "kind")?)?,
        browser_hash: browser_hash
            .as_deref()
            .map(|hex| codec::hash(hex, "login browser hash"))
            .transpose()?,
        return_to: get(row, "return_to")?,
        device_name: get(row, "device_name")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        consumed_at: get(row, "consumed_at")?,
        user_id: get(row, "user_id")?,
        error: get(row, "error")?,
    })
}

impl PostgresStore {
    /// See [`Store::insert_login_state`](crate::store::Store::insert_login_state).
    pub(super) async fn add_login_state(&self, state: &NewLoginState) -> Result<(), StoreError> {
        codec::check_login_state(state)?;
        let sql = "INSERT INTO login_states (state_hash, kind, browser_hash, return_to, \
                   device_name, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
        let params: [&(dyn ToSql + Sync); 6] = [
            &state.state_hash.to_hex(),
            &state.kind.as_str(),
            &state.browser_hash.map(|hash| hash.to_hex()),
            &state.return_to,
            &state.device_name,
            &state.expires_at,
        ];
        self.query(sql, &params, "login state").await.map(drop)
    }

    /// See [`Store::consume_login_state`](crate::store::Store::consume_login_state).
    pub(super) async fn use_login_state(
        &self,
        state_hash: &TokenHash,
        kind: LoginKind,
        at: DateTime<Utc>,
    ) -> Result<LoginStateUse, StoreError> {
        let hex = state_hash.to_hex();
        let sql = format!(
            "UPDATE login_states SET consumed_at = $3 \
             WHERE state_hash = $1 AND kind = $2 AND consumed_at IS NULL AND expires_at > $3 \
             RETURNING {COLUMNS}"
        );
        let rows = self.query(&sql, &[&hex, &kind.as_str(), &at], "").await?;
        if let Some(fresh) = rows.first() {
            return Ok(LoginStateUse::Fresh(state_from_row(fresh)?));
        }
        let sql = "SELECT consumed_at FROM login_states WHERE state_hash = $1 AND kind = $2";
        let rows = self.query(sql, &[&hex, &kind.as_str()], "").await?;
        let Some(left) = rows.first() else {
            return Ok(LoginStateUse::Unknown);
        };
        let consumed_at: Option<DateTime<Utc>> = get(left, "consumed_at")?;
        Ok(match consumed_at {
            Some(_) => LoginStateUse::AlreadyUsed,
            None => LoginStateUse::Expired,
        })
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
        let (user_id, error) = match outcome {
            Ok(user_id) => (Some(user_id), None),
            Err(error) => (None, Some(error)),
        };
        let sql = "UPDATE login_states SET user_id = $2, error = $3 \
                   WHERE state_hash = $1 AND kind = 'cli' AND consumed_at IS NOT NULL \
                   AND user_id IS NULL AND error IS NULL";
        let changed = self
            .execute(sql, &[&state_hash.to_hex(), &user_id, &error])
            .await
            .map_err(codec::user_reference)?;
        Ok(changed > 0)
    }

    /// See [`Store::take_cli_login`](crate::store::Store::take_cli_login).
    pub(super) async fn poll_cli_login(
        &self,
        state_hash: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<CliLoginPoll, StoreError> {
        let hex = state_hash.to_hex();
        let sql = "DELETE FROM login_states WHERE state_hash = $1 AND kind = 'cli' \
                   AND expires_at > $2 AND (user_id IS NOT NULL OR error IS NOT NULL) \
                   RETURNING user_id, error, device_name";
        let rows = self.query(sql, &[&hex, &at], "").await?;
        if let Some(taken) = rows.first() {
            let user_id: Option<i64> = get(taken, "user_id")?;
            let error: Option<String> = get(taken, "error")?;
            let device_name: Option<String> = get(taken, "device_name")?;
            return match (user_id, error) {
                (Some(user_id), _) => Ok(CliLoginPoll::SignedIn {
                    user_id,
                    device_name,
                }),
                (None, Some(error)) => Ok(CliLoginPoll::Refused(error)),
                (None, None) => Err(StoreError::Corrupt(
                    "CLI sign-in taken without an outcome".into(),
                )),
            };
        }
        let sql = "SELECT expires_at FROM login_states WHERE state_hash = $1 AND kind = 'cli'";
        let rows = self.query(sql, &[&hex], "").await?;
        let Some(left) = rows.first() else {
            return Ok(CliLoginPoll::Unknown);
        };
        let expires_at: DateTime<Utc> = get(left, "expires_at")?;
        Ok(if expires_at <= at {
            CliLoginPoll::Expired
        } else {
            // Pending, or an outcome recorded since the DELETE: the next poll takes it.
            CliLoginPoll::Pending
        })
    }

    /// See [`Store::delete_expired_login_states`](crate::store::Store::delete_expired_login_states).
    pub(super) async fn purge_login_states(&self, at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.execute("DELETE FROM login_states WHERE expires_at <= $1", &[&at])
            .await
    }
}

//! Users and API tokens in SQLite, and the `IdentitySource` and `Store` impls (whose session
//! and sign-in methods delegate to `sessions.rs` and `login_states.rs`).
//!
//! Triggers of migration 0001 bump `identity_generation` on every change to `users` and
//! `api_tokens` except an update of `last_used_at` alone; watchers poll it (see `feed.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Params, Row, TransactionBehavior};
use uuid::Uuid;

use super::{col, db, micros, now, opt_time, query_list, sqlite_error, time, EmbeddedStore};
use crate::identity::{
    ApiToken, CliLoginPoll, IdentitySource, LoginKind, LoginStateUse, NewApiToken, NewLoginState,
    NewSession, NewUser, Session, SessionLimits, TokenHash, User,
};
use crate::rbac::Role;
use crate::store::{codec, IdentityWatch, Store, StoreError};

const USER_COLUMNS: &str =
    "id, email, name, roles, locked_at, locked_reason, suspended, created_at, updated_at";
const TOKEN_COLUMNS: &str = "t.id, t.public_id, t.name, t.owner_id, u.email AS owner_email, \
     t.permissions, t.role, t.created_by, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

fn json_list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json(list: &[impl serde::Serialize]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(format!("encoding list: {e}")))
}

fn user_from_row(row: &Row<'_>) -> Result<User, StoreError> {
    let roles: String = col(row, 3)?;
    Ok(User {
        id: col(row, 0)?,
        email: col(row, 1)?,
        name: col(row, 2)?,
        roles: codec::roles_from_names(json_list(&roles, "user roles")?)?,
        locked_at: opt_time(col(row, 4)?)?,
        locked_reason: col(row, 5)?,
        suspended: col(row, 6)?,
        created_at: time(col(row, 7)?)?,
        updated_at: time(col(row, 8)?)?,
    })
}

fn token_from_row(row: &Row<'_>) -> Result<ApiToken, StoreError> {
    let public_id: String = col(row, 1)?;
    let permissions: String = col(row, 5)?;
    Ok(ApiToken {
        id: col(row, 0)?,
        public_id: Uuid::parse_str(&public_id)
            .map_err(|e| StoreError::Corrupt(format!("token public id: {e}")))?,
        name: col(row, 2)?,
        owner_id: col(row, 3)?,
        owner_email: col(row, 4)?,
        permissions: json_list(&permissions, "token permissions")?,
        role: col(row, 6)?,
        created_by: col(row, 7)?,
        created_at: time(col(row, 8)?)?,
        expires_at: opt_time(col(row, 9)?)?,
        last_used_at: opt_time(col(row, 10)?)?,
        revoked_at: opt_time(col(row, 11)?)?,
    })
}

fn user_where(
    conn: &Connection,
    clause: &str,
    key: impl Params,
) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}");
    Ok(query_list(conn, &sql, key, user_from_row)?
        .into_iter()
        .next())
}

fn token_where(
    conn: &Connection,
    clause: &str,
    key: impl Params,
) -> Result<Option<ApiToken>, StoreError> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id \
         WHERE {clause}"
    );
    Ok(query_list(conn, &sql, key, token_from_row)?
        .into_iter()
        .next())
}

/// Updates the user with `email` (after normalising it); false when there is none.
async fn update_user(
    store: &EmbeddedStore,
    email: &str,
    sql: &'static str,
    value: rusqlite::types::Value,
) -> Result<bool, StoreError> {
    let Some(email) = codec::lookup_email(email) else {
        return Ok(false);
    };
    store
        .call(move |conn| {
            conn.execute(sql, params![email, value, now()])
                .map(|n| n > 0)
                .map_err(db)
        })
        .await
}

#[async_trait]
impl IdentitySource for EmbeddedStore {
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let hex = hash.to_hex();
        self.call(move |conn| {
            token_where(conn, "t.token_hash = ?1 AND t.revoked_at IS NULL", [hex])
        })
        .await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.call(move |conn| user_where(conn, "id = ?1", [id]))
            .await
    }

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let at = micros(at);
        self.call(move |conn| {
            conn.execute(
                "UPDATE api_tokens SET last_used_at = ?2 \
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                params![id, at],
            )
            .map(drop)
            .map_err(db)
        })
        .await
    }

    async fn session_by_hash(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.find_session_by_hash(hash).await
    }

    async fn touch_session(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.record_session_use(id, at).await
    }

    async fn end_session(&self, id: i64, reason: &str) -> Result<bool, StoreError> {
        self.end_session_by_id(id, reason).await
    }

    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError> {
        self.watch_changes().await
    }
}

/// Besides users and tokens, `Store` has three store-wide methods (they delegate to `mod.rs`)
/// and the session and sign-in methods (they delegate to `sessions.rs` and `login_states.rs`).
#[async_trait]
impl Store for EmbeddedStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check_connection().await
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn insert_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let email = codec::normalize_email(&user.email)?;
        codec::check_user_name(&user.name)?;
        let roles = to_json(&codec::role_names(&user.roles))?;
        let name = user.name.clone();
        self.call(move |conn| {
            let at = now();
            conn.execute(
                "INSERT INTO users (email, name, roles, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![email, name, roles, at],
            )
            .map_err(|e| sqlite_error(e, &format!("user {email}")))?;
            user_where(conn, "id = ?1", [conn.last_insert_rowid()])?
                .ok_or_else(|| StoreError::Unavailable("inserted user vanished".into()))
        })
        .await
    }

    async fn ensure_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let email = codec::normalize_email(&user.email)?;
        codec::check_user_name(&user.name)?;
        let roles = to_json(&codec::role_names(&user.roles))?;
        let name = user.name.clone();
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT roles FROM users WHERE email = ?1",
                    [&email],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db)?;
            let at = now();
            // Writes (and so counts as a change) only when the user is new or its roles
            // differ; an existing user keeps its name.
            match existing {
                None => {
                    tx.execute(
                        "INSERT INTO users (email, name, roles, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?4)",
                        params![email, name, roles, at],
                    )
                    .map_err(|e| sqlite_error(e, &format!("user {email}")))?;
                }
                Some(stored) if stored != roles => {
                    tx.execute(
                        "UPDATE users SET roles = ?2, updated_at = ?3 WHERE email = ?1",
                        params![email, roles, at],
                    )
                    .map_err(db)?;
                }
                Some(_) => {}
            }
            let user = user_where(&tx, "email = ?1", [&email])?
                .ok_or_else(|| StoreError::Unavailable("ensured user vanished".into()))?;
            tx.commit().map_err(db)?;
            Ok(user)
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let Some(email) = codec::lookup_email(email) else {
            return Ok(None);
        };
        self.call(move |conn| user_where(conn, "email = ?1", [email]))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.call(|conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
            query_list(conn, &sql, [], user_from_row)
        })
        .await
    }

    async fn set_user_roles(&self, email: &str, roles: &[Role]) -> Result<bool, StoreError> {
        let roles = to_json(&codec::role_names(roles))?;
        let sql = "UPDATE users SET roles = ?2, updated_at = ?3 WHERE email = ?1";
        update_user(self, email, sql, roles.into()).await
    }

    async fn set_user_lock(&self, email: &str, reason: Option<&str>) -> Result<bool, StoreError> {
        match reason {
            Some(reason) => {
                codec::check_reason(reason)?;
                let sql = "UPDATE users SET locked_at = COALESCE(locked_at, ?3), \
                           locked_reason = ?2, updated_at = ?3 WHERE email = ?1";
                update_user(self, email, sql, reason.to_owned().into()).await
            }
            None => {
                let sql = "UPDATE users SET locked_at = NULL, locked_reason = ?2, \
                           updated_at = ?3 WHERE email = ?1";
                update_user(self, email, sql, rusqlite::types::Value::Null).await
            }
        }
    }

    async fn set_user_suspended(&self, email: &str, suspended: bool) -> Result<bool, StoreError> {
        let sql = "UPDATE users SET suspended = ?2, updated_at = ?3 WHERE email = ?1";
        update_user(self, email, sql, i64::from(suspended).into()).await
    }

    async fn delete_user(&self, email: &str) -> Result<bool, StoreError> {
        let Some(email) = codec::lookup_email(email) else {
            return Ok(false);
        };
        // api_tokens.owner_id cascades (foreign_keys is on): the user's tokens go with them.
        self.call(move |conn| {
            conn.execute("DELETE FROM users WHERE email = ?1", [email])
                .map(|n| n > 0)
                .map_err(db)
        })
        .await
    }

    async fn insert_token(&self, token: &NewApiToken) -> Result<ApiToken, StoreError> {
        let checked = codec::check_token(token)?;
        let permissions = to_json(&checked.permissions)?;
        let public_id = Uuid::new_v4().to_string();
        let token = token.clone();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO api_tokens (public_id, token_hash, name, owner_id, permissions, \
                 role, created_by, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    public_id,
                    checked.hash_hex,
                    checked.name,
                    token.owner_id,
                    permissions,
                    token.role,
                    token.created_by,
                    now(),
                    token.expires_at.map(micros),
                ],
            )
            .map_err(|e| {
                let on_hash = e.to_string().contains("token_hash");
                let what = if on_hash {
                    "token with this hash".to_owned()
                } else {
                    format!("active token {:?}", checked.name)
                };
                sqlite_error(e, &what)
            })?;
            token_where(conn, "t.id = ?1", [conn.last_insert_rowid()])?
                .ok_or_else(|| StoreError::Unavailable("inserted token vanished".into()))
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.call(|conn| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id \
                 WHERE t.revoked_at IS NULL ORDER BY t.name"
            );
            query_list(conn, &sql, [], token_from_row)
        })
        .await
    }

    async fn revoke_token(&self, name_or_public_id: &str) -> Result<bool, StoreError> {
        let Some(key) = codec::token_key(name_or_public_id) else {
            return Ok(false);
        };
        let key = key.to_owned();
        let public_id = Uuid::parse_str(&key).ok().map(|id| id.to_string());
        self.call(move |conn| {
            let at = now();
            if let Some(public_id) = public_id {
                let sql = "UPDATE api_tokens SET revoked_at = ?2 \
                           WHERE public_id = ?1 AND revoked_at IS NULL";
                if conn.execute(sql, params![public_id, at]).map_err(db)? > 0 {
                    return Ok(true);
                }
            }
            let sql =
                "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL";
            Ok(conn.execute(sql, params![key, at]).map_err(db)? > 0)
        })
        .await
    }

    async fn insert_session(&self, session: &NewSession) -> Result<Session, StoreError> {
        self.add_session(session).await
    }

    async fn session_by_public_id(&self, public_id: Uuid) -> Result<Option<Session>, StoreError> {
        self.find_session(public_id).await
    }

    async fn list_sessions(&self, user_id: i64) -> Result<Vec<Session>, StoreError> {
        self.user_sessions(user_id).await
    }

    async fn revoke_session(&self, public_id: Uuid, reason: &str) -> Result<bool, StoreError> {
        self.end_session_by_public_id(public_id, reason).await
    }

    async fn revoke_user_sessions(&self, user_id: i64, reason: &str) -> Result<u64, StoreError> {
        self.end_user_sessions(user_id, reason).await
    }

    async fn expire_sessions(
        &self,
        limits: &SessionLimits,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        self.sweep_sessions(limits, now).await
    }

    async fn insert_login_state(&self, state: &NewLoginState) -> Result<(), StoreError> {
        self.add_login_state(state).await
    }

    async fn consume_login_state(
        &self,
        state_hash: &TokenHash,
        kind: LoginKind,
        now: DateTime<Utc>,
    ) -> Result<LoginStateUse, StoreError> {
        self.use_login_state(state_hash, kind, now).await
    }

    async fn finish_cli_login(
        &self,
        state_hash: &TokenHash,
        outcome: Result<i64, String>,
    ) -> Result<bool, StoreError> {
        self.record_cli_outcome(state_hash, outcome).await
    }

    async fn take_cli_login(
        &self,
        state_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<CliLoginPoll, StoreError> {
        self.poll_cli_login(state_hash, now).await
    }

    async fn delete_expired_login_states(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.purge_login_states(now).await
    }
}

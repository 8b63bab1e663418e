//! Users and API tokens in PostgreSQL, and the `IdentitySource` and `Store` impls (whose
//! session and sign-in methods delegate to `sessions.rs` and `login_states.rs`).
//!
//! Triggers on `users` and `api_tokens` call `pg_notify` on every insert, delete and update
//! except an update of `last_used_at` alone, so every instance learns of a change as soon as it
//! commits (see `feed.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{get, pg_error, PostgresStore};
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

impl PostgresStore {
    async fn one_user(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        conflict: &str,
    ) -> Result<Option<User>, StoreError> {
        let rows = self.query(sql, params, conflict).await?;
        rows.first().map(user_from_row).transpose()
    }
}

fn user_from_row(row: &Row) -> Result<User, StoreError> {
    let Json(roles) = get::<Json<Vec<String>>>(row, "roles")?;
    Ok(User {
        id: get(row, "id")?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        roles: codec::roles_from_names(roles)?,
        locked_at: get(row, "locked_at")?,
        locked_reason: get(row, "locked_reason")?,
        suspended: get(row, "suspended")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn token_from_row(row: &Row) -> Result<ApiToken, StoreError> {
    let Json(permissions) = get::<Json<Vec<String>>>(row, "permissions")?;
    Ok(ApiToken {
        id: get(row, "id")?,
        public_id: get(row, "public_id")?,
        name: get(row, "name")?,
        owner_id: get(row, "owner_id")?,
        owner_email: get(row, "owner_email")?,
        permissions,
        role: get(row, "role")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        last_used_at: get(row, "last_used_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

#[async_trait]
impl IdentitySource for PostgresStore {
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
        );
        let rows = self.query(&sql, &[&hash.to_hex()], "").await?;
        rows.first().map(token_from_row).transpose()
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.one_user(&sql, &[&id], "").await
    }

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE api_tokens SET last_used_at = $2 \
                   WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";
        self.execute(sql, &[&id, &at]).await.map(drop)
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
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check_connection().await
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn insert_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let email = codec::normalize_email(&user.email)?;
        codec::check_user_name(&user.name)?;
        let roles = Json(codec::role_names(&user.roles));
        let sql = format!(
            "INSERT INTO users (email, name, roles) VALUES ($1, $2, $3) RETURNING {USER_COLUMNS}"
        );
        let conflict = format!("user {email}");
        self.one_user(&sql, &[&email, &user.name, &roles], &conflict)
            .await?
            .ok_or_else(|| StoreError::Unavailable("insert returned no row".into()))
    }

    async fn ensure_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let email = codec::normalize_email(&user.email)?;
        codec::check_user_name(&user.name)?;
        let roles = Json(codec::role_names(&user.roles));
        // Writes (and so notifies) only when the user is new or its roles differ; an existing
        // user keeps its name.
        let upsert = format!(
            "INSERT INTO users (email, name, roles) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO UPDATE SET roles = EXCLUDED.roles, updated_at = now()
             WHERE users.roles IS DISTINCT FROM EXCLUDED.roles
             RETURNING {USER_COLUMNS}"
        );
        let conflict = format!("user {email}");
        if let Some(found) = self
            .one_user(&upsert, &[&email, &user.name, &roles], &conflict)
            .await?
        {
            return Ok(found);
        }
        self.user_by_email(&email).await?.ok_or_else(|| {
            StoreError::Unavailable(format!("user {email} was deleted concurrently"))
        })
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let Some(email) = codec::lookup_email(email) else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        self.one_user(&sql, &[&email], "").await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
        self.query(&sql, &[], "")
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn set_user_roles(&self, email: &str, roles: &[Role]) -> Result<bool, StoreError> {
        let Some(email) = codec::lookup_email(email) else {
            return Ok(false);
        };
        let roles = Json(codec::role_names(roles));
        let sql = "UPDATE users SET roles = $2, updated_at = now() WHERE email = $1";
        Ok(self.execute(sql, &[&email, &roles]).await? > 0)
    }

    async fn set_user_lock(&self, email: &str, reason: Option<&str>) -> Result<bool, StoreError> {
        if let Some(reason) = reason {
            codec::check_reason(reason)?;
        }
        let Some(email) = codec::lookup_email(email) else {
            return Ok(false);
        };
        let changed = match reason {
            Some(reason) => {
                let sql = "UPDATE users SET locked_at = COALESCE(locked_at, now()), \
                           locked_reason = $2, updated_at = now() WHERE email = $1";
                self.execute(sql, &[&email, &reason]).await?
            }
            None => {
                let sql = "UPDATE users SET locked_at = NULL, locked_reason = NULL, \
                           updated_at = now() WHERE email = $1";
                self.execute(sql, &[&email]).await?
            }
        };
        Ok(changed > 0)
    }

    async fn set_user_suspended(&self, email: &str, suspended: bool) -> Result<bool, StoreError> {
        let Some(email) = codec::lookup_email(email) else {
            return Ok(false);
        };
        let sql = "UPDATE users SET suspended = $2, updated_at = now() WHERE email = $1";
        Ok(self.execute(sql, &[&email, &suspended]).await? > 0)
    }

    async fn delete_user(&self, email: &str) -> Result<bool, StoreError> {
        let Some(email) = codec::lookup_email(email) else {
            return Ok(false);
        };
        // api_tokens.owner_id cascades: the user's tokens go with them.
        Ok(self
            .execute("DELETE FROM users WHERE email = $1", &[&email])
            .await?
            > 0)
    }

    async fn insert_token(&self, token: &NewApiToken) -> Result<ApiToken, StoreError> {
        let checked = codec::check_token(token)?;
        let public_id = Uuid::new_v4();
        let permissions = Json(&checked.permissions);
        let sql = format!(
            "WITH t AS (
                 INSERT INTO api_tokens
                     (public_id, token_hash, name, owner_id, permissions, role, created_by, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 RETURNING *)
             SELECT {TOKEN_COLUMNS} FROM t LEFT JOIN users u ON u.id = t.owner_id"
        );
        let params: [&(dyn ToSql + Sync); 8] = [
            &public_id,
            &checked.hash_hex,
            &checked.name,
            &token.owner_id,
            &permissions,
            &token.role,
            &token.created_by,
            &token.expires_at,
        ];
        let client = self.client().await?;
        let result = client.query(sql.as_str(), &params).await;
        let rows = result.map_err(|e| {
            let on_hash = e
                .as_db_error()
                .and_then(|db| db.constraint())
                .is_some_and(|c| c.contains("token_hash"));
            let what = if on_hash {
                "token with this hash".to_owned()
            } else {
                format!("active token {:?}", checked.name)
            };
            pg_error(e, &what)
        })?;
        rows.first()
            .map(token_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::Unavailable("insert returned no row".into()))
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id
             WHERE t.revoked_at IS NULL ORDER BY t.name"
        );
        self.query(&sql, &[], "")
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_token(&self, name_or_public_id: &str) -> Result<bool, StoreError> {
        let Some(key) = codec::token_key(name_or_public_id) else {
            return Ok(false);
        };
        if let Ok(public_id) = Uuid::parse_str(key) {
            let sql = "UPDATE api_tokens SET revoked_at = now() \
                       WHERE public_id = $1 AND revoked_at IS NULL";
            if self.execute(sql, &[&public_id]).await? > 0 {
                return Ok(true);
            }
        }
        let sql = "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL";
        Ok(self.execute(sql, &[&key]).await? > 0)
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

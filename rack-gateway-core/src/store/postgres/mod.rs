//! PostgreSQL store: a deadpool of tokio-postgres connections for queries, and one dedicated
//! connection per identity watcher that `LISTEN`s on [`CHANNEL`].
//!
//! Triggers on `users` and `api_tokens` call `pg_notify` on every insert, delete and update
//! except an update of `last_used_at` alone, and on `settings` for every change, so every
//! instance learns of a change as soon as it commits (a few milliseconds on a local network).

mod audit;
mod settings;
mod tls;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Json, ToSql};
use tokio_postgres::{AsyncMessage, Config, Row};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

use super::{codec, schema, IdentityEvent, IdentityWatch, Store, StoreError};
use crate::identity::{ApiToken, NewApiToken, NewUser, TokenHash, User};
use crate::rbac::Role;

/// The notification channel of the identity feed.
pub(crate) const CHANNEL: &str = "rgw_identity";

/// Key of the advisory lock that serialises concurrent `migrate()` calls ("rgw_migr").
const MIGRATION_LOCK: i64 = 0x7267_775f_6d69_6772;
/// How often a watcher checks that its idle LISTEN connection still answers.
const HEALTH_INTERVAL: Duration = Duration::from_secs(15);
/// How long that check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait between reconnection attempts of a watcher.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Events buffered per watcher.
const FEED_CAPACITY: usize = 64;

const USER_COLUMNS: &str =
    "id, email, name, roles, locked_at, locked_reason, suspended, created_at, updated_at";
const TOKEN_COLUMNS: &str = "t.id, t.public_id, t.name, t.owner_id, u.email AS owner_email, \
     t.permissions, t.role, t.created_by, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

/// The production store, shared by every gateway instance.
///
/// Connections use TLS as the URL's `sslmode` (and `sslrootcert`) ask, with libpq's meanings;
/// the default, `prefer`, uses TLS whenever the server offers it.
pub struct PostgresStore {
    pool: Pool,
    config: Config,
    /// Connects the identity watchers as the pool does.
    tls: MakeRustlsConnect,
    /// Dropped with the store, which ends every watcher task.
    shutdown: watch::Sender<()>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Builds a pool of at most `max_connections` from a `postgres://…` URL (or libpq
    /// `key=value` string) and checks that the server answers.
    ///
    /// Besides what tokio-postgres reads, the URL may carry libpq's `sslmode` (`disable`,
    /// `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file of trusted
    /// CA certificates; the system roots otherwise).
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let (mut config, tls) = tls::configure(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("rack-gateway");
        }
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("database pool: {e}")))?;
        let store = PostgresStore {
            pool,
            config,
            tls,
            shutdown: watch::channel(()).0,
        };
        store.ping().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("database: {}", pool_error(&e))))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        conflict: &str,
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| pg_error(e, conflict))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| pg_error(e, conflict))
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| pg_error(e, ""))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| pg_error(e, ""))
    }

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

/// Describes a failure to get a pooled connection: for a failed connection attempt, the driver's
/// error with its causes (deadpool's wrapper adds nothing useful).
fn pool_error(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(driver) => tls::describe_error(driver),
        other => tls::describe_error(other),
    }
}

/// Maps a driver error; `conflict` names what already exists on a unique violation.
fn pg_error(error: tokio_postgres::Error, conflict: &str) -> StoreError {
    let Some(db) = error.as_db_error() else {
        return StoreError::Unavailable(format!("database: {error}"));
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        StoreError::Conflict(conflict.to_owned())
    } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
        StoreError::Invalid {
            field: "owner_id",
            reason: "no such user".into(),
        }
    } else if [
        SqlState::CHECK_VIOLATION,
        SqlState::NOT_NULL_VIOLATION,
        SqlState::STRING_DATA_RIGHT_TRUNCATION,
        SqlState::CHARACTER_NOT_IN_REPERTOIRE,
        SqlState::UNTRANSLATABLE_CHARACTER,
    ]
    .contains(code)
    {
        StoreError::Invalid {
            field: "input",
            reason: db.message().to_owned(),
        }
    } else {
        StoreError::Unavailable(format!("database: {}", db.message()))
    }
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, column: &str) -> Result<T, StoreError> {
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
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
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(e, ""))?;
        // Held until commit or rollback: concurrent migrate() calls run one after the other.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| pg_error(e, ""))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 name TEXT NOT NULL,
                 checksum TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| pg_error(e, ""))?;
        let applied = tx
            .query("SELECT version, checksum FROM schema_migrations", &[])
            .await
            .map_err(|e| pg_error(e, ""))?
            .iter()
            .map(|row| Ok((get(row, "version")?, get(row, "checksum")?)))
            .collect::<Result<Vec<(i64, String)>, StoreError>>()?;
        for migration in schema::pending(schema::POSTGRES, &applied)? {
            tx.batch_execute(migration.sql)
                .await
                .map_err(|e| pg_error(e, ""))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &migration.checksum()],
            )
            .await
            .map_err(|e| pg_error(e, ""))?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied migration"
            );
        }
        tx.commit().await.map_err(|e| pg_error(e, ""))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[], "").await.map(drop)
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

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.one_user(&sql, &[&id], "").await
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

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
        );
        let rows = self.query(&sql, &[&hash.to_hex()], "").await?;
        rows.first().map(token_from_row).transpose()
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

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE api_tokens SET last_used_at = $2 \
                   WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";
        self.execute(sql, &[&id, &at]).await.map(drop)
    }

    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError> {
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let (client, driver) = listen(&self.config, &self.tls, &tx).await?;
        tokio::spawn(run_watcher(
            self.config.clone(),
            self.tls.clone(),
            client,
            driver,
            tx,
            self.shutdown.subscribe(),
        ));
        Ok(rx)
    }
}

/// Drives a LISTEN connection, turning notifications into [`IdentityEvent::Changed`]; ends when
/// the connection does.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Opens a dedicated connection (not from the pool) and subscribes it to [`CHANNEL`].
async fn listen(
    config: &Config,
    tls: &MakeRustlsConnect,
    tx: &mpsc::Sender<IdentityEvent>,
) -> Result<(tokio_postgres::Client, Driver), StoreError> {
    let (client, mut connection) = config.connect(tls.clone()).await.map_err(|e| {
        StoreError::Unavailable(format!("identity feed: {}", tls::describe_error(&e)))
    })?;
    let events = tx.clone();
    let mut driver: Driver = Box::pin(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    // A full queue already holds an event that will flush caches after this
                    // change committed, so dropping this one loses nothing.
                    let _ = events.try_send(IdentityEvent::Changed);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::warn!(%error, "identity feed connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    // The connection must be driven while LISTEN runs.
    let subscribe = format!("LISTEN {CHANNEL}");
    tokio::select! {
        result = client.batch_execute(&subscribe) => {
            result.map_err(|e| StoreError::Unavailable(format!("identity feed: {e}")))?;
        }
        () = driver.as_mut() => {
            return Err(StoreError::Unavailable("identity feed: connection closed".into()));
        }
    }
    Ok((client, driver))
}

/// How a LISTEN session ended.
enum Ended {
    /// The store or the receiver is gone: stop watching.
    Stop,
    /// The connection broke: reconnect.
    Lost,
}

/// Watches until the store or the receiver goes away, reconnecting with backoff.
async fn run_watcher(
    config: Config,
    tls: MakeRustlsConnect,
    mut client: tokio_postgres::Client,
    mut driver: Driver,
    tx: mpsc::Sender<IdentityEvent>,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        if let Ended::Stop = hold(&client, &mut driver, &tx, &mut shutdown).await {
            return;
        }
        if tx.send(IdentityEvent::Disconnected).await.is_err() {
            return;
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
                () = tx.closed() => return,
            }
            let attempt = tokio::select! {
                attempt = listen(&config, &tls, &tx) => attempt,
                _ = shutdown.changed() => return,
            };
            match attempt {
                Ok((new_client, new_driver)) => {
                    client = new_client;
                    driver = new_driver;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "identity feed reconnection failed");
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        tracing::info!("identity feed resumed");
        if tx.send(IdentityEvent::Resumed).await.is_err() {
            return;
        }
    }
}

/// Keeps one LISTEN session alive, checking now and then that the server still answers.
async fn hold(
    client: &tokio_postgres::Client,
    driver: &mut Driver,
    tx: &mpsc::Sender<IdentityEvent>,
    shutdown: &mut watch::Receiver<()>,
) -> Ended {
    loop {
        tokio::select! {
            () = driver.as_mut() => return Ended::Lost,
            _ = shutdown.changed() => return Ended::Stop,
            () = tx.closed() => return Ended::Stop,
            () = tokio::time::sleep(HEALTH_INTERVAL) => {
                let check = tokio::time::timeout(HEALTH_TIMEOUT, client.simple_query("SELECT 1"));
                tokio::select! {
                    answer = check => {
                        if !matches!(answer, Ok(Ok(_))) {
                            tracing::warn!("identity feed connection stopped answering");
                            return Ended::Lost;
                        }
                    }
                    () = driver.as_mut() => return Ended::Lost,
                }
            }
        }
    }
}

//! Embedded store: one SQLite file (`rack-gateway.sqlite3`) in a private directory.
//!
//! The database runs in WAL mode with `synchronous=FULL`: every commit is fsynced before it is
//! acknowledged, so a revocation or an audit record survives a power loss, not only a crash of
//! the process (with `NORMAL` the last commits could roll back on power loss). Identity changes
//! are rare and audit records are committed in batches, so the fsync per commit costs little.
//!
//! Calls run on tokio's blocking pool over one connection behind a mutex. Several processes may
//! open the same directory (the dev gateway and `rack-gateway token revoke`): SQLite's file locks
//! serialise their writes, and each identity watcher polls the `identity_generation` counter,
//! which triggers bump on every identity or settings change, every [`POLL_INTERVAL`].

mod audit;
mod settings;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::FromSql;
use rusqlite::{ffi, params, Connection, OptionalExtension, Params, Row, TransactionBehavior};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::{codec, schema, IdentityEvent, IdentityWatch, Store, StoreError};
use crate::identity::{ApiToken, NewApiToken, NewUser, TokenHash, User};
use crate::rbac::Role;

/// Name of the database file inside the data directory.
pub(crate) const FILE_NAME: &str = "rack-gateway.sqlite3";
/// How often a watcher looks at the identity change counter.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting statement retries the lock.
const BUSY_POLL: Duration = Duration::from_millis(1);
/// Events buffered per watcher.
const FEED_CAPACITY: usize = 64;

const USER_COLUMNS: &str =
    "id, email, name, roles, locked_at, locked_reason, suspended, created_at, updated_at";
const TOKEN_COLUMNS: &str = "t.id, t.public_id, t.name, t.owner_id, u.email AS owner_email, \
     t.permissions, t.role, t.created_by, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

type Shared = Arc<Mutex<Connection>>;

/// The embedded store: no server, one file in a directory.
pub struct EmbeddedStore {
    conn: Shared,
    path: PathBuf,
    /// Dropped with the store, which ends every watcher task.
    shutdown: watch::Sender<()>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed, mode 0700 on unix) `dir` and the database file in it.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        let (conn, path) = tokio::task::spawn_blocking(move || {
            let path = prepare_dir(&dir)?;
            Ok::<_, StoreError>((open_connection(&path)?, path))
        })
        .await
        .map_err(join_error)??;
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            shutdown: watch::channel(()).0,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection, on the blocking pool.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut lock(&conn)))
            .await
            .map_err(join_error)?
    }
}

fn lock(conn: &Shared) -> std::sync::MutexGuard<'_, Connection> {
    // Closures never panic while holding the connection; if one did, SQLite's own state is
    // still consistent (an open transaction rolls back when its guard drops).
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn join_error(error: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("store task failed: {error}"))
}

/// Creates the directory (0700) and the file (0600) if missing; returns the file's path.
fn prepare_dir(dir: &Path) -> Result<PathBuf, StoreError> {
    let io = |what: &str, e: std::io::Error| {
        StoreError::Unavailable(format!("{what} {}: {e}", dir.display()))
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| io("cannot create data directory", e))?;
    let path = dir.join(FILE_NAME);
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    // SQLite gives its -wal and -shm files the database file's permissions.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&path)
        .map_err(|e| io("cannot create database in", e))?;
    Ok(path)
}

/// Opens a connection with the settings every connection needs.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| sqlite_error(e, ""))?;
    conn.busy_handler(Some(busy_wait))
        .map_err(|e| sqlite_error(e, ""))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| sqlite_error(e, ""))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{} refused WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(|e| sqlite_error(e, ""))?;
    Ok(conn)
}

/// Waits [`BUSY_POLL`] and retries, for about [`BUSY_TIMEOUT`] in all.
///
/// SQLite's own handler backs off to 100 ms between attempts, so while one process commits in
/// a loop (the gateway appending audit batches) another one mostly wakes up while the lock is
/// taken again: measured, its single appends waited 130 ms at the 90th percentile and up to
/// 1.4 s. Retrying every millisecond brought that to 9 ms and 50 ms.
fn busy_wait(attempt: i32) -> bool {
    let attempts = BUSY_TIMEOUT.as_millis() / BUSY_POLL.as_millis().max(1);
    if u128::try_from(attempt).unwrap_or(u128::MAX) >= attempts {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

/// Maps a SQLite error; `conflict` names what already exists on a unique violation.
fn sqlite_error(error: rusqlite::Error, conflict: &str) -> StoreError {
    use rusqlite::Error as E;
    match &error {
        E::SqliteFailure(failure, message) => match failure.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                StoreError::Conflict(conflict.to_owned())
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => StoreError::Invalid {
                field: "owner_id",
                reason: "no such user".into(),
            },
            ffi::SQLITE_CONSTRAINT_CHECK
            | ffi::SQLITE_CONSTRAINT_NOTNULL
            | ffi::SQLITE_CONSTRAINT_DATATYPE => StoreError::Invalid {
                field: "input",
                reason: message.clone().unwrap_or_else(|| error.to_string()),
            },
            _ => StoreError::Unavailable(format!("database: {error}")),
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::InvalidColumnIndex(_)
        | E::InvalidColumnName(_) => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Unavailable(format!("database: {error}")),
    }
}

fn db(error: rusqlite::Error) -> StoreError {
    sqlite_error(error, "")
}

fn col<T: FromSql>(row: &Row<'_>, index: usize) -> Result<T, StoreError> {
    row.get(index)
        .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn now() -> i64 {
    micros(Utc::now())
}

fn time(value: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {value} out of range")))
}

fn opt_time(value: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    value.map(time).transpose()
}

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

fn query_list<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = statement.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(decode(row)?);
    }
    Ok(out)
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

fn read_generation(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT value FROM identity_generation WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .map_err(db)
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
impl Store for EmbeddedStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.call(|conn| {
            // The write lock taken up front serialises concurrent migrate() calls, across
            // processes too.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version INTEGER PRIMARY KEY,
                     name TEXT NOT NULL,
                     checksum TEXT NOT NULL,
                     applied_at INTEGER NOT NULL) STRICT",
            )
            .map_err(db)?;
            let applied = {
                let mut statement = tx
                    .prepare("SELECT version, checksum FROM schema_migrations")
                    .map_err(db)?;
                let rows = statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(db)?;
                rows.collect::<Result<Vec<(i64, String)>, _>>()
                    .map_err(db)?
            };
            for migration in schema::pending(schema::EMBEDDED, &applied)? {
                tx.execute_batch(migration.sql).map_err(db)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        migration.version,
                        migration.name,
                        migration.checksum(),
                        now()
                    ],
                )
                .map_err(db)?;
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "applied migration"
                );
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.call(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
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

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.call(move |conn| user_where(conn, "id = ?1", [id]))
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

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let hex = hash.to_hex();
        self.call(move |conn| {
            token_where(conn, "t.token_hash = ?1 AND t.revoked_at IS NULL", [hex])
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

    async fn watch_identity(&self) -> Result<IdentityWatch, StoreError> {
        let path = self.path.clone();
        // A connection of its own, so polling never waits behind the store's calls; the
        // starting value is read before returning, so no later change can be missed.
        let (conn, seen) = tokio::task::spawn_blocking(move || {
            let conn = open_connection(&path)?;
            let seen = read_generation(&conn)?;
            Ok::<_, StoreError>((conn, seen))
        })
        .await
        .map_err(join_error)??;
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        tokio::spawn(poll_generation(
            Arc::new(Mutex::new(conn)),
            seen,
            tx,
            self.shutdown.subscribe(),
        ));
        Ok(rx)
    }
}

/// Sends [`IdentityEvent::Changed`] whenever the counter moves, until the store or the receiver
/// goes away; a failing read is reported as [`IdentityEvent::Disconnected`] until one succeeds.
async fn poll_generation(
    conn: Shared,
    mut seen: i64,
    tx: mpsc::Sender<IdentityEvent>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connected = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
            () = tx.closed() => return,
        }
        let conn = Arc::clone(&conn);
        let read = tokio::task::spawn_blocking(move || read_generation(&lock(&conn)))
            .await
            .map_err(join_error)
            .and_then(|read| read);
        let event = match read {
            Ok(generation) if !connected => {
                connected = true;
                seen = generation;
                tracing::info!("identity feed resumed");
                IdentityEvent::Resumed
            }
            Ok(generation) if generation != seen => {
                seen = generation;
                // A full queue already holds an event that flushes caches after this change.
                let _ = tx.try_send(IdentityEvent::Changed);
                continue;
            }
            Ok(_) => continue,
            Err(error) if connected => {
                connected = false;
                tracing::warn!(%error, "identity feed cannot read the change counter");
                IdentityEvent::Disconnected
            }
            Err(_) => continue,
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

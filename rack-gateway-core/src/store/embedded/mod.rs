//! Embedded store: one SQLite file (`rack-gateway.sqlite3`) in a private directory; opening it,
//! migrating the schema, and the helpers every table's code shares.
//!
//! The database runs in WAL mode with `synchronous=FULL`: every commit is fsynced before it is
//! acknowledged, so a revocation or an audit record survives a power loss, not only a crash of
//! the process (with `NORMAL` the last commits could roll back on power loss). Identity changes
//! are rare and audit records are committed in batches, so the fsync per commit costs little.
//!
//! Calls run on tokio's blocking pool over one connection behind a mutex. Several processes may
//! open the same directory (the dev gateway and `rack-gateway token revoke`): SQLite's file locks
//! serialise their writes. Users and tokens are in `identity.rs`, sessions in `sessions.rs`,
//! sign-ins in progress in `login_states.rs`, the identity change feed (a polled change
//! counter) in `feed.rs`, the audit chain in `audit.rs` and settings in `settings.rs`.

mod audit;
mod feed;
mod identity;
mod login_states;
mod sessions;
mod settings;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::FromSql;
use rusqlite::{ffi, params, Connection, Params, Row, TransactionBehavior};
use tokio::sync::watch;

use super::{schema, StoreError};

/// Name of the database file inside the data directory.
pub(crate) const FILE_NAME: &str = "rack-gateway.sqlite3";
/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting statement retries the lock.
const BUSY_POLL: Duration = Duration::from_millis(1);

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

impl EmbeddedStore {
    /// Checks that the database answers.
    pub(super) async fn check_connection(&self) -> Result<(), StoreError> {
        self.call(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
    }

    /// Applies pending schema migrations, one `migrate()` at a time across processes.
    pub(super) async fn run_migrations(&self) -> Result<(), StoreError> {
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
}

//! PostgreSQL store: opening the pool, migrating the schema, and mapping driver errors.
//!
//! Queries run on a deadpool of tokio-postgres connections. Users and tokens are in
//! `identity.rs`, sessions in `sessions.rs`, sign-ins in progress in `login_states.rs`, the
//! identity change feed (one dedicated `LISTEN` connection per watcher) in `feed.rs`, the audit
//! chain in `audit.rs`, settings in `settings.rs` and TLS in `tls.rs`.

mod audit;
mod feed;
mod identity;
mod login_states;
mod sessions;
mod settings;
mod tls;

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::watch;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Config, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{schema, StoreError};

/// Key of the advisory lock that serialises concurrent `migrate()` calls ("rgw_migr").
const MIGRATION_LOCK: i64 = 0x7267_775f_6d69_6772;

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
        store.check_connection().await?;
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

    /// Checks that the server answers.
    pub(super) async fn check_connection(&self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[], "").await.map(drop)
    }

    /// Applies pending schema migrations, one `migrate()` at a time across processes.
    pub(super) async fn run_migrations(&self) -> Result<(), StoreError> {
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

//! Where the gateway keeps its state: PostgreSQL, or the embedded store.

use std::path::PathBuf;

use super::env::{ConfigError, Env};

/// Store settings shared by `serve` and the operator commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// PostgreSQL URL; when `None`, the embedded store in `data_dir` is used.
    pub database_url: Option<String>,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// PostgreSQL pool size.
    pub max_connections: usize,
}

impl StoreConfig {
    /// Reads DATABASE_URL, RGW_DATA_DIR and DB_MAX_OPEN_CONNS.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env.get("DATABASE_URL").map(str::to_owned);
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "must be a postgres:// or postgresql:// URL",
                ));
            }
        }
        let max_connections: usize = env.parsed("DB_MAX_OPEN_CONNS", 16)?;
        if !(1..=1000).contains(&max_connections) {
            return Err(ConfigError::new(
                "DB_MAX_OPEN_CONNS",
                "must be between 1 and 1000",
            ));
        }
        Ok(StoreConfig {
            database_url,
            data_dir: PathBuf::from(env.get("RGW_DATA_DIR").unwrap_or("./rack-gateway-data")),
            max_connections,
        })
    }

    /// Opens the configured store without changing it (for read-only commands such as verify).
    pub async fn open_existing(
        &self,
    ) -> Result<
        std::sync::Arc<dyn rack_gateway_core::store::Store>,
        rack_gateway_core::store::StoreError,
    > {
        rack_gateway_core::store::open(
            self.database_url.as_deref(),
            &self.data_dir,
            self.max_connections,
        )
        .await
    }

    /// Opens the configured store and applies migrations.
    pub async fn open(
        &self,
    ) -> Result<
        std::sync::Arc<dyn rack_gateway_core::store::Store>,
        rack_gateway_core::store::StoreError,
    > {
        let store = rack_gateway_core::store::open(
            self.database_url.as_deref(),
            &self.data_dir,
            self.max_connections,
        )
        .await?;
        store.migrate().await?;
        Ok(store)
    }
}

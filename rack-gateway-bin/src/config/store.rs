//! Where the gateway keeps its state: PostgreSQL, or the embedded store.

use std::fmt;
use std::path::PathBuf;

use rack_gateway_core::redact::{mask_url_credentials, redact_query, SecretRules};

use super::env::{ConfigError, Env};

/// Store settings shared by `serve` and the operator commands.
///
/// The `Debug` output masks the password of DATABASE_URL (userinfo or `password=` parameter).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// PostgreSQL URL; when `None`, the embedded store in `data_dir` is used.
    pub database_url: Option<String>,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// PostgreSQL pool size.
    pub max_connections: usize,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field(
                "database_url",
                &self.database_url.as_deref().map(masked_database_url),
            )
            .field("data_dir", &self.data_dir)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// DATABASE_URL fit for logs: the userinfo password masked, and so is a `password` parameter
/// (tokio-postgres reads one from the query too).
fn masked_database_url(url: &str) -> String {
    let masked = mask_url_credentials(url);
    match masked.split_once('?') {
        Some((base, query)) => format!("{base}?{}", redact_query(query, &SecretRules::default())),
        None => masked.into_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> StoreConfig {
        StoreConfig::from_env(&Env::from_pairs([("DATABASE_URL", url)])).unwrap()
    }

    #[test]
    fn debug_masks_the_database_password() {
        let shown = format!(
            "{:?}",
            with_url("postgres://gateway:hunter2@db:5432/gateway?sslmode=verify-full")
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains(
                "postgres://gateway:********************@db:5432/gateway?sslmode=verify-full"
            ),
            "{shown}"
        );

        let shown = format!(
            "{:?}",
            with_url("postgresql://gateway@db/gateway?password=hunter2&sslmode=require")
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");

        let shown = format!("{:?}", with_url("postgres://gateway@db/gateway"));
        assert!(shown.contains("postgres://gateway@db/gateway"), "{shown}");
    }

    #[test]
    fn debug_of_the_embedded_store() {
        let shown = format!("{:?}", StoreConfig::from_env(&Env::from_pairs([])).unwrap());
        assert!(shown.contains("database_url: None"), "{shown}");
    }
}

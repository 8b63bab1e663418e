//! Choosing the store from the configuration: PostgreSQL when a database URL is given, else the
//! embedded store in a data directory.
//!
//! A backend left out of the build (its cargo feature off) is refused with a message naming
//! the feature, rather than silently replaced by the other one.

use std::path::Path;
use std::sync::Arc;

use super::{Store, StoreError};

/// Opens PostgreSQL when `database_url` is given, else the embedded store in `data_dir`.
///
/// ```no_run
/// # async fn demo() -> Result<(), rack_gateway_core::store::StoreError> {
/// use rack_gateway_core::store::{open, Store};
///
/// let store = open(None, std::path::Path::new("./rack-gateway-data"), 16).await?;
/// store.migrate().await?;
/// store.ping().await?;
/// # Ok(()) }
/// ```
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
    max_connections: usize,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) => open_postgres(url, max_connections).await,
        None => open_embedded(data_dir).await,
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, max_connections: usize) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(
        super::PostgresStore::connect(url, max_connections).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str, _max_connections: usize) -> Result<Arc<dyn Store>, StoreError> {
    Err(StoreError::Invalid {
        field: "DATABASE_URL",
        reason: "this build has no PostgreSQL store (rack-gateway-core's `postgres` feature)"
            .into(),
    })
}

#[cfg(feature = "sqlite")]
async fn open_embedded(data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(super::EmbeddedStore::open(data_dir).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_embedded(_data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Err(StoreError::Invalid {
        field: "DATABASE_URL",
        reason: "unset, and this build has no embedded store (rack-gateway-core's `sqlite` \
                 feature)"
            .into(),
    })
}

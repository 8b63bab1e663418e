//! The settings table in PostgreSQL.
//!
//! Writes run in one transaction per call; the trigger of migration 0003 notifies the identity
//! channel for every row written or deleted (PostgreSQL folds identical notifications of one
//! transaction into one, delivered at commit).

use async_trait::async_trait;
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use super::{get, pg_error, PostgresStore};
use crate::store::settings_codec as codec;
use crate::store::{SettingsStore, StoreError, StoredSetting};

const COLUMNS: &str = "app_name, key, value, updated_at, updated_by";

fn setting_from_row(row: &Row) -> Result<StoredSetting, StoreError> {
    let Json(value) = get::<Json<serde_json::Value>>(row, "value")?;
    Ok(StoredSetting {
        app: get(row, "app_name")?,
        key: get(row, "key")?,
        value,
        updated_at: get(row, "updated_at")?,
        updated_by: get(row, "updated_by")?,
    })
}

#[async_trait]
impl SettingsStore for PostgresStore {
    async fn list_settings(&self) -> Result<Vec<StoredSetting>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM settings ORDER BY app_name NULLS FIRST, key");
        self.query(&sql, &[], "")
            .await?
            .iter()
            .map(setting_from_row)
            .collect()
    }

    async fn put_settings(
        &self,
        app: Option<&str>,
        values: &[(String, serde_json::Value)],
        updated_by: Option<&str>,
    ) -> Result<Vec<StoredSetting>, StoreError> {
        codec::check_writes(app, values, updated_by)?;
        let sql = format!(
            "INSERT INTO settings (app_name, key, value, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT ((COALESCE(app_name, '')), key) DO UPDATE SET
                 value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now()
             RETURNING {COLUMNS}"
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(e, ""))?;
        let statement = tx.prepare(&sql).await.map_err(|e| pg_error(e, ""))?;
        let mut stored = Vec::with_capacity(values.len());
        for (key, value) in values {
            let row = tx
                .query_one(&statement, &[&app, key, &Json(value), &updated_by])
                .await
                .map_err(|e| pg_error(e, ""))?;
            stored.push(setting_from_row(&row)?);
        }
        tx.commit().await.map_err(|e| pg_error(e, ""))?;
        Ok(stored)
    }

    async fn delete_settings(&self, app: Option<&str>, keys: &[String]) -> Result<u64, StoreError> {
        codec::check_deletes(app, keys)?;
        if keys.is_empty() {
            return Ok(0);
        }
        let sql = "DELETE FROM settings
                   WHERE COALESCE(app_name, '') = COALESCE($1::text, '') AND key = ANY($2)";
        self.execute(sql, &[&app, &keys]).await
    }
}

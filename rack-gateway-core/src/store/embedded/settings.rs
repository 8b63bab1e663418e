//! The settings table in SQLite.
//!
//! Writes run in one `BEGIN IMMEDIATE` transaction per call; the triggers of migration 0003
//! bump `identity_generation` on every row written or deleted, which every watcher polls.

use async_trait::async_trait;
use rusqlite::{params, Row, TransactionBehavior};

use super::{col, db, now, query_list, time, EmbeddedStore};
use crate::store::settings_codec as codec;
use crate::store::{SettingsStore, StoreError, StoredSetting};

const COLUMNS: &str = "app_name, key, value, updated_at, updated_by";

fn setting_from_row(row: &Row<'_>) -> Result<StoredSetting, StoreError> {
    let value: String = col(row, 2)?;
    Ok(StoredSetting {
        app: col(row, 0)?,
        key: col(row, 1)?,
        value: codec::decode_value(&value)?,
        updated_at: time(col(row, 3)?)?,
        updated_by: col(row, 4)?,
    })
}

#[async_trait]
impl SettingsStore for EmbeddedStore {
    async fn list_settings(&self) -> Result<Vec<StoredSetting>, StoreError> {
        self.call(|conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM settings ORDER BY app_name IS NOT NULL, app_name, key"
            );
            query_list(conn, &sql, [], setting_from_row)
        })
        .await
    }

    async fn put_settings(
        &self,
        app: Option<&str>,
        values: &[(String, serde_json::Value)],
        updated_by: Option<&str>,
    ) -> Result<Vec<StoredSetting>, StoreError> {
        let encoded = codec::check_writes(app, values, updated_by)?;
        let rows: Vec<(String, String)> = values
            .iter()
            .map(|(key, _)| key.clone())
            .zip(encoded)
            .collect();
        let app = app.map(str::to_owned);
        let updated_by = updated_by.map(str::to_owned);
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let at = now();
            let sql = format!(
                "INSERT INTO settings (app_name, key, value, created_at, updated_at, updated_by) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5) \
                 ON CONFLICT (COALESCE(app_name, ''), key) DO UPDATE SET \
                 value = excluded.value, updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by \
                 RETURNING {COLUMNS}"
            );
            let mut stored = Vec::with_capacity(rows.len());
            for (key, value) in &rows {
                let row = query_list(
                    &tx,
                    &sql,
                    params![app, key, value, at, updated_by],
                    setting_from_row,
                )?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Unavailable("upsert returned no row".into()))?;
                stored.push(row);
            }
            tx.commit().map_err(db)?;
            Ok(stored)
        })
        .await
    }

    async fn delete_settings(&self, app: Option<&str>, keys: &[String]) -> Result<u64, StoreError> {
        codec::check_deletes(app, keys)?;
        let app = app.map(str::to_owned);
        let keys = keys.to_vec();
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let mut deleted = 0u64;
            for key in &keys {
                let n = tx
                    .execute(
                        "DELETE FROM settings \
                         WHERE COALESCE(app_name, '') = COALESCE(?1, '') AND key = ?2",
                        params![app, key],
                    )
                    .map_err(db)?;
                deleted += u64::try_from(n).unwrap_or(u64::MAX);
            }
            tx.commit().map_err(db)?;
            Ok(deleted)
        })
        .await
    }
}

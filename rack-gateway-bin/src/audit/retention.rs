//! Retention: old audit rows are deleted, but only up to the newest anchored seq, and the chain
//! keeps a checkpoint (the last deleted row's seq and MAC) from which verification starts.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rack_gateway_core::audit::{AuditEvent, ChainKey};
use rack_gateway_core::store::{PruneOutcome, Store, StoreError};
use serde_json::json;

/// How retention runs.
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    /// LOG_RETENTION_DAYS.
    pub days: u32,
    /// How often it runs (daily).
    pub interval: Duration,
    /// This instance, for the lease that keeps runs on one instance at a time.
    pub instance_id: String,
}

const LEASE: &str = "audit-retention";

/// One retention run. Returns `None` when nothing may be pruned (no anchor yet).
pub async fn prune_once(
    store: &dyn Store,
    key: &ChainKey,
    days: u32,
) -> Result<Option<PruneOutcome>, StoreError> {
    let Some((_, newest_anchor)) = store.latest_anchor().await? else {
        tracing::info!("audit retention: no anchor yet, so nothing can be pruned safely");
        return Ok(None);
    };
    let before = Utc::now() - chrono::Duration::days(i64::from(days));
    let outcome = store.prune_audit(newest_anchor.seq, before).await?;
    if outcome.deleted > 0 {
        let mut event = AuditEvent::system(
            "audit.prune",
            &format!(
                "retention of {days} days, bounded by the anchor at seq {}",
                newest_anchor.seq
            ),
        );
        event.details = rack_gateway_core::redact::canonical_json(&json!({
            "deleted": outcome.deleted,
            "checkpoint_seq": outcome.checkpoint.map(|c| c.seq),
        }));
        store.append_audit(key, vec![event]).await?;
        tracing::info!(deleted = outcome.deleted, "audit retention pruned old rows");
    }
    Ok(Some(outcome))
}

/// Runs retention now and then every interval, on whichever instance holds the lease.
pub fn spawn_retention(store: Arc<dyn Store>, key: ChainKey, config: RetentionConfig) {
    tokio::spawn(async move {
        loop {
            match store
                .try_lease(LEASE, &config.instance_id, config.interval)
                .await
            {
                Ok(true) => {
                    if let Err(error) = prune_once(store.as_ref(), &key, config.days).await {
                        tracing::error!(%error, "audit retention failed");
                    }
                }
                Ok(false) => tracing::debug!("audit retention runs on another instance"),
                Err(error) => tracing::error!(%error, "audit retention lease failed"),
            }
            tokio::time::sleep(config.interval).await;
        }
    });
}

//! Records of gateway actions taken outside a request: operator commands and start-up.

use rack_gateway_core::audit::AuditEvent;
use rack_gateway_core::store::Store;

use crate::config::AuditKeys;

/// Appends one `system` record for an operator action, durably, before returning.
pub async fn record_operator_action(
    store: &dyn Store,
    keys: &AuditKeys,
    action: &str,
    resource: &str,
    reason: &str,
) -> Result<u64, rack_gateway_core::store::StoreError> {
    let mut event = AuditEvent::system(action, reason);
    event.actor_name = "operator".to_owned();
    event.resource = Some(resource.to_owned());
    let records = store
        .append_audit(keys.keyring().current(), vec![event])
        .await?;
    Ok(records.first().map_or(0, |r| r.seq))
}

/// Records the changes an operator command makes, with the chain key checked up front so that
/// nothing changes unaudited.
pub struct OperatorAudit {
    store: std::sync::Arc<dyn Store>,
    keys: Option<AuditKeys>,
}

impl OperatorAudit {
    /// For a command that changes state when `keys` is `Some`; read-only commands pass `None`.
    pub fn new(store: std::sync::Arc<dyn Store>, keys: Option<AuditKeys>) -> Self {
        OperatorAudit { store, keys }
    }

    /// Appends the record durably.
    pub async fn record(&self, action: &str, resource: &str, reason: &str) -> anyhow::Result<()> {
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no audit key to record {action}"))?;
        record_operator_action(self.store.as_ref(), keys, action, resource, reason)
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("recording the change in the audit log: {e}"))
    }
}

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

//! Ends sessions past their limits and forgets old sign-ins, in the background.
//!
//! A session past its limit is refused on its next use whether or not the sweeper has run (the
//! resolver checks the limits on every request); the sweeper makes the end visible: the session
//! is marked ended and a `session.expire` record says when and why. Each session is ended by
//! one atomic update, so several instances sweeping at once record each expiry once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rack_gateway_core::audit::AuditEvent;
use rack_gateway_core::identity::{IdentityResolver, Session};
use rack_gateway_core::store::Store;
use rack_gateway_layers::audit::AuditWriter;
use serde_json::json;
use tokio::task::JoinHandle;

/// How often sessions are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Sweeps every `interval` until the handle is aborted (at shutdown, so that its audit writer
/// handle does not keep the audit queue open).
pub fn spawn(
    store: Arc<dyn Store>,
    resolver: Arc<IdentityResolver>,
    writer: AuditWriter,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            sweep_once(store.as_ref(), &resolver, &writer).await;
        }
    })
}

/// One sweep: expired sessions ended and recorded, expired sign-ins deleted.
pub async fn sweep_once(store: &dyn Store, resolver: &IdentityResolver, writer: &AuditWriter) {
    let now = Utc::now();
    match store.expire_sessions(&resolver.session_limits(), now).await {
        Ok(ended) => {
            for session in ended {
                if writer.record(expiry_event(&session)).await.is_err() {
                    tracing::error!("the audit queue refused a session.expire record");
                }
            }
        }
        Err(error) => tracing::warn!(%error, "sweeping expired sessions failed; retrying later"),
    }
    if let Err(error) = store.delete_expired_login_states(now).await {
        tracing::warn!(%error, "deleting expired sign-ins failed; retrying later");
    }
}

fn expiry_event(session: &Session) -> AuditEvent {
    let reason = session
        .revoked_reason
        .clone()
        .unwrap_or_else(|| "expired".to_owned());
    let mut event = AuditEvent::system("session.expire", &reason);
    event.resource = Some(format!("session/{}", session.public_id));
    event.details = json!({
        "user_id": session.user_id,
        "session_kind": session.kind.as_str(),
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
    })
    .to_string();
    event
}

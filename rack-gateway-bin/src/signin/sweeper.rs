//! Ends sessions past their limits and forgets old sign-ins, in the background.
//!
//! A session past its limit is refused on its next use whether or not the sweeper has run (the
//! resolver checks the limits on every request, and ends the session it finds expired); the
//! sweeper makes every end visible: sessions nobody used since their limit are ended here, and
//! each expiry, found here or by the resolver, gets a `session.expire` record saying when and
//! why. Each session is ended by one atomic update, and only the instance whose update ended it
//! records it, so several instances record each expiry once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rack_gateway_core::audit::AuditEvent;
use rack_gateway_core::identity::{IdentityResolver, SessionKind};
use rack_gateway_core::store::Store;
use rack_gateway_layers::audit::AuditWriter;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use uuid::Uuid;

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
    let mut announced = resolver.ended_sessions();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => sweep_once(store.as_ref(), &resolver, &writer).await,
                heard = announced.recv() => match heard {
                    Ok(ended) => {
                        let event = expiry_event(
                            ended.public_id,
                            ended.user_id,
                            ended.kind,
                            ended.end.reason(),
                            json!({}),
                        );
                        record(&writer, event).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::error!(missed, "session.expire records missed: too many at once");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    })
}

/// One sweep: expired sessions ended and recorded, expired sign-ins deleted.
pub async fn sweep_once(store: &dyn Store, resolver: &IdentityResolver, writer: &AuditWriter) {
    let now = Utc::now();
    match store.expire_sessions(&resolver.session_limits(), now).await {
        Ok(ended) => {
            for session in ended {
                let reason = session.revoked_reason.as_deref().unwrap_or("expired");
                let event = expiry_event(
                    session.public_id,
                    session.user_id,
                    session.kind,
                    reason,
                    json!({
                        "created_at": session.created_at,
                        "last_seen_at": session.last_seen_at,
                    }),
                );
                record(writer, event).await;
            }
        }
        Err(error) => tracing::warn!(%error, "sweeping expired sessions failed; retrying later"),
    }
    if let Err(error) = store.delete_expired_login_states(now).await {
        tracing::warn!(%error, "deleting expired sign-ins failed; retrying later");
    }
}

async fn record(writer: &AuditWriter, event: AuditEvent) {
    if writer.record(event).await.is_err() {
        tracing::error!("the audit queue refused a session.expire record");
    }
}

fn expiry_event(
    public_id: Uuid,
    user_id: i64,
    kind: SessionKind,
    reason: &str,
    mut details: Value,
) -> AuditEvent {
    let mut event = AuditEvent::system("session.expire", reason);
    event.resource = Some(format!("session/{public_id}"));
    details["user_id"] = json!(user_id);
    details["session_kind"] = json!(kind.as_str());
    event.details = details.to_string();
    event
}

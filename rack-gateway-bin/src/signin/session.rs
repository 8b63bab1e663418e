//! Opening a session for a user who has just signed in.

use std::sync::Arc;

use http::{header, HeaderMap, StatusCode};
use rack_gateway_core::identity::{
    NewSession, Principal, ResolveError, SessionKind, SessionSecret,
};
use rack_gateway_layers::draft::AuditDraft;
use serde_json::json;

use super::refusal::Refused;
use super::SignIn;

/// A session just opened: its secret (handed out once) and the principal it authenticates.
pub(crate) struct Opened {
    pub(crate) secret: SessionSecret,
    pub(crate) principal: Arc<Principal>,
}

/// Stores a new session of `kind` for the user with `user_id`, then resolves it the way every later request
/// will (so a user locked a moment ago does not leave with a session), and notes it in the
/// request's audit record.
pub(crate) async fn open(
    sign_in: &SignIn,
    draft: &AuditDraft,
    headers: &HeaderMap,
    user_id: i64,
    kind: SessionKind,
    device_name: Option<String>,
) -> Result<Opened, Refused> {
    let secret = SessionSecret::generate();
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let session = sign_in
        .store
        .insert_session(&NewSession {
            user_id,
            kind,
            hash: secret.hash(),
            ip: draft.client_ip(),
            user_agent,
            device_name,
        })
        .await
        .map_err(|error| Refused::unavailable("the session store", &error))?;
    let principal = match sign_in.resolver.resolve_session(secret.expose()).await {
        Ok(principal) => principal,
        Err(error) => {
            // The session must not outlive the refusal.
            let _ = sign_in
                .store
                .revoke_session(session.public_id, "refused at sign-in")
                .await;
            return Err(match error {
                ResolveError::Refused(reason) => Refused::page(StatusCode::FORBIDDEN, reason),
                ResolveError::Store(error) => Refused::unavailable("the session store", &error),
            });
        }
    };
    draft.set_principal(Arc::clone(&principal));
    draft.set_resource(format!("session/{}", session.public_id));
    draft.add_detail("session_kind", json!(kind.as_str()));
    draft.add_detail("session_id", json!(session.public_id.to_string()));
    Ok(Opened { secret, principal })
}

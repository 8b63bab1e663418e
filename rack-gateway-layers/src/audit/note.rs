//! The per-request record that inner layers fill in for the audit layer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rack_gateway_core::audit::{AuditDecision, AuditEvent, Phase};
use rack_gateway_core::identity::Principal;

use crate::authz::Decision;

/// The socket peer of a request; the server puts it in every request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// What the audit layer knows about the request before inner layers run.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestMeta {
    pub(crate) request_id: String,
    pub(crate) method: String,
    /// Path without the proxy prefix, with the query string redacted.
    pub(crate) path: String,
    pub(crate) client_ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) websocket: bool,
    /// The exec `Command` header, redacted.
    pub(crate) command: Option<String>,
}

/// How the intent record of a mutating request went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum IntentState {
    /// No intent record (not mutating, or refused before).
    #[default]
    None,
    /// Durable at this seq.
    Durable(u64),
    /// Queued without waiting (websocket log streams).
    Queued,
    /// The audit store could not take it; the request was not forwarded.
    Failed,
}

#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) meta: RequestMeta,
    pub(crate) principal: Option<Arc<Principal>>,
    pub(crate) auth_failure: Option<String>,
    pub(crate) decision: Option<Decision>,
    pub(crate) intent: IntentState,
}

/// Shared between the audit layer and the layers inside it for one request.
#[derive(Clone, Debug, Default)]
pub struct AuditNote(Arc<Mutex<Facts>>);

impl AuditNote {
    pub(crate) fn new(meta: RequestMeta) -> Self {
        AuditNote(Arc::new(Mutex::new(Facts {
            meta,
            ..Facts::default()
        })))
    }

    pub(crate) fn facts(&self) -> MutexGuard<'_, Facts> {
        // The facts are plain data: a panic elsewhere cannot leave them half-updated in a way
        // that matters more than losing the record would.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records who the request was authenticated as.
    pub fn set_principal(&self, principal: Arc<Principal>) {
        self.facts().principal = Some(principal);
    }

    /// Records why authentication refused the request.
    pub fn set_auth_failure(&self, reason: &str) {
        self.facts().auth_failure = Some(reason.to_owned());
    }

    /// An extra `complete` record about this request (e.g. one `env.set` per changed key),
    /// with the request's actor, client and path; `details` must be redacted canonical JSON.
    pub fn derived_event(
        &self,
        action: &str,
        resource: Option<String>,
        decision: AuditDecision,
        reason: &str,
        details: String,
    ) -> AuditEvent {
        let facts = self.facts();
        let mut event = super::event::base(&facts, Phase::Complete);
        event.action = action.to_owned();
        event.resource = resource;
        event.decision = decision;
        event.reason = reason.to_owned();
        event.http_status = 200;
        event.details = details;
        event
    }

    /// Records the authorization decision.
    pub fn set_decision(&self, decision: &Decision) {
        self.facts().decision = Some(decision.clone());
    }
}

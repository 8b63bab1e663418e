//! The draft of a request's audit records, which inner layers and handlers fill in and the audit
//! layer writes.
//!
//! The audit layer puts an [`AuditDraft`] in the request extensions; authentication notes the
//! principal, authorization the decision, redaction and handlers the resource, details and any
//! further records. The records themselves are built from the draft in one place (the private
//! `draft::event` module).
//!
//! ```
//! use rack_gateway_layers::draft::AuditDraft;
//!
//! # fn handler(request: &http::Request<()>) {
//! if let Some(draft) = request.extensions().get::<AuditDraft>() {
//!     draft.set_resource("web");
//!     draft.add_detail("scope", serde_json::json!("app"));
//! }
//! # }
//! ```

pub(crate) mod event;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rack_gateway_core::audit::{AuditDecision, AuditEvent, Phase};
use rack_gateway_core::identity::Principal;
use serde_json::{Map, Value};

use crate::decision::Decision;

/// What the audit layer knows about the request before inner layers run.
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(feature = "audit"), allow(dead_code))]
pub(crate) struct RequestMeta {
    pub(crate) request_id: String,
    pub(crate) method: String,
    /// Path without the prefix, with the query string redacted (or left out).
    pub(crate) path: String,
    pub(crate) client_ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) websocket: bool,
    /// The exec `Command` header, redacted.
    pub(crate) command: Option<String>,
}

/// How the intent record of a mutating request went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "audit"), allow(dead_code))]
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

/// What a handler or an inner layer added to the request's records.
#[derive(Debug, Default)]
pub(crate) struct Annotations {
    /// Replaces the route's action (e.g. `secret.read` for an env read that shows secrets).
    pub(crate) action: Option<String>,
    /// Replaces the resource derived from the route.
    pub(crate) resource: Option<String>,
    /// Replaces the route's grant as the reason of an allowed request (the permission the
    /// handler checked, say).
    pub(crate) reason: Option<String>,
    /// Extra fields of `details`.
    pub(crate) details: Map<String, Value>,
    /// The `complete` record must be durable before the response leaves.
    pub(crate) durable: bool,
    /// Records about this request still to be written, with its next record.
    pub(crate) derived: Vec<AuditEvent>,
}

/// Everything known about the request so far.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub(crate) meta: RequestMeta,
    pub(crate) principal: Option<Arc<Principal>>,
    pub(crate) auth_failure: Option<String>,
    pub(crate) decision: Option<Decision>,
    pub(crate) intent: IntentState,
    pub(crate) annotations: Annotations,
}

/// The draft of one request's audit records, shared between the audit layer and the layers and
/// handlers inside it.
///
/// Inner code finds it in the request extensions and says what the record cannot know from the
/// request alone: who the caller is, what was decided, which resource was touched, and any
/// further records the request causes (one per changed env key, say).
#[derive(Clone, Debug, Default)]
pub struct AuditDraft(Arc<Mutex<Draft>>);

impl AuditDraft {
    #[cfg_attr(not(feature = "audit"), allow(dead_code))]
    pub(crate) fn new(meta: RequestMeta) -> Self {
        AuditDraft(Arc::new(Mutex::new(Draft {
            meta,
            ..Draft::default()
        })))
    }

    pub(crate) fn facts(&self) -> MutexGuard<'_, Draft> {
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

    /// Records the authorization decision.
    pub fn set_decision(&self, decision: &Decision) {
        self.facts().decision = Some(decision.clone());
    }

    /// Replaces the action of the request's records (the route's action by default).
    pub fn set_action(&self, action: &str) {
        self.facts().annotations.action = Some(action.to_owned());
    }

    /// Sets the reason recorded when the request is allowed (by default, the route's grant).
    pub fn set_reason(&self, reason: &str) {
        self.facts().annotations.reason = Some(reason.to_owned());
    }

    /// Sets the resource of the request's records (`app`, `app/KEY`, …).
    pub fn set_resource(&self, resource: impl Into<String>) {
        self.facts().annotations.resource = Some(resource.into());
    }

    /// Adds a field to the `details` of the request's records. The value must hold no secret
    /// (details are readable with `gateway:audit_log:read`).
    pub fn add_detail(&self, key: &str, value: Value) {
        self.facts()
            .annotations
            .details
            .insert(key.to_owned(), value);
    }

    /// Asks for the `complete` record to be durable before the response leaves (503 and the
    /// response withheld when it cannot be); for responses that reveal secrets.
    pub fn require_durable(&self) {
        self.facts().annotations.durable = true;
    }

    /// Adds a further record about this request, written together with its next record: with
    /// the durable intent when one is still to be written (so both are on the record before
    /// the rack is called), else with the `complete` record.
    pub fn add_record(&self, event: AuditEvent) {
        self.facts().annotations.derived.push(event);
    }

    /// The client's address as the audit layer settled it (the peer, or the forwarded client
    /// of a trusted proxy).
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.facts().meta.client_ip.as_deref()?.parse().ok()
    }

    /// The durable intent's seq, once it is written.
    pub fn intent_seq(&self) -> Option<u64> {
        match self.facts().intent {
            IntentState::Durable(seq) => Some(seq),
            _ => None,
        }
    }

    /// A record about this request (e.g. one `env.set` per changed key) with the request's
    /// actor, client and path; `details` must be redacted canonical JSON. Pass it to
    /// [`add_record`](Self::add_record).
    pub fn derived_event(
        &self,
        action: &str,
        resource: Option<String>,
        decision: AuditDecision,
        reason: &str,
        details: String,
    ) -> AuditEvent {
        let facts = self.facts();
        let mut event = event::base(&facts, Phase::Complete);
        event.action = action.to_owned();
        event.resource = resource;
        event.decision = decision;
        event.reason = reason.to_owned();
        event.details = details;
        event
    }
}

//! The one place that turns a request's draft into audit events: its intent, its complete
//! record, and the base every further record starts from.

// Only the audit layer writes intents and complete records; the rest of the crate builds
// further records from the base.
#![cfg_attr(not(feature = "audit"), allow(dead_code))]

use rack_gateway_core::audit::{ActorKind, AuditDecision, AuditEvent, Phase};
use rack_gateway_core::rbac::Outcome as RbacOutcome;
use serde_json::{json, Value};

use super::{Draft, IntentState};
use crate::relay::RelayStats;

/// How the request ended, as seen by the audit layer.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    pub(crate) status: u16,
    pub(crate) latency_ms: u64,
    /// The reason of a response the gateway made itself ([`GatewayReason`](crate::body::GatewayReason)).
    pub(crate) gateway_reason: Option<String>,
    pub(crate) relay: Option<RelayStats>,
    /// The client went away before the response was ready.
    pub(crate) abandoned: bool,
}

/// The status recorded for a request whose client closed the connection first (nginx's
/// convention; no response was sent).
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// The `intent` record of an allowed mutating request.
pub(crate) fn intent_event(facts: &Draft) -> AuditEvent {
    let mut event = base(facts, Phase::Intent);
    event.decision = AuditDecision::Allow;
    event.reason = facts.annotations.reason.clone().unwrap_or_else(|| {
        facts
            .decision
            .as_ref()
            .map(|d| d.reason.clone())
            .unwrap_or_default()
    });
    event.details = details(facts, None, None);
    event
}

/// The `complete` record of a request.
pub(crate) fn complete_event(facts: &Draft, ending: &Completion) -> AuditEvent {
    let mut event = base(facts, Phase::Complete);
    event.http_status = ending.status;
    event.latency_ms = ending.latency_ms;
    let (decision, mut reason) = decide(facts, ending);
    if ending.abandoned {
        reason = if reason.is_empty() {
            ABANDONED.to_owned()
        } else {
            format!("{ABANDONED}; {reason}")
        };
    }
    event.decision = decision;
    event.reason = reason;
    let intent_seq = match facts.intent {
        IntentState::Durable(seq) => Some(seq),
        _ => None,
    };
    event.details = details(facts, ending.relay.as_ref(), intent_seq);
    event
}

const ABANDONED: &str = "client closed the connection before the response";

fn decide(facts: &Draft, ending: &Completion) -> (AuditDecision, String) {
    let gateway_reason = || ending.gateway_reason.clone().unwrap_or_default();
    if let Some(failure) = &facts.auth_failure {
        return (
            AuditDecision::Deny,
            format!("authentication failed: {failure}"),
        );
    }
    match &facts.decision {
        Some(decision) if decision.outcome != RbacOutcome::Allow => {
            (AuditDecision::Deny, decision.reason.clone())
        }
        Some(_) if facts.intent == IntentState::Failed => (
            AuditDecision::Error,
            format!("not forwarded: {}", gateway_reason()),
        ),
        Some(decision) if ending.status >= 500 && ending.gateway_reason.is_some() => (
            AuditDecision::Error,
            format!("{}; {}", gateway_reason(), decision.reason),
        ),
        // Allowed by the route, then refused by the handler or an inner layer.
        Some(_) if ending.status >= 400 && ending.gateway_reason.is_some() => {
            (AuditDecision::Deny, gateway_reason())
        }
        Some(decision) => (
            AuditDecision::Allow,
            facts
                .annotations
                .reason
                .clone()
                .unwrap_or_else(|| decision.reason.clone()),
        ),
        None if ending.status >= 500 => (AuditDecision::Error, gateway_reason()),
        None => (AuditDecision::Deny, gateway_reason()),
    }
}

pub(crate) fn base(facts: &Draft, phase: Phase) -> AuditEvent {
    let meta = &facts.meta;
    let mut event = AuditEvent {
        request_id: meta.request_id.clone(),
        actor_kind: ActorKind::Anonymous,
        actor_email: String::new(),
        actor_name: String::new(),
        token_id: None,
        token_name: None,
        client_ip: meta.client_ip.clone(),
        user_agent: meta.user_agent.clone(),
        action: facts
            .annotations
            .action
            .clone()
            .unwrap_or_else(|| action(facts)),
        phase,
        resource: facts
            .annotations
            .resource
            .clone()
            .or_else(|| resource(facts)),
        method: Some(if meta.websocket {
            "SOCKET".to_owned()
        } else {
            meta.method.clone()
        }),
        path: Some(meta.path.clone()),
        decision: AuditDecision::Allow,
        reason: String::new(),
        http_status: 0,
        latency_ms: 0,
        details: "{}".to_owned(),
    };
    event.set_actor(facts.principal.as_deref());
    event
}

fn action(facts: &Draft) -> String {
    if facts.auth_failure.is_some() {
        return "auth.failed".to_owned();
    }
    match &facts.decision {
        Some(decision) => match (&decision.route, decision.outcome) {
            (Some(matched), _) => matched.route.action.to_string(),
            (None, RbacOutcome::BadRequest) => "route.bad_path".to_owned(),
            (None, _) => "route.unknown".to_owned(),
        },
        None => "request.unclassified".to_owned(),
    }
}

/// `app`, or `app/<id>` for routes below an app, or the id for routes without one.
fn resource(facts: &Draft) -> Option<String> {
    let matched = facts.decision.as_ref()?.route.as_ref()?;
    let others: Vec<&str> = matched
        .params
        .iter()
        .skip(usize::from(matched.app.is_some()))
        .map(|(_, value)| value.as_str())
        .collect();
    match (&matched.app, others.last()) {
        (Some(app), Some(id)) => Some(format!("{app}/{id}")),
        (Some(app), None) => Some(app.clone()),
        (None, Some(id)) => Some((*id).to_owned()),
        (None, None) => None,
    }
}

fn details(facts: &Draft, relay: Option<&RelayStats>, intent_seq: Option<u64>) -> String {
    let mut map = facts.annotations.details.clone();
    if let Some(command) = &facts.meta.command {
        map.insert("command".into(), Value::String(command.clone()));
    }
    if let Some(seq) = intent_seq {
        map.insert("intent_seq".into(), json!(seq));
    }
    if let Some(relay) = relay {
        map.insert(
            "websocket".into(),
            json!({
                "bytes_from_client": relay.client_to_rack,
                "bytes_to_client": relay.rack_to_client,
                "duration_ms": relay.duration.as_millis() as u64,
                "closed_by_gateway": relay.closed_by_gateway,
            }),
        );
    }
    rack_gateway_core::redact::canonical_json(&Value::Object(map))
}

//! Who is calling the API, checked like on the proxy, and how their calls are audited.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use rack_gateway_core::audit::{ActorKind, AuditDecision, AuditEvent, Phase};
use rack_gateway_core::identity::{Principal, ResolveError};
use rack_gateway_core::rbac::authorize;
use rack_gateway_layers::audit::PeerAddr;
use rack_gateway_layers::authn::{parse_authorization, Credential};

use super::{ApiError, ApiState};

/// What is recorded about an API call besides the principal.
#[derive(Clone, Debug, Default)]
pub(super) struct CallMeta {
    request_id: String,
    method: String,
    path: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
}

/// An authenticated API caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: Arc<Principal>,
    meta: CallMeta,
}

fn describe(parts: &Parts) -> CallMeta {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    CallMeta {
        request_id: header("x-request-id").unwrap_or_default(),
        method: parts.method.as_str().to_owned(),
        // The query is left out: filters are in the details of the record instead.
        path: parts.uri.path().to_owned(),
        client_ip: parts
            .extensions
            .get::<PeerAddr>()
            .map(|p| p.0.ip().to_string()),
        user_agent: header("user-agent"),
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let meta = describe(parts);
        let refuse = |reason: &str| {
            record(
                state,
                &meta,
                None,
                "auth.failed",
                AuditDecision::Deny,
                reason,
                401,
                "{}".into(),
            );
            ApiError::new(StatusCode::UNAUTHORIZED, reason)
        };
        let token = match parse_authorization(&parts.headers) {
            Ok(Credential::ApiToken(token)) => token,
            Ok(Credential::Session(_)) => return Err(refuse("invalid or expired session token")),
            Err(error) => return Err(refuse(&error.to_string())),
        };
        match state.resolver.resolve_api_token(&token).await {
            Ok(principal) => Ok(Caller { principal, meta }),
            Err(ResolveError::Refused(reason)) => Err(refuse(reason)),
            Err(ResolveError::Store(error)) => Err(ApiError::unavailable("identity store", &error)),
        }
    }
}

impl Caller {
    /// Checks a permission; a refusal is audited as `action` and answered 403.
    pub fn require(
        &self,
        state: &ApiState,
        permission: &str,
        action: &str,
    ) -> Result<(), ApiError> {
        match authorize(&self.principal.access(), permission) {
            Ok(_) => Ok(()),
            Err(denial) => {
                let reason = format!("permission denied: {}", denial.0);
                self.audit(
                    state,
                    action,
                    AuditDecision::Deny,
                    &reason,
                    403,
                    "{}".into(),
                );
                Err(ApiError::new(StatusCode::FORBIDDEN, reason))
            }
        }
    }

    /// The audit event of this call, for handlers that set more columns (resource, phase) or
    /// wait for it to be durable before acting.
    pub fn event(
        &self,
        action: &str,
        decision: AuditDecision,
        reason: &str,
        status: u16,
        details: String,
    ) -> AuditEvent {
        build_event(
            &self.meta,
            Some(&self.principal),
            action,
            decision,
            reason,
            status,
            details,
        )
    }

    /// The X-Request-ID of the call (set by the dispatcher when the client sent none).
    pub fn request_id(&self) -> &str {
        &self.meta.request_id
    }

    /// Records a call that failed after authorization (4xx as deny, 5xx as error) and returns
    /// the error, so that refused and failed calls leave a record too.
    pub fn audit_failure(
        &self,
        state: &ApiState,
        action: &str,
        details: String,
        error: ApiError,
    ) -> ApiError {
        let decision = if error.status.is_server_error() {
            AuditDecision::Error
        } else {
            AuditDecision::Deny
        };
        self.audit(
            state,
            action,
            decision,
            &error.message,
            error.status.as_u16(),
            details,
        );
        error
    }

    /// Records the call (queued; never dropped).
    pub fn audit(
        &self,
        state: &ApiState,
        action: &str,
        decision: AuditDecision,
        reason: &str,
        status: u16,
        details: String,
    ) {
        record(
            state,
            &self.meta,
            Some(&self.principal),
            action,
            decision,
            reason,
            status,
            details,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    state: &ApiState,
    meta: &CallMeta,
    principal: Option<&Principal>,
    action: &str,
    decision: AuditDecision,
    reason: &str,
    status: u16,
    details: String,
) {
    let event = build_event(meta, principal, action, decision, reason, status, details);
    let writer = state.writer.clone();
    tokio::spawn(async move {
        if let Err(error) = writer.record(event).await {
            tracing::error!(%error, "could not queue the audit record of an API call");
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn build_event(
    meta: &CallMeta,
    principal: Option<&Principal>,
    action: &str,
    decision: AuditDecision,
    reason: &str,
    status: u16,
    details: String,
) -> AuditEvent {
    let mut event = AuditEvent {
        request_id: meta.request_id.clone(),
        actor_kind: ActorKind::Anonymous,
        actor_email: String::new(),
        actor_name: String::new(),
        token_id: None,
        token_name: None,
        client_ip: meta.client_ip.clone(),
        user_agent: meta.user_agent.clone(),
        action: action.to_owned(),
        phase: Phase::Complete,
        resource: None,
        method: Some(meta.method.clone()),
        path: Some(meta.path.clone()),
        decision,
        reason: reason.to_owned(),
        http_status: status,
        latency_ms: 0,
        details,
    };
    event.set_actor(principal);
    event
}

//! Who is calling the API, as the layers in front of it established, and the call's audit note.
//!
//! Authentication, the per-route permission and the call's `complete` audit record belong to
//! the layers the API sits behind (the same ones as the proxy: audit, rescue, authenticate,
//! authorize with the API's route table). A handler only adds what the layers cannot know:
//! further permission checks that depend on the request, the resource, details, and records of
//! its own (one per changed key, say).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use rack_gateway_core::audit::{AuditDecision, AuditEvent};
use rack_gateway_core::identity::Principal;
use rack_gateway_core::rbac::authorize;
use rack_gateway_layers::draft::AuditDraft;
use serde_json::Value;

use super::ApiError;

/// An authenticated API caller and the audit note of the call.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: Arc<Principal>,
    /// The call's audit note (its `complete` record is written by the audit layer).
    pub note: AuditDraft,
    request_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Both are put there by the layers in front of the router; without them the stack is
        // assembled wrongly, and nothing must be served.
        let principal = parts.extensions.get::<Arc<Principal>>().cloned();
        let note = parts.extensions.get::<AuditDraft>().cloned();
        let (Some(principal), Some(note)) = (principal, note) else {
            tracing::error!("API handler reached without the authentication and audit layers");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal gateway error",
            ));
        };
        let request_id = parts
            .headers
            .get("x-request-id")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Ok(Caller {
            principal,
            note,
            request_id,
        })
    }
}

impl Caller {
    /// Checks a permission the route alone does not decide; a refusal is 403 with the reason
    /// (recorded as the call's decision).
    pub fn require(&self, permission: &str) -> Result<String, ApiError> {
        authorize(&self.principal.access(), permission)
            .map(|grant| grant.0)
            .map_err(|denial| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("permission denied: {}", denial.0),
                )
            })
    }

    /// Adds the fields of a JSON object to the call's record details (values must hold no
    /// secret).
    pub fn details(&self, details: Value) {
        if let Value::Object(map) = details {
            for (key, value) in map {
                self.note.add_detail(&key, value);
            }
        }
    }

    /// Sets the resource of the call's record.
    pub fn resource(&self, resource: impl Into<String>) {
        self.note.set_resource(resource);
    }

    /// A further record about this call (add it with [`AuditDraft::add_record`]).
    pub fn event(
        &self,
        action: &str,
        decision: AuditDecision,
        reason: &str,
        details: String,
    ) -> AuditEvent {
        self.note
            .derived_event(action, None, decision, reason, details)
    }

    /// The X-Request-ID of the call (set by the dispatcher when the client sent none).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

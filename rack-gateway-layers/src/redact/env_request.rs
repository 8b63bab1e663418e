//! What the redaction layer knows about one request: its route, its caller's env permissions,
//! and the audit draft its refusals are noted in.

use std::sync::Arc;

use http::{Response, StatusCode};
use rack_gateway_core::identity::Principal;
use rack_gateway_core::rbac::Outcome;

use super::access::EnvAccess;
use super::mask::MaskScope;
use super::Config;
use crate::body::{refusal, GatewayBody};
use crate::decision::Decision;
use crate::draft::AuditDraft;

/// One request through the redaction layer.
#[derive(Clone, Debug)]
pub(crate) struct EnvRequest {
    pub(crate) decision: Decision,
    pub(crate) draft: Option<AuditDraft>,
    pub(crate) principal: Option<Arc<Principal>>,
    pub(crate) access: EnvAccess,
}

impl EnvRequest {
    /// A refusal response, also noted in the audit draft as the decision with `audit_reason`.
    pub(crate) fn refuse<B>(
        &self,
        status: StatusCode,
        reason: &str,
        audit_reason: &str,
    ) -> Response<GatewayBody<B>> {
        if let Some(draft) = &self.draft {
            let outcome = if status == StatusCode::FORBIDDEN {
                Outcome::Deny
            } else {
                Outcome::BadRequest
            };
            draft.set_decision(&Decision {
                outcome,
                reason: audit_reason.to_owned(),
                ..self.decision.clone()
            });
        }
        refusal(status, reason)
    }

    /// The route's `{app}`.
    pub(crate) fn app(&self) -> Option<&str> {
        self.decision.route.as_ref()?.app.as_deref()
    }

    /// Whether the route's responses may carry env values this caller may not see in full.
    pub(crate) fn needs_masking(&self) -> bool {
        !self.access.reads_secrets()
            && self
                .decision
                .route
                .as_ref()
                .is_some_and(|matched| matched.route.carries_env)
    }

    /// The masking scope for this caller.
    pub(crate) fn scope<'a>(&'a self, config: &'a Config) -> MaskScope<'a> {
        MaskScope {
            rules: &config.rules,
            policy: &*config.policy,
            reveal: self.access.reveal(),
            app: self.app(),
        }
    }
}

//! The one place that writes per-key env records: one per changed key, into the request's audit
//! draft, so that they are made durable together with its intent, before the rack sees the
//! change (release creates on the proxy, and env API updates alike).
//!
//! Values are never recorded (the audit log is readable without `convox:env:read`), only
//! whether the key had a value before and has one after.

use rack_gateway_core::audit::{AuditDecision, Phase};
use rack_gateway_core::redact::{canonical_json, REDACTED};
use serde_json::json;

use super::access::EnvAccess;
use super::merge::{ChangeKind, MergedEnv};
use crate::draft::AuditDraft;

/// Adds one `env.set`, `env.unset`, `secret.set` or `secret.unset` record per change of
/// `merged` to `draft` (resource `app/KEY`, phase `intent`, details `{"new":…,"old":…}` holding
/// `[REDACTED]` or `null`).
pub fn record_env_changes(draft: &AuditDraft, app: &str, merged: &MergedEnv, access: &EnvAccess) {
    for change in &merged.changes {
        let details = json!({
            "old": change.existed.then_some(REDACTED),
            "new": (change.kind == ChangeKind::Set).then_some(REDACTED),
        });
        let grant = if change.secret {
            &access.secret_set
        } else {
            &access.env_set
        };
        let mut event = draft.derived_event(
            change.action(),
            Some(format!("{app}/{}", change.key)),
            AuditDecision::Allow,
            grant.as_deref().unwrap_or_default(),
            canonical_json(&details),
        );
        event.phase = Phase::Intent;
        draft.add_record(event);
    }
}

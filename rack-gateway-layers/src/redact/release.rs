//! `POST /apps/{app}/releases`: strict form, env merge, checks, canonical re-encoding, and one
//! record per changed key in the request's durable intent.
//!
//! Fails closed: the body must be exactly one well-formed `application/x-www-form-urlencoded`
//! form ([`form`](super::form)), or empty without a `Content-Type`; anything else is refused
//! before the rack is called, whatever the rack would make of it. What the rack receives is the
//! gateway's own encoding of the form it read, so both read the same env.

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Request, Response, StatusCode};
use rack_gateway_core::audit::{AuditDecision, Phase};
use rack_gateway_core::redact::{canonical_json, EnvMap, REDACTED};
use serde_json::json;

use super::collect::{collect_limited, Collected};
use super::fetch::{fetch_env, RackCall};
use super::form::{self, Declared, FormError};
use super::layer::{call, identity_encoding, needs_masking, Config, Ctx, Inner};
use super::merge::{merge_env, ChangeKind, MergeRules, MergedEnv};
use super::response::{busy, mask_response};
use crate::body::{self, refusal, Body};
use crate::error::BoxError;
use crate::forward::RackPath;

/// The route action of a release create.
pub(crate) const ACTION: &str = "release.create";

/// The form field that carries the env.
const ENV_FIELD: &str = "env";

/// Handles a release create: a form without an `env` field passes (re-encoded) unchanged.
pub(crate) async fn create<B>(
    config: &Config,
    ctx: &Ctx,
    inner: Inner,
    parts: Parts,
    rack_body: B,
) -> Result<Response<Body>, BoxError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // Convox reads `env` from the query string too (Go's FormValue): only the body may carry it.
    let query = parts
        .extensions
        .get::<RackPath>()
        .and_then(|path| path.0.split_once('?').map(|(_, query)| query.to_owned()));
    for query in [query.as_deref(), parts.uri.query()].into_iter().flatten() {
        // Read strictly too: a query the rack might split differently (`;`) is refused.
        let reason = match form::parse(query.as_bytes()) {
            Ok(pairs) if pairs.iter().any(|(name, _)| name == ENV_FIELD) => {
                "Send env in the form body, not in the query string."
            }
            Ok(_) => continue,
            Err(_) => "The query string is malformed.",
        };
        return Ok(ctx.refuse(StatusCode::BAD_REQUEST, reason, reason));
    }
    let refuse_form = |error: FormError| {
        let reason = error.to_string();
        ctx.refuse(error.status(), &reason, &reason)
    };
    let declared = match form::declared(&parts.headers) {
        Ok(declared) => declared,
        Err(error) => return Ok(refuse_form(error)),
    };
    // Without a Content-Type only an empty body is acceptable: nothing to read, nothing to set.
    let limit = match declared {
        Declared::Nothing => 0,
        Declared::Form => config.form_limit,
    };
    let (bytes, _claim) = match collect_limited(rack_body, limit, &config.budget).await? {
        Collected::Whole(bytes, claim) => (bytes, claim),
        Collected::Busy => return Ok(busy()),
        Collected::TooLarge if declared == Declared::Nothing => {
            return Ok(refuse_form(FormError::MediaType))
        }
        Collected::TooLarge => {
            let too_large = format!(
                "Request body too large (limit {} bytes).",
                config.form_limit
            );
            return Ok(ctx.refuse(StatusCode::PAYLOAD_TOO_LARGE, &too_large, &too_large));
        }
    };
    let pairs = match form::parse(&bytes) {
        Ok(pairs) => pairs,
        Err(error) => return Ok(refuse_form(error)),
    };
    drop(bytes);
    let posted: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name == ENV_FIELD)
        .map(|(_, value)| value.as_str())
        .collect();
    let posted = match posted.as_slice() {
        [] => {
            let encoded = form::encode(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            return forward(
                config,
                ctx,
                inner,
                with_form(parts, declared, &encoded),
                encoded,
            )
            .await;
        }
        [one] => EnvMap::parse(one),
        _ => {
            let reason = "The env form field was sent more than once.";
            return Ok(ctx.refuse(StatusCode::BAD_REQUEST, reason, reason));
        }
    };
    let Some(app) = ctx.app().map(str::to_owned) else {
        return Err(BoxError::from("release create route without an app"));
    };

    let call = RackCall {
        principal: ctx.principal.clone(),
        request_id: parts.headers.get("x-request-id").cloned(),
        limit: config.response_limit,
        timeout: config.fetch_timeout,
        budget: Some(config.budget.clone()),
    };
    let base = match fetch_env(&config.rack, &call, &app).await {
        Ok(base) => base,
        Err(error) => {
            tracing::warn!(%app, %error, "release create refused: current env unavailable");
            return Ok(refusal(
                StatusCode::BAD_GATEWAY,
                &format!("could not read the current environment from the rack: {error}"),
            ));
        }
    };
    let protected = config.policy.protected_keys(&app);
    let app_secrets = config.policy.secret_keys(&app);
    let merged = match merge_env(
        &base,
        &posted,
        MergeRules {
            rules: &config.rules,
            app_secrets: &app_secrets,
            protected: &protected,
            access: &ctx.access,
        },
    ) {
        Ok(merged) => merged,
        Err(refused) => {
            return Ok(ctx.refuse(
                refused.status(),
                &refused.to_string(),
                &refused.audit_reason(),
            ))
        }
    };
    drop(base);

    let env_text = merged.env.serialize();
    let encoded = form::encode(pairs.iter().map(|(name, value)| {
        if name == ENV_FIELD {
            (name.as_str(), env_text.as_str())
        } else {
            (name.as_str(), value.as_str())
        }
    }));
    drop(env_text);
    add_change_records(ctx, &app, &merged);
    forward(
        config,
        ctx,
        inner,
        with_form(parts, declared, &encoded),
        encoded,
    )
    .await
}

/// The request head for the re-encoded form: its exact length, the plain form media type (when
/// the client declared one; an empty body without one stays without), no transfer coding.
fn with_form(mut parts: Parts, declared: Declared, encoded: &str) -> Parts {
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.remove(header::CONTENT_TYPE);
    if declared == Declared::Form {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(encoded.len()));
    parts
}

/// Forwards the request and masks the release the rack answers with.
async fn forward(
    config: &Config,
    ctx: &Ctx,
    inner: Inner,
    parts: Parts,
    encoded: String,
) -> Result<Response<Body>, BoxError> {
    let request = Request::from_parts(parts, body::full(encoded));
    if !needs_masking(ctx) {
        return call(inner, request).await;
    }
    let response = call(inner, identity_encoding(request)).await?;
    mask_response(
        response,
        &ctx.scope(config),
        config.response_limit,
        &config.budget,
    )
    .await
}

/// One record per changed key, added to the request's note so that it is written with the
/// request's durable intent, before the rack sees the change. Values are never recorded (the
/// audit log is readable without `convox:env:read`), only whether the key had a value before
/// and has one after.
fn add_change_records(ctx: &Ctx, app: &str, merged: &MergedEnv) {
    let Some(note) = &ctx.note else {
        return;
    };
    for change in &merged.changes {
        let details = json!({
            "old": change.existed.then_some(REDACTED),
            "new": (change.kind == ChangeKind::Set).then_some(REDACTED),
        });
        let grant = if change.secret {
            &ctx.access.secret_set
        } else {
            &ctx.access.env_set
        };
        let mut event = note.derived_event(
            change.action(),
            Some(format!("{app}/{}", change.key)),
            AuditDecision::Allow,
            grant.as_deref().unwrap_or_default(),
            canonical_json(&details),
        );
        event.phase = Phase::Intent;
        note.add_record(event);
    }
}

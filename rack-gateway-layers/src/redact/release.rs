//! `POST /apps/{app}/releases` with an `env` form field: merge, check, re-encode, audit.

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Request, Response, StatusCode};
use rack_gateway_core::audit::AuditDecision;
use rack_gateway_core::redact::{canonical_json, EnvMap, REDACTED};
use serde_json::json;

use super::collect::{collect_limited, Collected};
use super::fetch::{fetch_env, RackCall};
use super::layer::{call, identity_encoding, needs_masking, Config, Ctx, Inner};
use super::merge::{merge_env, ChangeKind, MergeRules, MergedEnv};
use super::response::mask_response;
use crate::body::{self, refusal, Body};
use crate::error::BoxError;
use crate::forward::RackPath;

/// The route action of a release create.
pub(crate) const ACTION: &str = "release.create";

/// The form field that carries the env.
const ENV_FIELD: &str = "env";

/// Handles a release create: requests without an `env` field pass through unchanged.
pub(crate) async fn create<B>(
    config: &Config,
    ctx: &Ctx,
    inner: Inner,
    mut parts: Parts,
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
    let env_in_query = [query.as_deref(), parts.uri.query()]
        .into_iter()
        .flatten()
        .any(|query| has_env_field(query.as_bytes()));
    if env_in_query {
        let reason = "Send env in the form body, not in the query string.";
        return Ok(ctx.refuse(StatusCode::BAD_REQUEST, reason, reason));
    }
    match form_kind(&parts) {
        FormKind::Multipart => {
            let reason = "Release create must be sent as application/x-www-form-urlencoded.";
            return Ok(ctx.refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason, reason));
        }
        // The rack reads no form values from other bodies.
        FormKind::Other => return forward(config, ctx, inner, parts, body::boxed(rack_body)).await,
        FormKind::UrlEncoded => {}
    }
    let too_large = format!(
        "Request body too large (limit {} bytes).",
        config.form_limit
    );
    let bytes = match collect_limited(rack_body, config.form_limit).await? {
        Collected::Whole(bytes) => bytes,
        Collected::TooLarge => {
            return Ok(ctx.refuse(StatusCode::PAYLOAD_TOO_LARGE, &too_large, &too_large))
        }
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let posted: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name == ENV_FIELD)
        .map(|(_, value)| value.as_str())
        .collect();
    let posted = match posted.as_slice() {
        [] => return forward(config, ctx, inner, parts, body::full(bytes)).await,
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

    let env_text = merged.env.serialize();
    let encoded = form_urlencoded::Serializer::new(String::with_capacity(bytes.len()))
        .extend_pairs(pairs.iter().map(|(name, value)| {
            if name == ENV_FIELD {
                (name.as_str(), env_text.as_str())
            } else {
                (name.as_str(), value.as_str())
            }
        }))
        .finish();
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(encoded.len()));
    let response = forward(config, ctx, inner, parts, body::full(encoded)).await?;
    if response.status().is_success() {
        record_changes(config, ctx, &app, &merged, response.status()).await;
    }
    Ok(response)
}

/// Forwards the request and masks the release the rack answers with.
async fn forward(
    config: &Config,
    ctx: &Ctx,
    inner: Inner,
    parts: Parts,
    request_body: Body,
) -> Result<Response<Body>, BoxError> {
    let request = Request::from_parts(parts, request_body);
    if !needs_masking(ctx) {
        return call(inner, request).await;
    }
    let response = call(inner, identity_encoding(request)).await?;
    mask_response(response, &ctx.scope(config), config.response_limit).await
}

/// One audit event per changed key; values are never recorded (the audit log is readable
/// without `convox:env:read`), only whether the key had a value before and after.
async fn record_changes(
    config: &Config,
    ctx: &Ctx,
    app: &str,
    merged: &MergedEnv,
    status: StatusCode,
) {
    let (Some(writer), Some(note)) = (&config.writer, &ctx.note) else {
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
        event.http_status = status.as_u16();
        if let Err(error) = writer.record(event).await {
            tracing::error!(%error, %app, key = %change.key, "env change not recorded in the audit log");
        }
    }
}

enum FormKind {
    UrlEncoded,
    Multipart,
    Other,
}

fn form_kind(parts: &Parts) -> FormKind {
    let essence = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase())
        .unwrap_or_default();
    let essence = essence.split(';').next().unwrap_or_default().trim();
    if essence == "application/x-www-form-urlencoded" {
        FormKind::UrlEncoded
    } else if essence.starts_with("multipart/") {
        FormKind::Multipart
    } else {
        FormKind::Other
    }
}

fn has_env_field(query: &[u8]) -> bool {
    form_urlencoded::parse(query).any(|(name, _)| name == ENV_FIELD)
}

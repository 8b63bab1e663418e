//! `POST /apps/{app}/releases`: strict form, env merge, checks, canonical re-encoding, and one
//! record per changed key in the request's durable intent.
//!
//! Fails closed: the body must be exactly one well-formed `application/x-www-form-urlencoded`
//! form ([`form`](super::form)), or empty without a `Content-Type`; anything else is refused
//! before the rack is called, whatever the rack would make of it. What the rack receives is the
//! gateway's own encoding of the form it read, so both read the same env.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Request, Response, StatusCode};
use rack_gateway_core::redact::EnvMap;

use super::changes::record_env_changes;
use super::collect::{collect_limited, Collected};
use super::env_request::EnvRequest;
use super::fetch::{fetch_env, RackRequestOptions};
use super::form::{self, Declared, FormError};
use super::merge::{merge_env, MergeRules};
use super::response::busy;
use super::Config;
use crate::body::{refusal, GatewayBody};
use crate::error::BoxError;
use crate::upstream::RackPath;

/// The form field that carries the env.
const ENV_FIELD: &str = "env";

/// Turns a release create into the request to send: the strict form read, the env merged over
/// the current one, the form re-encoded; or into a refusal. A form without an `env` field passes
/// (re-encoded) unchanged.
pub(crate) async fn prepare<B, ResBody>(
    config: Arc<Config>,
    env_request: EnvRequest,
    parts: Parts,
    rack_body: B,
) -> Result<Request<GatewayBody<B>>, Response<GatewayBody<ResBody>>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let refuse = |status, reason: &str| env_request.refuse(status, reason, reason);
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
        return Err(refuse(StatusCode::BAD_REQUEST, reason));
    }
    let refuse_form = |error: FormError| refuse(error.status(), &error.to_string());
    let declared = form::declared(&parts.headers).map_err(refuse_form)?;
    // Without a Content-Type only an empty body is acceptable: nothing to read, nothing to set.
    let limit = match declared {
        Declared::Nothing => 0,
        Declared::Form => config.form_limit,
    };
    let collected = collect_limited(rack_body, limit, &config.budget).await;
    let (bytes, _claim) = match collected {
        Ok(Collected::Whole(bytes, claim)) => (bytes, claim),
        Ok(Collected::Busy) => return Err(busy()),
        Ok(Collected::TooLarge) if declared == Declared::Nothing => {
            return Err(refuse_form(FormError::MediaType))
        }
        Ok(Collected::TooLarge) => {
            let too_large = format!(
                "Request body too large (limit {} bytes).",
                config.form_limit
            );
            return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, &too_large));
        }
        Err(_) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "the request body could not be read (malformed or cut short)",
            ))
        }
    };
    let pairs = form::parse(&bytes).map_err(refuse_form)?;
    drop(bytes);
    let posted: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name == ENV_FIELD)
        .map(|(_, value)| value.as_str())
        .collect();
    let posted = match posted.as_slice() {
        [] => {
            let encoded = form::encode(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            return Ok(with_form(parts, declared, encoded));
        }
        [one] => EnvMap::parse(one),
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "The env form field was sent more than once.",
            ))
        }
    };
    let Some(app) = env_request.app().map(str::to_owned) else {
        return Err(refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "release create route without an app",
        ));
    };

    let options = RackRequestOptions {
        principal: env_request.principal.clone(),
        request_id: parts.headers.get("x-request-id").cloned(),
        limit: config.response_limit,
        timeout: config.fetch_timeout,
        budget: Some(config.budget.clone()),
    };
    let base = match fetch_env(&config.rack, &options, &app).await {
        Ok(base) => base,
        Err(error) => {
            tracing::warn!(%app, %error, "release create refused: current env unavailable");
            return Err(refusal(
                StatusCode::BAD_GATEWAY,
                &format!("could not read the current environment from the rack: {error}"),
            ));
        }
    };
    let protected = config.policy.protected_keys(&app);
    let app_secrets = config.policy.secret_keys(&app);
    let merged = merge_env(
        &base,
        &posted,
        MergeRules {
            rules: &config.rules,
            app_secrets: &app_secrets,
            protected: &protected,
            access: &env_request.access,
        },
    )
    .map_err(|refused| {
        env_request.refuse(
            refused.status(),
            &refused.to_string(),
            &refused.audit_reason(),
        )
    })?;
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
    if let Some(draft) = &env_request.draft {
        record_env_changes(draft, &app, &merged, &env_request.access);
    }
    Ok(with_form(parts, declared, encoded))
}

/// The request with the re-encoded form: its exact length, the plain form media type (when the
/// client declared one; an empty body without one stays without), no transfer coding.
fn with_form<B>(mut parts: Parts, declared: Declared, encoded: String) -> Request<GatewayBody<B>> {
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
    Request::from_parts(parts, GatewayBody::own(encoded))
}

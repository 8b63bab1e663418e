//! Masking env-bearing rack responses: buffered (bounded), parsed, masked, re-encoded.

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::budget::BufferBudget;
use super::collect::{collect_limited, Collected};
use super::mask::{mask_json, MaskScope};
use crate::body::{passed, refusal, GatewayBody};
use crate::error::BoxError;

/// Masks a response of an env-bearing route for the caller in `scope`.
///
/// Non-2xx responses pass untouched, as do bodies that are not JSON (unless they claim to be:
/// then 502). A body over `limit` bytes, or with a `Content-Encoding`, is never relayed: 502.
pub(crate) async fn mask_response<B>(
    response: Response<B>,
    scope: &MaskScope<'_>,
    limit: usize,
    budget: &BufferBudget,
) -> Result<Response<GatewayBody<B>>, BoxError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send,
    B::Error: Into<BoxError>,
{
    if !response.status().is_success() {
        return Ok(passed(response));
    }
    if has_content_encoding(response.headers()) {
        return Ok(refusal(
            StatusCode::BAD_GATEWAY,
            "the rack sent an encoded response that cannot be redacted; not relayed",
        ));
    }
    let (mut parts, rack_body) = response.into_parts();
    let (bytes, claim) = match collect_limited(rack_body, limit, budget).await? {
        Collected::Whole(bytes, claim) => (bytes, claim),
        Collected::Busy => return Ok(busy()),
        Collected::TooLarge => {
            return Ok(refusal(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "the rack's response is too large to redact (limit {} bytes); not relayed",
                    limit
                ),
            ))
        }
    };
    let claims_json = is_json(&parts.headers);
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) if bytes.iter().all(u8::is_ascii_whitespace) || !claims_json => {
            return Ok(Response::from_parts(
                parts,
                GatewayBody::own_keeping(bytes, claim),
            ));
        }
        Err(_) => {
            return Ok(refusal(
                StatusCode::BAD_GATEWAY,
                "the rack sent malformed JSON that cannot be redacted; not relayed",
            ))
        }
    };
    if !mask_json(&mut value, scope) {
        drop(value);
        return Ok(Response::from_parts(
            parts,
            GatewayBody::own_keeping(bytes, claim),
        ));
    }
    drop(bytes);
    let mut masked = serde_json::to_vec(&value)?;
    drop(value);
    masked.push(b'\n');
    parts.headers.remove(header::ETAG);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(masked.len()));
    Ok(Response::from_parts(
        parts,
        GatewayBody::own_keeping(masked, claim),
    ))
}

/// The answer when the buffer budget stays spent: try again, nothing unmasked relayed.
pub(crate) fn busy<B>() -> Response<GatewayBody<B>> {
    refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "the gateway is redacting too many large responses at once; try again shortly",
    )
}

fn has_content_encoding(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
        .unwrap_or(false)
}

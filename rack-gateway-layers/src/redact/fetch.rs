//! Reading an app's current env from the rack, and creating a release with a new env, through
//! the [`RackForward`] (so the rack sees the gateway's credentials, the caller's email and the
//! request id, exactly as on the proxy path).
//!
//! Used by the release-create merge of the layer and by the gateway's JSON env API. Nothing here
//! logs or returns env values: errors name the rack path and the problem only.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request};
use rack_gateway_core::identity::Principal;
use rack_gateway_core::redact::EnvMap;
use serde_json::Value;
use tower::Service;

use super::budget::BufferBudget;
use super::collect::{collect_limited, Collected};
use crate::body::{self, Body};
use crate::forward::RackForward;
use crate::upstream::RackPath;

/// Why the rack call failed; the message never holds env values.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The rack did not answer in time.
    #[error("the rack did not answer within {0:?}")]
    Timeout(Duration),
    /// The request failed.
    #[error("{0}")]
    Rack(String),
    /// The rack answered with a non-success status.
    #[error("the rack answered {0} to {1}")]
    Status(u16, String),
    /// The answer was larger than the response limit.
    #[error("the rack's answer to {0} is too large")]
    TooLarge(String),
    /// The answer was not the expected JSON.
    #[error("unexpected answer to {0}: {1}")]
    Shape(String, &'static str),
    /// The buffer budget stayed spent.
    #[error("the gateway is buffering too much at once; try again shortly")]
    Busy,
    /// The app name cannot be put in a rack path.
    #[error("invalid app name")]
    InvalidApp,
}

/// On whose behalf a rack request is made, and how it is bounded.
#[derive(Clone, Debug)]
pub struct RackRequestOptions {
    /// The caller (the rack gets their email as `X-User-Email`).
    pub principal: Option<Arc<Principal>>,
    /// Passed on as `X-Request-ID` (the forwarder makes a fresh one when `None`).
    pub request_id: Option<HeaderValue>,
    /// Largest rack answer read, in bytes.
    pub limit: usize,
    /// How long the whole call (every rack request of it) may take.
    pub timeout: Duration,
    /// The budget rack answers are buffered within (none: only `limit` bounds them).
    pub budget: Option<BufferBudget>,
}

/// The env of the app's newest release (`GET /apps/{app}/releases?limit=1`, then that release),
/// or an empty env when the app has no release yet.
pub async fn fetch_env(
    rack: &RackForward,
    call: &RackRequestOptions,
    app: &str,
) -> Result<EnvMap, FetchError> {
    if !is_app_name(app) {
        return Err(FetchError::InvalidApp);
    }
    let fetch = async {
        let list_path = format!("/apps/{app}/releases?limit=1");
        let list = exchange(rack, call, Method::GET, &list_path, None).await?;
        let Value::Array(releases) = list else {
            return Err(FetchError::Shape(list_path, "not a JSON array"));
        };
        let Some(newest) = releases.first() else {
            return Ok(EnvMap::new());
        };
        let id = newest
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_plain_id(id))
            .ok_or_else(|| FetchError::Shape(list_path.clone(), "no usable release id"))?;
        let release_path = format!("/apps/{app}/releases/{id}");
        let release = exchange(rack, call, Method::GET, &release_path, None).await?;
        match release.get("env") {
            Some(Value::String(text)) => Ok(EnvMap::parse(text)),
            None | Some(Value::Null) => Ok(EnvMap::new()),
            Some(_) => Err(FetchError::Shape(release_path, "env is not a string")),
        }
    };
    tokio::time::timeout(call.timeout, fetch)
        .await
        .map_err(|_| FetchError::Timeout(call.timeout))?
}

/// Creates a release of `app` carrying `env` (`POST /apps/{app}/releases`, form field `env`,
/// nothing else; the release is not promoted); returns the new release's id.
pub async fn create_release(
    rack: &RackForward,
    call: &RackRequestOptions,
    app: &str,
    env: &EnvMap,
) -> Result<String, FetchError> {
    if !is_app_name(app) {
        return Err(FetchError::InvalidApp);
    }
    let path = format!("/apps/{app}/releases");
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("env", &env.serialize())
        .finish();
    let create = async {
        let release = exchange(rack, call, Method::POST, &path, Some(Bytes::from(form))).await?;
        release
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_plain_id(id))
            .map(str::to_owned)
            .ok_or_else(|| FetchError::Shape(path.clone(), "no usable release id"))
    };
    tokio::time::timeout(call.timeout, create)
        .await
        .map_err(|_| FetchError::Timeout(call.timeout))?
}

/// Whether `app` is a name that can be put in a rack path as one segment: 1–128 ASCII letters,
/// digits, `-` and `_` (Convox app names are lower-case letters, digits and `-`).
pub fn is_app_name(app: &str) -> bool {
    !app.is_empty()
        && app.len() <= 128
        && app
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// A release id safe to put in a path: letters, digits, `-`, `_`, `.` (not `.`/`..`).
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// One rack request with an optional form body; the JSON of a 2xx answer.
async fn exchange(
    rack: &RackForward,
    call: &RackRequestOptions,
    method: Method,
    path: &str,
    form: Option<Bytes>,
) -> Result<Value, FetchError> {
    let mut request: Request<Body> = match form {
        Some(form) => {
            let mut request = Request::new(body::full(form.clone()));
            request.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            request
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(form.len()));
            request
        }
        None => Request::new(body::empty()),
    };
    *request.method_mut() = method;
    let headers = request.headers_mut();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(request_id) = &call.request_id {
        headers.insert("x-request-id", request_id.clone());
    }
    request.extensions_mut().insert(RackPath(path.to_owned()));
    if let Some(principal) = &call.principal {
        request.extensions_mut().insert(Arc::clone(principal));
    }
    let mut rack = rack.clone();
    std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut rack, cx))
        .await
        .map_err(|error| FetchError::Rack(error.to_string()))?;
    let response = rack
        .call(request)
        .await
        .map_err(|error| FetchError::Rack(error.to_string()))?;
    if !response.status().is_success() {
        return Err(FetchError::Status(
            response.status().as_u16(),
            path.to_owned(),
        ));
    }
    let unbounded;
    let budget = match &call.budget {
        Some(budget) => budget,
        None => {
            unbounded = BufferBudget::new(call.limit, Duration::ZERO);
            &unbounded
        }
    };
    let (bytes, _claim) = match collect_limited(response.into_body(), call.limit, budget).await {
        Ok(Collected::Whole(bytes, claim)) => (bytes, claim),
        Ok(Collected::TooLarge) => return Err(FetchError::TooLarge(path.to_owned())),
        Ok(Collected::Busy) => return Err(FetchError::Busy),
        Err(error) => return Err(FetchError::Rack(error.to_string())),
    };
    serde_json::from_slice(&bytes).map_err(|_| FetchError::Shape(path.to_owned(), "not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids() {
        for id in ["RAPI123456", "R-1_a.b"] {
            assert!(is_plain_id(id), "{id}");
        }
        for id in ["", ".", "..", "a/b", "a?b", "a b", "é"] {
            assert!(!is_plain_id(id), "{id}");
        }
    }

    #[test]
    fn app_names() {
        for app in ["web", "my-app_2", "A"] {
            assert!(is_app_name(app), "{app}");
        }
        let long = "a".repeat(129);
        for app in [
            "",
            ".",
            "..",
            "a/b",
            "a%2Fb",
            "a?b",
            "a b",
            "é",
            "a.b",
            long.as_str(),
        ] {
            assert!(!is_app_name(app), "{app}");
        }
    }
}

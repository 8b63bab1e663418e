//! Request parameters the way the Convox SDK sends them: query string plus a form body
//! (`application/x-www-form-urlencoded`, or an empty `application/octet-stream` body); a JSON
//! object body is accepted too. Body values override query values.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use serde_json::Value;

use super::error::{MockError, MockResult};

/// Largest parameter body read (manifests travel in form bodies).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Flat string parameters of one request.
#[derive(Debug, Default)]
pub(super) struct Params {
    values: BTreeMap<String, String>,
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = MockError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let mut params = Params::default();
        if let Some(query) = parts.uri.query() {
            params.extend_form(query.as_bytes());
        }
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|e| MockError::bad_request(format!("could not read request body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(params);
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| MockError::bad_request("request body is not valid UTF-8"))?;
        if is_json(&parts.headers) {
            params.extend_json(text)?;
        } else {
            params.extend_form(text.as_bytes());
        }
        Ok(params)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
}

/// A JSON value as a parameter string: strings as-is, objects and arrays as JSON text.
fn value_string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

/// Parses `text` as a map: a JSON object, or else `k=v&k2=v2` form encoding.
pub(super) fn parse_map(text: &str) -> MockResult<BTreeMap<String, String>> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let value: Value = serde_json::from_str(trimmed)
            .map_err(|e| MockError::bad_request(format!("invalid JSON map: {e}")))?;
        let Value::Object(map) = value else {
            return Err(MockError::bad_request("expected a JSON object"));
        };
        return Ok(map
            .iter()
            .filter_map(|(k, v)| value_string(v).map(|v| (k.clone(), v)))
            .collect());
    }
    Ok(form_urlencoded::parse(trimmed.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

impl Params {
    fn extend_form(&mut self, bytes: &[u8]) {
        for (k, v) in form_urlencoded::parse(bytes) {
            self.values.insert(k.into_owned(), v.into_owned());
        }
    }

    fn extend_json(&mut self, text: &str) -> MockResult<()> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| MockError::bad_request(format!("invalid JSON body: {e}")))?;
        let Value::Object(map) = value else {
            return Err(MockError::bad_request("JSON body must be an object"));
        };
        for (k, v) in &map {
            if let Some(v) = value_string(v) {
                self.values.insert(k.clone(), v);
            }
        }
        Ok(())
    }

    /// The raw value of `key`, verbatim (may be empty).
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `key` unless missing or blank.
    pub(super) fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.trim().is_empty())
    }

    /// `key` parsed as `T`; missing or blank → `None`, unparsable → 400.
    pub(super) fn parse<T: FromStr>(&self, key: &str) -> MockResult<Option<T>> {
        let Some(raw) = self.non_empty(key) else {
            return Ok(None);
        };
        raw.trim()
            .parse()
            .map(Some)
            .map_err(|_| MockError::bad_request(format!("invalid {key}: {raw:?}")))
    }

    /// `key` as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`); anything else → 400.
    pub(super) fn flag(&self, key: &str) -> MockResult<Option<bool>> {
        let Some(raw) = self.non_empty(key) else {
            return Ok(None);
        };
        parse_flag(raw)
            .map(Some)
            .ok_or_else(|| MockError::bad_request(format!("invalid {key}: {raw:?}")))
    }

    /// A map parameter: `key` as JSON or form text, plus any `key[name]=value` entries.
    pub(super) fn map(&self, key: &str) -> MockResult<BTreeMap<String, String>> {
        let mut out = match self.non_empty(key) {
            Some(raw) => parse_map(raw)?,
            None => BTreeMap::new(),
        };
        let prefix = format!("{key}[");
        for (k, v) in &self.values {
            if let Some(name) = k.strip_prefix(&prefix).and_then(|r| r.strip_suffix(']')) {
                out.insert(name.to_string(), v.clone());
            }
        }
        Ok(out)
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no` (case-insensitive).
pub(super) fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

//! `GET /api/v1/apps/{app}/env` and `PUT /api/v1/apps/{app}/env`: an app's env as JSON.
//!
//! The env is that of the app's newest release, read from the rack through the same
//! [`RackForward`](rack_gateway_layers::forward::RackForward) as the proxy, and masked with the
//! same rules as the proxy's `RedactLayer` (global secret rules, the app's secret and protected
//! keys from the [`EnvPolicy`](rack_gateway_layers::redact::EnvPolicy), URL passwords).
//!
//! - `GET` needs `convox:env:read` (403 "You don't have permission to view environment
//!   variables."); it answers `{"env": {KEY: value}}` with secrets masked. `?secrets=true` shows
//!   them in clear and needs `convox:secret:read` too (403 "You don't have permission to view
//!   secrets."); that read is recorded as `secret.read` and is durable in the audit log before
//!   the answer leaves (503 otherwise). `?key=NAME` narrows the answer to one key (404 when unset).
//! - `PUT` with `{"set": {KEY: value}, "remove": [KEY]}` needs `convox:env:set`. Removals apply
//!   first, then the sets, and the result goes through [`merge_env`] exactly like a release create
//!   on the proxy: a masked value keeps the stored one (so the masked env from `GET` can be sent
//!   back with one value changed), secrets need `convox:secret:set`, protected keys never change
//!   (403 naming them), a mask for a key without a value is 400. With changes, an `env.update`
//!   intent is made durable, a release is created (`POST /apps/{app}/releases`, form `env`, keys
//!   sorted; not promoted), one event per changed key is recorded (`env.set`, `env.unset`,
//!   `secret.set`, `secret.unset`, resource `app/KEY`, details without values) and the answer is
//!   `{"env": {…masked…}, "release_id": "R…"}`. Without changes nothing is sent to the rack, the
//!   answer has no `release_id` and `env.update` is recorded with `{"changes":"none"}`.
//!
//! Rack failures answer 502 (`failed to fetch env`, `failed to create release`), an unknown app
//! 404. Neither values nor request bodies are ever logged or put in audit records.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rack_gateway_core::redact::{mask_env_with, EnvMap, Reveal, MASK};
use rack_gateway_layers::audit::record_intent;
use rack_gateway_layers::redact::{
    create_release, fetch_env, is_app_name, merge_env, record_env_changes, EnvAccess, FetchError,
    MergeRules, RackRequestOptions, DEFAULT_FETCH_TIMEOUT, DEFAULT_RESPONSE_LIMIT, ENV_READ,
    ENV_SET, SECRET_READ,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{ApiError, ApiState, Caller};

/// Refusal without `convox:env:read`.
const ENV_READ_DENIED: &str = "You don't have permission to view environment variables.";
/// Refusal of `?secrets=true` without `convox:secret:read`.
const SECRET_READ_DENIED: &str = "You don't have permission to view secrets.";
/// Refusal without `convox:env:set`.
const ENV_SET_DENIED: &str = "You don't have permission to modify environment variables.";
/// How long creating a release may take (as the proxy's upstream bound).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest env key accepted.
const MAX_KEY_LEN: usize = 256;

/// Query of `GET /api/v1/apps/{app}/env`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ReadQuery {
    secrets: Option<String>,
    key: Option<String>,
}

/// Body of `PUT /api/v1/apps/{app}/env`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvUpdate {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// The app of the path, if it is a usable app name.
fn app_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(app)) if is_app_name(&app) => Ok(app),
        _ => Err(ApiError::bad_request(
            "invalid app name (letters, digits, - and _)",
        )),
    }
}

/// Whether `key` is a usable env name: a letter or `_`, then letters, digits and `_`.
fn is_env_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    key.len() <= MAX_KEY_LEN
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn invalid_key(key: &str) -> ApiError {
    ApiError::bad_request(format!(
        "invalid environment variable name {key:?}: use letters, digits and _, not starting with a digit (at most {MAX_KEY_LEN} characters)"
    ))
}

/// The rack call context of this API call.
fn rack_call(state: &ApiState, caller: &Caller, timeout: Duration) -> RackRequestOptions {
    RackRequestOptions {
        principal: Some(caller.principal.clone()),
        request_id: HeaderValue::from_str(caller.request_id())
            .ok()
            .filter(|v| !v.is_empty()),
        limit: DEFAULT_RESPONSE_LIMIT,
        timeout,
        budget: Some(state.budget.clone()),
    }
}

/// The env as the caller may see it, keys sorted, as a JSON object.
fn shown(state: &ApiState, app: &str, env: &EnvMap, reveal: Reveal) -> Map<String, Value> {
    let mut extra = state.env_policy.secret_keys(app);
    extra.extend(state.env_policy.protected_keys(app));
    mask_env_with(env, &state.secrets, &extra, reveal)
        .iter()
        .map(|(key, value)| (key.to_owned(), Value::String(value.to_owned())))
        .collect()
}

/// A JSON answer that no cache keeps.
fn no_store(body: Value) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

/// Reads the app's current env from the rack.
async fn current_env(state: &ApiState, caller: &Caller, app: &str) -> Result<EnvMap, ApiError> {
    let call = rack_call(state, caller, DEFAULT_FETCH_TIMEOUT);
    match fetch_env(&state.rack, &call, app).await {
        Ok(env) => Ok(env),
        Err(FetchError::Status(404, _)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("app {app} not found"),
        )
        .recorded_as("the rack does not know the app")),
        Err(error) => {
            tracing::warn!(%app, %error, "env API: could not read the current env from the rack");
            Err(
                ApiError::new(StatusCode::BAD_GATEWAY, "failed to fetch env")
                    .recorded_as(format!("failed to fetch env: {error}")),
            )
        }
    }
}

/// A 403 with the reference's wording, recorded with the permission that was missing.
fn denied(message: &str, permission: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
        .recorded_as(format!("{message} ({permission} required)"))
}

/// `GET /api/v1/apps/{app}/env[?secrets=true][&key=NAME]`.
pub(super) async fn read(
    State(state): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let app = app_of(path)?;
    caller.resource(app.as_str());
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let secrets = match query.secrets.as_deref() {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::bad_request("secrets must be true or false")),
    };
    if secrets {
        caller.note.set_action("secret.read");
    }
    if let Some(key) = query.key.as_deref().filter(|key| !is_env_key(key)) {
        return Err(invalid_key(key));
    }
    caller.details(json!({"key": query.key, "secrets": secrets}));

    let access = EnvAccess::of(&caller.principal.access());
    let Some(env_grant) = access.env_read.as_deref() else {
        return Err(denied(ENV_READ_DENIED, ENV_READ));
    };
    caller.note.set_reason(env_grant);
    if secrets {
        let Some(secret_grant) = access.secret_read.as_deref() else {
            return Err(denied(SECRET_READ_DENIED, SECRET_READ));
        };
        caller.note.set_reason(secret_grant);
        // Secrets leave only once their read is on the record: the audit layer makes the
        // call's record durable before the answer goes out (503 and withheld otherwise).
        caller.note.require_durable();
    }

    let env = current_env(&state, &caller, &app).await?;
    let reveal = if secrets {
        Reveal::Everything
    } else {
        Reveal::NonSecrets
    };
    let mut values = shown(&state, &app, &env, reveal);
    if let Some(key) = &query.key {
        values.retain(|name, _| name == key);
        if values.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("environment variable {key} is not set"),
            )
            .recorded_as("key not set"));
        }
    }
    Ok(no_store(json!({ "env": values })))
}

/// `PUT /api/v1/apps/{app}/env` with `{"set": {KEY: value}, "remove": [KEY]}`.
pub(super) async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<EnvUpdate>, JsonRejection>,
) -> Result<Response, ApiError> {
    let app = app_of(path)?;
    caller.resource(app.as_str());
    let access = EnvAccess::of(&caller.principal.access());
    let Some(grant) = access.env_set.as_deref() else {
        return Err(denied(ENV_SET_DENIED, ENV_SET));
    };
    caller.note.set_reason(grant);
    let update = match body {
        Ok(Json(update)) => update,
        Err(rejection) => {
            // The parser's message may quote the body: the caller sees it, the record does not.
            let status = match rejection.status() {
                status @ (StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE) => {
                    status
                }
                _ => StatusCode::BAD_REQUEST,
            };
            let reason = match &rejection {
                JsonRejection::MissingJsonContentType(_) => "body is not application/json",
                JsonRejection::JsonSyntaxError(_) => "body is not valid JSON",
                JsonRejection::JsonDataError(_) => "body is not {\"set\": {…}, \"remove\": […]}",
                _ => "body could not be read",
            };
            return Err(ApiError::new(status, rejection.body_text()).recorded_as(reason));
        }
    };
    check_update(&update).map_err(|error| error.recorded_as("invalid env names or values"))?;

    let base = current_env(&state, &caller, &app).await?;
    // What the caller did not name keeps its value: posted as the mask (so that an unnamed
    // secret is kept, never "set to its own value"), then the removals, then the sets, which
    // go through the same merge as a release create on the proxy.
    let mut posted = EnvMap::new();
    for (key, _) in base.iter() {
        posted
            .insert(key, MASK)
            .map_err(|_| ApiError::bad_request(format!("invalid stored key {key}")))?;
    }
    for key in &update.remove {
        posted.remove(key);
    }
    for (key, value) in &update.set {
        posted.insert(key, value).map_err(|_| {
            ApiError::bad_request(format!("invalid value for {key}"))
                .recorded_as("invalid env values")
        })?;
    }
    let protected = state.env_policy.protected_keys(&app);
    let app_secrets = state.env_policy.secret_keys(&app);
    let merged = merge_env(
        &base,
        &posted,
        MergeRules {
            rules: &state.secrets,
            app_secrets: &app_secrets,
            protected: &protected,
            access: &access,
        },
    )
    .map_err(|refused| {
        ApiError::new(refused.status(), refused.to_string()).recorded_as(refused.audit_reason())
    })?;
    let env = sorted(&merged.env);
    let values = shown(&state, &app, &env, Reveal::NonSecrets);
    if merged.changes.is_empty() {
        caller.details(json!({"changes": "none"}));
        return Ok(no_store(json!({ "env": values })));
    }

    // The change is on the record (the call's intent and one record per key, durable together)
    // before the rack sees it.
    let keys: Vec<&str> = merged.changes.iter().map(|c| c.key.as_str()).collect();
    caller.details(json!({"keys": keys}));
    record_env_changes(&caller.note, &app, &merged, &access);
    record_intent(&state.writer, &caller.note)
        .await
        .map_err(|error| ApiError::unavailable("audit log", &error))?;

    let call = rack_call(&state, &caller, CREATE_TIMEOUT);
    let release_id = match create_release(&state.rack, &call, &app, &env).await {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(%app, %error, "env API: could not create a release on the rack");
            return Err(
                ApiError::new(StatusCode::BAD_GATEWAY, "failed to create release")
                    .recorded_as(format!("failed to create release: {error}")),
            );
        }
    };
    caller.details(json!({"release_id": release_id}));
    Ok(no_store(json!({ "env": values, "release_id": release_id })))
}

/// Checks the names and values of an update (before anything is read from the rack).
fn check_update(update: &EnvUpdate) -> Result<(), ApiError> {
    for key in update.remove.iter().chain(update.set.keys()) {
        if !is_env_key(key) {
            return Err(invalid_key(key));
        }
    }
    for (key, value) in &update.set {
        if value.contains(['\n', '\r', '\0']) {
            return Err(ApiError::bad_request(format!(
                "invalid value for {key}: values cannot contain line breaks or NUL"
            )));
        }
    }
    Ok(())
}

/// The env with its keys sorted (the order the release is created with).
fn sorted(env: &EnvMap) -> EnvMap {
    let mut pairs: Vec<(&str, &str)> = env.iter().collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = EnvMap::new();
    for (key, value) in pairs {
        // Every pair comes from a valid map, so it is valid again.
        if out.insert(key, value).is_err() {
            tracing::error!(%key, "env API: a stored env entry could not be copied");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys() {
        for key in ["NODE_ENV", "_X", "a1", "K"] {
            assert!(is_env_key(key), "{key}");
        }
        let long = "K".repeat(MAX_KEY_LEN + 1);
        for key in [
            "",
            "1A",
            "A-B",
            "A B",
            "A=B",
            "A\nB",
            "É",
            " A",
            long.as_str(),
        ] {
            assert!(!is_env_key(key), "{key:?}");
        }
    }

    #[test]
    fn updates_are_checked_before_the_rack() {
        let update = |set: &[(&str, &str)], remove: &[&str]| EnvUpdate {
            set: set
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            remove: remove.iter().map(|k| (*k).to_owned()).collect(),
        };
        assert!(check_update(&update(&[("A", "x=y z")], &["B"])).is_ok());
        assert!(check_update(&update(&[("A", "two\nlines")], &[])).is_err());
        assert!(check_update(&update(&[("A", "cr\r")], &[])).is_err());
        assert!(check_update(&update(&[("A=B", "x")], &[])).is_err());
        assert!(check_update(&update(&[], &["not valid"])).is_err());
    }

    #[test]
    fn sorting_keeps_values() {
        let env = EnvMap::parse("PORT=3000\nAPI_KEY=k\nDATABASE_URL=postgres://a:b@c/d");
        let env = sorted(&env);
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["API_KEY", "DATABASE_URL", "PORT"]
        );
        assert_eq!(env.get("DATABASE_URL"), Some("postgres://a:b@c/d"));
    }

    #[test]
    fn update_bodies() {
        let parse = |text: &str| serde_json::from_str::<EnvUpdate>(text);
        let update = parse(r#"{"set":{"A":"1"},"remove":["B"]}"#).expect("valid");
        assert_eq!(update.set.get("A").map(String::as_str), Some("1"));
        assert_eq!(update.remove, ["B"]);
        assert!(parse("{}").is_ok());
        assert!(parse(r#"{"unset":["B"]}"#).is_err());
        assert!(parse(r#"{"set":{"A":1}}"#).is_err());
        assert!(parse(r#"{"set":{"A":null}}"#).is_err());
    }
}

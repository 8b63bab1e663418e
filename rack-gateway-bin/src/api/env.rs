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
use rack_gateway_core::audit::{AuditDecision, Phase};
use rack_gateway_core::redact::{canonical_json, mask_env_with, EnvMap, Reveal, REDACTED};
use rack_gateway_layers::redact::{
    create_release, fetch_env, is_app_name, merge_env, ChangeKind, EnvAccess, FetchError,
    MergeRules, MergedEnv, RackCall, DEFAULT_FETCH_TIMEOUT, DEFAULT_RESPONSE_LIMIT, ENV_READ,
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

/// The audit action of an env update.
const UPDATE: &str = "env.update";

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

/// A refusal that is also recorded as `action` for `resource` (the reason may differ from
/// what the caller sees: it names the missing permission, never a value).
fn refuse(
    caller: &Caller,
    state: &ApiState,
    action: &str,
    resource: Option<&str>,
    error: ApiError,
    audit_reason: &str,
) -> ApiError {
    let decision = if error.status.is_server_error() {
        AuditDecision::Error
    } else {
        AuditDecision::Deny
    };
    let mut event = caller.event(
        action,
        decision,
        audit_reason,
        error.status.as_u16(),
        "{}".into(),
    );
    event.resource = resource.map(str::to_owned);
    queue(state, event);
    error
}

/// Queues an audit event (never dropped; the queue applies back-pressure).
fn queue(state: &ApiState, event: rack_gateway_core::audit::AuditEvent) {
    let writer = state.writer.clone();
    tokio::spawn(async move {
        if let Err(error) = writer.record(event).await {
            tracing::error!(%error, "could not queue the audit record of an env API call");
        }
    });
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
fn rack_call(caller: &Caller, timeout: Duration) -> RackCall {
    RackCall {
        principal: Some(caller.principal.clone()),
        request_id: HeaderValue::from_str(caller.request_id())
            .ok()
            .filter(|v| !v.is_empty()),
        limit: DEFAULT_RESPONSE_LIMIT,
        timeout,
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

/// Reads the app's current env; a failure is refused and recorded as `action`.
async fn current_env(
    state: &ApiState,
    caller: &Caller,
    app: &str,
    action: &str,
) -> Result<EnvMap, ApiError> {
    match fetch_env(&state.rack, &rack_call(caller, DEFAULT_FETCH_TIMEOUT), app).await {
        Ok(env) => Ok(env),
        Err(FetchError::Status(404, _)) => Err(refuse(
            caller,
            state,
            action,
            Some(app),
            ApiError::new(StatusCode::NOT_FOUND, format!("app {app} not found")),
            "the rack does not know the app",
        )),
        Err(error) => {
            tracing::warn!(%app, %error, "env API: could not read the current env from the rack");
            Err(refuse(
                caller,
                state,
                action,
                Some(app),
                ApiError::new(StatusCode::BAD_GATEWAY, "failed to fetch env"),
                &format!("failed to fetch env: {error}"),
            ))
        }
    }
}

/// `GET /api/v1/apps/{app}/env[?secrets=true][&key=NAME]`.
pub(super) async fn read(
    State(state): State<ApiState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let bad = |error: ApiError| {
        refuse(
            &caller,
            &state,
            "env.read",
            None,
            error.clone(),
            &error.message,
        )
    };
    let app = app_of(path).map_err(bad)?;
    let Query(query) = query.map_err(|e| bad(ApiError::bad_request(e.body_text())))?;
    let secrets = match query.secrets.as_deref() {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(bad(ApiError::bad_request("secrets must be true or false"))),
    };
    if let Some(key) = query.key.as_deref().filter(|key| !is_env_key(key)) {
        return Err(bad(invalid_key(key)));
    }
    let action = if secrets { "secret.read" } else { "env.read" };

    let access = EnvAccess::of(&caller.principal.access());
    let Some(env_grant) = access.env_read.clone() else {
        return Err(refuse(
            &caller,
            &state,
            action,
            Some(&app),
            ApiError::new(StatusCode::FORBIDDEN, ENV_READ_DENIED),
            &format!("{ENV_READ_DENIED} ({ENV_READ} required)"),
        ));
    };
    let grant = if secrets {
        let Some(secret_grant) = access.secret_read.clone() else {
            return Err(refuse(
                &caller,
                &state,
                action,
                Some(&app),
                ApiError::new(StatusCode::FORBIDDEN, SECRET_READ_DENIED),
                &format!("{SECRET_READ_DENIED} ({SECRET_READ} required)"),
            ));
        };
        secret_grant
    } else {
        env_grant
    };

    let env = current_env(&state, &caller, &app, action).await?;
    let reveal = if secrets {
        Reveal::Everything
    } else {
        Reveal::NonSecrets
    };
    let mut values = shown(&state, &app, &env, reveal);
    if let Some(key) = &query.key {
        values.retain(|name, _| name == key);
        if values.is_empty() {
            return Err(refuse(
                &caller,
                &state,
                action,
                Some(&app),
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("environment variable {key} is not set"),
                ),
                "key not set",
            ));
        }
    }
    let details = canonical_json(&json!({"key": query.key, "secrets": secrets}));
    let mut event = caller.event(action, AuditDecision::Allow, &grant, 200, details);
    event.resource = Some(app);
    if secrets {
        // Secrets leave only once their read is on the record.
        state
            .writer
            .record_durable(event)
            .await
            .map_err(|error| ApiError::unavailable("audit log", &error))?;
    } else {
        queue(&state, event);
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
    let bad = |resource: Option<&str>, error: ApiError, reason: &str| {
        refuse(&caller, &state, UPDATE, resource, error, reason)
    };
    let app = app_of(path).map_err(|e| bad(None, e.clone(), &e.message))?;
    let access = EnvAccess::of(&caller.principal.access());
    if access.env_set.is_none() {
        return Err(bad(
            Some(&app),
            ApiError::new(StatusCode::FORBIDDEN, ENV_SET_DENIED),
            &format!("{ENV_SET_DENIED} ({ENV_SET} required)"),
        ));
    }
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
            return Err(bad(
                Some(&app),
                ApiError::new(status, rejection.body_text()),
                reason,
            ));
        }
    };
    if let Err(error) = check_update(&update) {
        return Err(bad(Some(&app), error, "invalid env names or values"));
    }

    let base = current_env(&state, &caller, &app, UPDATE).await?;
    let mut posted = base.clone();
    for key in &update.remove {
        posted.remove(key);
    }
    for (key, value) in &update.set {
        posted.insert(key, value).map_err(|_| {
            bad(
                Some(&app),
                ApiError::bad_request(format!("invalid value for {key}")),
                "invalid env values",
            )
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
        bad(
            Some(&app),
            ApiError::new(refused.status(), refused.to_string()),
            &refused.audit_reason(),
        )
    })?;
    let env = sorted(&merged.env);
    let values = shown(&state, &app, &env, Reveal::NonSecrets);
    if merged.changes.is_empty() {
        let mut event = caller.event(
            UPDATE,
            AuditDecision::Allow,
            access.env_set.as_deref().unwrap_or_default(),
            200,
            canonical_json(&json!({"changes": "none"})),
        );
        event.resource = Some(app);
        queue(&state, event);
        return Ok(no_store(json!({ "env": values })));
    }

    // The change is on the record before the rack sees it.
    let keys: Vec<&str> = merged.changes.iter().map(|c| c.key.as_str()).collect();
    let mut intent = caller.event(
        UPDATE,
        AuditDecision::Allow,
        access.env_set.as_deref().unwrap_or_default(),
        0,
        canonical_json(&json!({"keys": keys})),
    );
    intent.phase = Phase::Intent;
    intent.resource = Some(app.clone());
    state
        .writer
        .record_durable(intent)
        .await
        .map_err(|error| ApiError::unavailable("audit log", &error))?;

    let release_id =
        match create_release(&state.rack, &rack_call(&caller, CREATE_TIMEOUT), &app, &env).await {
            Ok(id) => id,
            Err(error) => {
                tracing::warn!(%app, %error, "env API: could not create a release on the rack");
                return Err(bad(
                    Some(&app),
                    ApiError::new(StatusCode::BAD_GATEWAY, "failed to create release"),
                    &format!("failed to create release: {error}"),
                ));
            }
        };
    record_changes(&state, &caller, &access, &app, &merged, &release_id).await;
    let mut complete = caller.event(
        UPDATE,
        AuditDecision::Allow,
        access.env_set.as_deref().unwrap_or_default(),
        200,
        canonical_json(&json!({"keys": keys, "release_id": release_id})),
    );
    complete.resource = Some(app);
    queue(&state, complete);
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

/// One audit event per changed key; values are never recorded, only whether the key had a value
/// before and has one after.
async fn record_changes(
    state: &ApiState,
    caller: &Caller,
    access: &EnvAccess,
    app: &str,
    merged: &MergedEnv,
    release_id: &str,
) {
    for change in &merged.changes {
        let details = json!({
            "old": change.existed.then_some(REDACTED),
            "new": (change.kind == ChangeKind::Set).then_some(REDACTED),
            "release_id": release_id,
        });
        let grant = if change.secret {
            &access.secret_set
        } else {
            &access.env_set
        };
        let mut event = caller.event(
            change.action(),
            AuditDecision::Allow,
            grant.as_deref().unwrap_or_default(),
            200,
            canonical_json(&details),
        );
        event.resource = Some(format!("{app}/{}", change.key));
        if let Err(error) = state.writer.record(event).await {
            tracing::error!(%error, %app, key = %change.key, "env change not recorded in the audit log");
        }
    }
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

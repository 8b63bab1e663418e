//! The settings endpoints (reference §2.4), each authorized and audited.
//!
//! | endpoint | permission |
//! |---|---|
//! | `GET /api/v1/settings` | an authenticated caller |
//! | `PUT\|DELETE /api/v1/settings/{group}` | `gateway:setting_group:<group>` |
//! | `GET /api/v1/apps/{app}/settings` | an authenticated caller |
//! | `PUT\|DELETE /api/v1/apps/{app}/settings/vcs-ci-deploy` | `gateway:setting_group:vcs_ci_deploy` |
//! | `PUT\|DELETE /api/v1/apps/{app}/settings/{protected-env-vars\|secret-env-vars\|approved-deploy-commands\|service-image-patterns}` | `gateway:setting:<key>` |
//!
//! Reads answer a map key → `{value, source, env_var}`. A group `PUT` takes a map key → value
//! and answers the whole group resolved; a group `DELETE` takes `?key=a&key=b` (none: the whole
//! group) and answers those keys resolved. A single app key takes its raw JSON value and
//! answers `{key: {value, source, env_var}}`. Keys outside the endpoint, unknown keys and
//! values of the wrong type are 400. Every change is recorded as `setting.update` or
//! `setting.delete` with resource `<key>` or `<app>/<key>` and the old and new values; reads
//! as `setting.list`.
//!
//! ```text
//! curl -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" \
//!      -d '{"allow_destructive_actions": true}' \
//!      https://gateway/api/v1/settings/allow-destructive-actions
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use rack_gateway_core::audit::AuditDecision;
use rack_gateway_core::identity::Principal;
use rack_gateway_core::redact::{canonical_json, redact_text};
use rack_gateway_core::settings::{
    catalogue, check_app_name, group_delete, group_update, Resolved, Scope, SettingDef, Settings,
    SettingsError,
};
use serde_json::{json, Map, Value};

use super::{ApiError, ApiState, Caller};

/// What every settings response holds: key → resolved setting.
type ResolvedMap = BTreeMap<&'static str, Resolved>;

/// One authenticated call: who, and how to record what happened.
struct Call<'a> {
    state: &'a ApiState,
    caller: &'a Caller,
}

impl Call<'_> {
    /// Adds a record about one setting to the call's records.
    fn record(&self, action: &str, resource: String, reason: &str, details: &Value) {
        // Settings are not secrets, but free text goes through the last line of defence anyway.
        let details = redact_text(&canonical_json(details), &[]).into_owned();
        let reason = redact_text(reason, &[]);
        let mut event = self
            .caller
            .event(action, AuditDecision::Allow, &reason, details);
        event.resource = Some(resource);
        event.http_status = 200;
        self.caller.note.add_record(event);
    }

    /// Names the setting (or group) the call is about, for its record.
    fn target(&self, target: &str) {
        self.caller.resource(target);
    }

    /// Who is recorded as having written a setting: the email, or the token's name.
    fn updated_by(&self) -> Option<String> {
        match self.caller.principal.as_ref() {
            Principal::User(user) => Some(user.email.clone()),
            Principal::ApiToken(token) => Some(token.name.clone()),
            Principal::Anonymous => None,
        }
    }
}

fn resource(app: Option<&str>, key: &str) -> String {
    match app {
        Some(app) => format!("{app}/{key}"),
        None => key.to_owned(),
    }
}

fn bad_request(error: SettingsError) -> ApiError {
    ApiError::bad_request(error.to_string())
}

fn not_found(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, message)
}

/// Parses a request body as JSON.
fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("a JSON body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// The `key` parameters of a query string (`?key=a&key=b`).
fn query_keys(query: Option<&str>) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "key")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .collect()
}

/// Writes `values` of `app` (or global), records one `setting.update` per key, and answers
/// the keys `answer` resolved in the snapshot after the write.
async fn write(
    call: &Call<'_>,
    app: Option<&str>,
    values: Vec<(&'static SettingDef, Value)>,
    grant: &str,
    answer: &[&'static str],
) -> Result<ResolvedMap, ApiError> {
    let before = call.state.settings.current();
    let rows: Vec<(String, Value)> = values
        .iter()
        .map(|(def, value)| (def.key.to_owned(), value.clone()))
        .collect();
    let updated_by = call.updated_by();
    if let Err(error) = call
        .state
        .settings
        .store()
        .put_settings(app, &rows, updated_by.as_deref())
        .await
    {
        return Err(match error {
            rack_gateway_core::store::StoreError::Invalid { .. } => {
                ApiError::bad_request(error.to_string())
            }
            other => ApiError::unavailable("settings store", &other),
        });
    }
    let patched = values
        .iter()
        .fold((*before).clone(), |settings, (def, value)| {
            settings.with_stored(app, def.key, Some(value.clone()))
        });
    let after = refreshed(call, patched).await;
    for (def, _) in &values {
        call.record(
            "setting.update",
            resource(app, def.key),
            grant,
            &json!({
                "old": resolve(&before, app, def.key),
                "new": resolve(&after, app, def.key),
            }),
        );
    }
    Ok(resolve_all(&after, app, answer))
}

/// Deletes the stored rows of `defs`, records one `setting.delete` per key, and answers them
/// resolved after the delete (environment or default).
async fn delete(
    call: &Call<'_>,
    app: Option<&str>,
    defs: Vec<&'static SettingDef>,
    grant: &str,
) -> Result<ResolvedMap, ApiError> {
    let before = call.state.settings.current();
    let keys: Vec<String> = defs.iter().map(|def| def.key.to_owned()).collect();
    if let Err(error) = call
        .state
        .settings
        .store()
        .delete_settings(app, &keys)
        .await
    {
        return Err(ApiError::unavailable("settings store", &error));
    }
    let patched = defs.iter().fold((*before).clone(), |settings, def| {
        settings.with_stored(app, def.key, None)
    });
    let after = refreshed(call, patched).await;
    for def in &defs {
        call.record(
            "setting.delete",
            resource(app, def.key),
            grant,
            &json!({
                "old": resolve(&before, app, def.key),
                "new": resolve(&after, app, def.key),
            }),
        );
    }
    let keys: Vec<&'static str> = defs.iter().map(|def| def.key).collect();
    Ok(resolve_all(&after, app, &keys))
}

/// The snapshot after a local change: reloaded from the store, or (when that fails) the
/// previous one with the change applied, so this instance shows what it just wrote.
async fn refreshed(call: &Call<'_>, patched: Settings) -> Arc<Settings> {
    match call.state.settings.reload().await {
        Ok(settings) => settings,
        Err(error) => {
            tracing::warn!(%error, "could not reload settings after a change; using the change");
            let patched = Arc::new(patched);
            call.state.settings.publish(Arc::clone(&patched));
            patched
        }
    }
}

fn resolve(settings: &Settings, app: Option<&str>, key: &str) -> Option<Resolved> {
    match app {
        None => settings.resolve_global(key),
        Some(app) => settings.resolve_app(app, key),
    }
}

fn resolve_all(settings: &Settings, app: Option<&str>, keys: &[&'static str]) -> ResolvedMap {
    keys.iter()
        .filter_map(|key| Some((*key, resolve(settings, app, key)?)))
        .collect()
}

fn object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            "the body must be a JSON object of setting → value",
        )),
    }
}

/// `GET /api/v1/settings`: every global setting, resolved.
pub(super) async fn list_global(
    State(state): State<ApiState>,
    caller: Caller,
) -> Json<ResolvedMap> {
    let call = Call {
        state: &state,
        caller: &caller,
    };
    let all = state.settings.current().global_all();
    call.caller.details(json!({"scope": "global"}));
    Json(all)
}

/// `GET /api/v1/apps/{app}/settings`: every setting of the app, resolved.
pub(super) async fn list_app(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    caller: Caller,
) -> Result<Json<ResolvedMap>, ApiError> {
    let call = Call {
        state: &state,
        caller: &caller,
    };
    call.target(&app);
    check_app_name(&app).map_err(bad_request)?;
    let all = state.settings.current().app_all(&app);
    call.caller.details(json!({"scope": "app"}));
    Ok(Json(all))
}

/// `PUT /api/v1/settings/{group}`.
pub(super) async fn put_global_group(
    State(state): State<ApiState>,
    Path(group): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<ResolvedMap>, ApiError> {
    let call = Call {
        state: &state,
        caller: &caller,
    };
    put_group(&call, None, &group, &body).await.map(Json)
}

/// `DELETE /api/v1/settings/{group}?key=…`.
pub(super) async fn delete_global_group(
    State(state): State<ApiState>,
    Path(group): Path<String>,
    RawQuery(query): RawQuery,
    caller: Caller,
) -> Result<Json<ResolvedMap>, ApiError> {
    let call = Call {
        state: &state,
        caller: &caller,
    };
    delete_group(&call, None, &group, query.as_deref())
        .await
        .map(Json)
}

/// `PUT /api/v1/apps/{app}/settings/{group or key}`.
pub(super) async fn put_app(
    State(state): State<ApiState>,
    Path((app, segment)): Path<(String, String)>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<ResolvedMap>, ApiError> {
    let call = Call {
        state: &state,
        caller: &caller,
    };
    call.target(&app);
    check_app_name(&app).map_err(bad_request)?;
    if let Some(def) = catalogue::app_single_key(&segment) {
        call.target(&resource(Some(&app), def.key));
        let grant = caller.require(&catalogue::key_permission(def.key))?;
        caller.note.set_reason(&grant);
        let value =
            parse_json(&body).and_then(|value| def.normalize(value).map_err(bad_request))?;
        return write(&call, Some(&app), vec![(def, value)], &grant, &[def.key])
            .await
            .map(Json);
    }
    put_group(&call, Some(&app), &segment, &body)
        .await
        .map(Json)
}

/// `DELETE /api/v1/apps/{app}/settings/{group or key}`.
pub(super) async fn delete_app(
    State(state): State<ApiState>,
    Path((app, segment)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    caller: Caller,
) -> Result<Json<ResolvedMap>, ApiError> {
    let call = Call {
        state: &state,
        caller: &caller,
    };
    call.target(&app);
    check_app_name(&app).map_err(bad_request)?;
    if let Some(def) = catalogue::app_single_key(&segment) {
        call.target(&resource(Some(&app), def.key));
        let grant = caller.require(&catalogue::key_permission(def.key))?;
        caller.note.set_reason(&grant);
        return delete(&call, Some(&app), vec![def], &grant).await.map(Json);
    }
    delete_group(&call, Some(&app), &segment, query.as_deref())
        .await
        .map(Json)
}

fn scope_of(app: Option<&str>) -> Scope {
    if app.is_some() {
        Scope::App
    } else {
        Scope::Global
    }
}

fn find_group(
    call: &Call<'_>,
    app: Option<&str>,
    name: &str,
) -> Result<&'static catalogue::SettingGroup, ApiError> {
    call.target(&resource(app, name));
    catalogue::group(scope_of(app), name)
        .ok_or_else(|| not_found(format!("unknown settings endpoint {name:?}")))
}

async fn put_group(
    call: &Call<'_>,
    app: Option<&str>,
    name: &str,
    body: &Bytes,
) -> Result<ResolvedMap, ApiError> {
    let group = find_group(call, app, name)?;
    call.target(&resource(app, group.name));
    let grant = call.caller.require(&group.permission())?;
    call.caller.note.set_reason(&grant);
    let values = parse_json(body)
        .and_then(object)
        .and_then(|body| group_update(group, body).map_err(bad_request))?;
    write(call, app, values, &grant, group.keys).await
}

async fn delete_group(
    call: &Call<'_>,
    app: Option<&str>,
    name: &str,
    query: Option<&str>,
) -> Result<ResolvedMap, ApiError> {
    let group = find_group(call, app, name)?;
    call.target(&resource(app, group.name));
    let grant = call.caller.require(&group.permission())?;
    call.caller.note.set_reason(&grant);
    let defs = group_delete(group, &query_keys(query)).map_err(bad_request)?;
    delete(call, app, defs, &grant).await
}

#[cfg(test)]
mod tests;

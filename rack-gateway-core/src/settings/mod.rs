//! Typed settings: global and per-app, stored in the database, overridable from the
//! environment, with compiled defaults.
//!
//! - [`catalogue`] lists every key with its type, default and group.
//! - [`SettingDef::normalize`](catalogue::SettingDef::normalize) checks a value by type (the API
//!   answers 400 when it fails) and returns the form that is stored.
//! - [`EnvOverrides`] parses `RGW_SETTING_<KEY>` and `RGW_APP_<APP>_SETTING_<KEY>` once at
//!   start-up; a bad one is an error naming the variable.
//! - [`Settings`] is an immutable snapshot that resolves each key as **DB row → environment
//!   variable → compiled default** and reports the [`Source`] of each value.
//! - [`group_update`] and [`group_delete`] check the body of a group endpoint.
//!
//! ```
//! use std::sync::Arc;
//! use chrono::Utc;
//! use rack_gateway_core::settings::{EnvOverrides, Settings, Source};
//! use rack_gateway_core::store::StoredSetting;
//! use serde_json::json;
//!
//! let env = EnvOverrides::from_vars([("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true")]).unwrap();
//! let rows = [StoredSetting {
//!     app: Some("web".into()),
//!     key: "protected_env_vars".into(),
//!     value: json!(["DATABASE_URL"]),
//!     updated_at: Utc::now(),
//!     updated_by: Some("admin@example.com".into()),
//! }];
//! let settings = Settings::from_stored(Arc::new(env), &rows);
//! assert!(settings.allow_destructive_actions());
//! assert_eq!(settings.protected_env_vars("web"), ["DATABASE_URL"]);
//! assert_eq!(settings.resolve_app("web", "protected_env_vars").unwrap().source, Source::Db);
//! ```

pub mod catalogue;
mod env;
mod snapshot;
mod value;

use serde_json::{Map, Value};

pub use catalogue::{Kind, Scope, SettingDef, SettingGroup};
pub use env::{app_env_var, global_env_var, EnvOverrideError, EnvOverrides};
pub use snapshot::{Resolved, Settings, Source};

/// Longest app name accepted.
const APP_NAME_MAX: usize = 63;

/// Why a settings request is refused (the API answers 400 with the message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The key is not in the catalogue.
    #[error("unknown setting {0}")]
    UnknownKey(String),
    /// The key exists but another endpoint manages it.
    #[error("setting {0} is not managed by this endpoint")]
    NotInGroup(String),
    /// The value does not fit the key's type.
    #[error("invalid value for {key}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The app name is not a Convox app name.
    #[error("invalid app name {0:?}: expected lower-case letters, digits and '-', at most 63 characters")]
    InvalidApp(String),
    /// The request body changes nothing.
    #[error("no settings given")]
    Empty,
}

/// Checks a Convox app name: lower-case letters, digits and `-`, starting with a letter or
/// digit, at most 63 characters.
pub fn check_app_name(app: &str) -> Result<(), SettingsError> {
    let valid = !app.is_empty()
        && app.len() <= APP_NAME_MAX
        && !app.starts_with('-')
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(SettingsError::InvalidApp(app.to_owned()))
    }
}

/// Checks the body of `PUT` on a group endpoint (key → value): every key must belong to the
/// group and every value must fit its type. Returns the settings with their stored form, in
/// body order.
pub fn group_update(
    group: &SettingGroup,
    body: Map<String, Value>,
) -> Result<Vec<(&'static SettingDef, Value)>, SettingsError> {
    if body.is_empty() {
        return Err(SettingsError::Empty);
    }
    body.into_iter()
        .map(|(key, value)| {
            let def = member(group, &key)?;
            Ok((def, def.normalize(value)?))
        })
        .collect()
}

/// Checks the keys of `DELETE` on a group endpoint; no keys means every key of the group.
pub fn group_delete(
    group: &SettingGroup,
    keys: &[String],
) -> Result<Vec<&'static SettingDef>, SettingsError> {
    if keys.is_empty() {
        return group
            .keys
            .iter()
            .map(|key| catalogue::lookup(group.scope, key).ok_or_else(|| unknown(key)))
            .collect();
    }
    let mut defs: Vec<&'static SettingDef> = Vec::new();
    for key in keys {
        let def = member(group, key)?;
        if !defs.iter().any(|d| d.key == def.key) {
            defs.push(def);
        }
    }
    Ok(defs)
}

fn unknown(key: &str) -> SettingsError {
    SettingsError::UnknownKey(key.to_owned())
}

fn member(group: &SettingGroup, key: &str) -> Result<&'static SettingDef, SettingsError> {
    let def = catalogue::lookup(group.scope, key).ok_or_else(|| unknown(key))?;
    if group.contains(def.key) {
        Ok(def)
    } else {
        Err(SettingsError::NotInGroup(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::catalogue::{group, keys};
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn group_bodies_are_checked() {
        let mfa = group(Scope::Global, "mfa-configuration").unwrap();
        let update = group_update(
            mfa,
            body(json!({"mfa_require_all_users": false, "mfa_step_up_window_minutes": 20})),
        )
        .unwrap();
        assert_eq!(update.len(), 2);
        assert_eq!(
            group_update(mfa, body(json!({"session_timeout_minutes": 10}))),
            Err(SettingsError::NotInGroup("session_timeout_minutes".into()))
        );
        assert_eq!(
            group_update(mfa, body(json!({"nope": 1}))),
            Err(SettingsError::UnknownKey("nope".into()))
        );
        assert!(matches!(
            group_update(mfa, body(json!({"mfa_require_all_users": "no"}))),
            Err(SettingsError::InvalidValue { .. })
        ));
        assert_eq!(group_update(mfa, Map::new()), Err(SettingsError::Empty));
        // App keys are not global keys.
        assert_eq!(
            group_update(mfa, body(json!({"protected_env_vars": []}))),
            Err(SettingsError::UnknownKey("protected_env_vars".into()))
        );
    }

    #[test]
    fn group_deletes_default_to_the_whole_group() {
        let deploy = group(Scope::Global, "deploy_approvals").unwrap();
        let all: Vec<&str> = group_delete(deploy, &[])
            .unwrap()
            .iter()
            .map(|d| d.key)
            .collect();
        assert_eq!(
            all,
            [
                keys::DEPLOY_APPROVALS_ENABLED,
                keys::DEPLOY_APPROVAL_WINDOW_MINUTES
            ]
        );
        let one = group_delete(
            deploy,
            &[
                keys::DEPLOY_APPROVALS_ENABLED.into(),
                keys::DEPLOY_APPROVALS_ENABLED.into(),
            ],
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert!(group_delete(deploy, &[keys::SESSION_TIMEOUT_MINUTES.into()]).is_err());
    }

    #[test]
    fn app_names_are_convox_names() {
        for good in ["web", "my-service", "a1"] {
            assert!(check_app_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Web", "my_service", "-web", "a/b", &"a".repeat(64)] {
            assert!(check_app_name(bad).is_err(), "{bad}");
        }
    }
}

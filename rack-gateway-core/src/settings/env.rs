//! Environment overrides: `RGW_SETTING_<KEY>` for global keys and
//! `RGW_APP_<APP>_SETTING_<KEY>` for app keys (app name upper-cased, `-` → `_`).
//!
//! Every such variable is parsed once, at start-up, by its key's type (JSON first, else a
//! boolean word, the raw string or a comma list). A variable that names no known key, or whose
//! value does not parse, is an [`EnvOverrideError`] naming it: start-up stops rather than
//! running with a setting silently ignored.
//!
//! ```
//! use rack_gateway_core::settings::{app_env_var, EnvOverrides};
//!
//! let env = EnvOverrides::from_vars([
//!     ("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true"),
//!     ("RGW_APP_MY_SERVICE_SETTING_PROTECTED_ENV_VARS", "database_url,port"),
//!     ("PATH", "/usr/bin"),
//! ])
//! .unwrap();
//! assert_eq!(env.len(), 2);
//! let var = app_env_var("my-service", "protected_env_vars");
//! assert_eq!(var, "RGW_APP_MY_SERVICE_SETTING_PROTECTED_ENV_VARS");
//! assert_eq!(env.get(&var), Some(&serde_json::json!(["DATABASE_URL", "PORT"])));
//!
//! let error = EnvOverrides::from_vars([("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "soon")]).unwrap_err();
//! assert_eq!(error.variable, "RGW_SETTING_SESSION_TIMEOUT_MINUTES");
//! ```

use std::collections::BTreeMap;

use serde_json::Value;

use super::catalogue::{self, SettingDef};

/// Prefix of global overrides.
const GLOBAL_PREFIX: &str = "RGW_SETTING_";
/// Prefix of app overrides.
const APP_PREFIX: &str = "RGW_APP_";
/// What separates the app from the key in app overrides.
const APP_INFIX: &str = "_SETTING_";

/// An environment override that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct EnvOverrideError {
    /// The variable's name.
    pub variable: String,
    /// What is wrong with it.
    pub problem: String,
}

/// `RGW_SETTING_<KEY>`.
pub fn global_env_var(key: &str) -> String {
    format!("{GLOBAL_PREFIX}{}", key.to_ascii_uppercase())
}

/// `RGW_APP_<APP>_SETTING_<KEY>`, the app upper-cased with `-` → `_`.
pub fn app_env_var(app: &str, key: &str) -> String {
    format!(
        "{APP_PREFIX}{}{APP_INFIX}{}",
        app.to_ascii_uppercase().replace('-', "_"),
        key.to_ascii_uppercase()
    )
}

/// The parsed overrides, by variable name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvOverrides {
    values: BTreeMap<String, Value>,
}

impl EnvOverrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Picks the setting overrides out of `vars` (other variables are ignored) and parses each.
    /// Values are trimmed and empty ones count as unset.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, EnvOverrideError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut values = BTreeMap::new();
        for (name, raw) in vars {
            let (name, raw) = (name.as_ref(), raw.as_ref().trim());
            if raw.is_empty() {
                continue;
            }
            let Some(def) = definition(name)? else {
                continue;
            };
            let value = def.parse_env(raw).map_err(|error| EnvOverrideError {
                variable: name.to_owned(),
                problem: match error {
                    super::SettingsError::InvalidValue { reason, .. } => {
                        format!("invalid {} ({}): {reason}", def.key, def.kind.name())
                    }
                    other => other.to_string(),
                },
            })?;
            values.insert(name.to_owned(), value);
        }
        Ok(EnvOverrides { values })
    }

    /// The parsed value of `variable`, if it was set.
    pub fn get(&self, variable: &str) -> Option<&Value> {
        self.values.get(variable)
    }

    /// How many overrides are set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The overrides, by variable name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// The setting `variable` overrides; `None` when it is not a settings variable at all.
fn definition(variable: &str) -> Result<Option<&'static SettingDef>, EnvOverrideError> {
    let unknown = |what: &str| EnvOverrideError {
        variable: variable.to_owned(),
        problem: match what {
            "app" => "names no known app setting (expected RGW_APP_<APP>_SETTING_<KEY>)".into(),
            _ => "names no known global setting (expected RGW_SETTING_<KEY>)".into(),
        },
    };
    if let Some(key) = variable.strip_prefix(GLOBAL_PREFIX) {
        return catalogue::GLOBAL
            .iter()
            .find(|def| key == def.key.to_ascii_uppercase())
            .map(Some)
            .ok_or_else(|| unknown("global"));
    }
    let Some(rest) = variable.strip_prefix(APP_PREFIX) else {
        return Ok(None);
    };
    if !rest.contains(APP_INFIX) && !rest.starts_with(&APP_INFIX[1..]) {
        return Ok(None);
    }
    catalogue::APP
        .iter()
        .find(|def| {
            let suffix = format!("{APP_INFIX}{}", def.key.to_ascii_uppercase());
            rest.len() > suffix.len() && rest.ends_with(&suffix)
        })
        .map(Some)
        .ok_or_else(|| unknown("app"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_follow_the_reference() {
        assert_eq!(
            global_env_var("mfa_step_up_window_minutes"),
            "RGW_SETTING_MFA_STEP_UP_WINDOW_MINUTES"
        );
        assert_eq!(
            app_env_var("my-service", "vcs_repo"),
            "RGW_APP_MY_SERVICE_SETTING_VCS_REPO"
        );
    }

    #[test]
    fn overrides_are_parsed_by_type_and_others_ignored() {
        let env = EnvOverrides::from_vars([
            ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "30"),
            ("RGW_SETTING_MFA_REQUIRE_ALL_USERS", " off "),
            ("RGW_SETTING_DEFAULT_CI_PROVIDER", ""),
            (
                "RGW_APP_WEB_SETTING_SERVICE_IMAGE_PATTERNS",
                "{\"web\":\".*\"}",
            ),
            ("RGW_APP_API_V2_SETTING_VCS_REPO", "acme/api"),
            ("RGW_APPLE", "x"),
            ("RGW_APP_NOTHING_HERE", "x"),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert_eq!(env.len(), 4);
        assert_eq!(
            env.get("RGW_SETTING_SESSION_TIMEOUT_MINUTES"),
            Some(&json!(30))
        );
        assert_eq!(
            env.get("RGW_SETTING_MFA_REQUIRE_ALL_USERS"),
            Some(&json!(false))
        );
        assert_eq!(env.get("RGW_SETTING_DEFAULT_CI_PROVIDER"), None);
        assert_eq!(
            env.get(&app_env_var("api-v2", "vcs_repo")),
            Some(&json!("acme/api"))
        );
    }

    #[test]
    fn bad_overrides_name_their_variable() {
        for (variable, value) in [
            ("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "perhaps"),
            ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "0"),
            ("RGW_SETTING_NO_SUCH_KEY", "1"),
            ("RGW_SETTING_allow_destructive_actions", "true"),
            ("RGW_APP_WEB_SETTING_NO_SUCH_KEY", "1"),
            ("RGW_APP_SETTING_VCS_REPO", "acme/api"),
            ("RGW_APP_WEB_SETTING_VERIFY_GIT_COMMIT_MODE", "head"),
            ("RGW_APP_WEB_SETTING_PROTECTED_ENV_VARS", "A=B"),
        ] {
            let error = EnvOverrides::from_vars([(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
            assert!(error.to_string().starts_with(variable), "{error}");
        }
    }
}

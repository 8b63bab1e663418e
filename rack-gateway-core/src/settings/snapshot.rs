//! [`Settings`]: one consistent view of the stored settings and the environment overrides,
//! resolved per key as DB row → environment variable → compiled default.
//!
//! ```
//! use std::sync::Arc;
//! use rack_gateway_core::settings::{EnvOverrides, Settings, Source};
//!
//! let env = EnvOverrides::from_vars([("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true")]).unwrap();
//! let settings = Settings::new(Arc::new(env));
//! assert!(settings.allow_destructive_actions());
//! let resolved = settings.resolve_global("allow_destructive_actions").unwrap();
//! assert_eq!(resolved.source, Source::Env);
//! assert_eq!(resolved.env_var, "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS");
//! assert_eq!(settings.session_timeout_minutes(), 5);
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::catalogue::{self, keys, Scope, SettingDef};
use super::env::{app_env_var, global_env_var, EnvOverrides};
use crate::rbac::Policy;
use crate::store::StoredSetting;

/// Where a resolved value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A row in the settings table.
    Db,
    /// An `RGW_SETTING_*` / `RGW_APP_*_SETTING_*` variable.
    Env,
    /// The compiled default.
    Default,
    /// An app value that is null, replaced by its global fallback key.
    GlobalDefault,
}

impl Source {
    /// `db`, `env`, `default` or `global_default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Db => "db",
            Source::Env => "env",
            Source::Default => "default",
            Source::GlobalDefault => "global_default",
        }
    }
}

/// A setting's effective value, where it came from, and the variable that would override it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The value.
    pub value: Value,
    /// Where it came from.
    pub source: Source,
    /// The environment variable for this key (and app).
    pub env_var: String,
}

/// Stored values of one scope (global, or one app), already checked against the catalogue.
type Stored = BTreeMap<&'static str, Value>;

/// An immutable snapshot of every setting; cheap to share behind an `Arc`.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    env: Arc<EnvOverrides>,
    global: Stored,
    apps: BTreeMap<String, Stored>,
}

impl Settings {
    /// Settings with nothing stored: environment overrides, else defaults.
    pub fn new(env: Arc<EnvOverrides>) -> Self {
        Settings {
            env,
            ..Settings::default()
        }
    }

    /// Settings from stored rows and the environment. Rows for keys outside the catalogue are
    /// left out (other features keep their own keys in the table); a row whose value no longer
    /// passes its type check is left out with a warning, so its key falls back to env/default.
    pub fn from_stored(env: Arc<EnvOverrides>, rows: &[StoredSetting]) -> Self {
        let mut settings = Settings::new(env);
        for row in rows {
            let scope = if row.app.is_some() {
                Scope::App
            } else {
                Scope::Global
            };
            let Some(def) = catalogue::lookup(scope, &row.key) else {
                continue;
            };
            match def.normalize(row.value.clone()) {
                Ok(value) => {
                    let target = match &row.app {
                        None => &mut settings.global,
                        Some(app) => settings.apps.entry(app.clone()).or_default(),
                    };
                    target.insert(def.key, value);
                }
                Err(error) => tracing::warn!(
                    app = row.app.as_deref().unwrap_or(""),
                    key = %row.key,
                    %error,
                    "ignoring a stored setting that does not pass its type check"
                ),
            }
        }
        settings
    }

    /// A copy with the stored value of `key` (of `app`, or global) set to the normalised
    /// `value`, or removed when `value` is `None`. Keys outside the catalogue and values that do
    /// not fit are left out, as in [`Settings::from_stored`].
    pub fn with_stored(&self, app: Option<&str>, key: &str, value: Option<Value>) -> Settings {
        let mut next = self.clone();
        let scope = if app.is_some() {
            Scope::App
        } else {
            Scope::Global
        };
        let Some(def) = catalogue::lookup(scope, key) else {
            return next;
        };
        let target = match app {
            None => &mut next.global,
            Some(app) => next.apps.entry(app.to_owned()).or_default(),
        };
        match value.map(|v| def.normalize(v)) {
            Some(Ok(value)) => {
                target.insert(def.key, value);
            }
            Some(Err(_)) | None => {
                target.remove(def.key);
            }
        }
        next
    }

    /// The environment overrides this snapshot resolves with.
    pub fn env(&self) -> &Arc<EnvOverrides> {
        &self.env
    }

    /// Resolves a global setting: DB row → `RGW_SETTING_<KEY>` → default.
    pub fn resolve_global(&self, key: &str) -> Option<Resolved> {
        catalogue::global(key).map(|def| self.global_def(def))
    }

    /// Resolves an app setting: DB row → `RGW_APP_<APP>_SETTING_<KEY>` → default; a null
    /// value of a key with a global fallback resolves that global key (`global_default`).
    pub fn resolve_app(&self, app: &str, key: &str) -> Option<Resolved> {
        catalogue::app(key).map(|def| self.app_def(app, def))
    }

    /// Every global setting, resolved.
    pub fn global_all(&self) -> BTreeMap<&'static str, Resolved> {
        catalogue::GLOBAL
            .iter()
            .map(|def| (def.key, self.global_def(def)))
            .collect()
    }

    /// Every setting of `app`, resolved.
    pub fn app_all(&self, app: &str) -> BTreeMap<&'static str, Resolved> {
        catalogue::APP
            .iter()
            .map(|def| (def.key, self.app_def(app, def)))
            .collect()
    }

    /// The stored (DB) value of a setting, if any.
    pub fn stored(&self, app: Option<&str>, key: &str) -> Option<&Value> {
        match app {
            None => self.global.get(key),
            Some(app) => self.apps.get(app)?.get(key),
        }
    }

    fn global_def(&self, def: &SettingDef) -> Resolved {
        let env_var = global_env_var(def.key);
        self.pick(self.global.get(def.key), env_var, def)
    }

    fn app_def(&self, app: &str, def: &SettingDef) -> Resolved {
        let env_var = app_env_var(app, def.key);
        let stored = self.apps.get(app).and_then(|values| values.get(def.key));
        let resolved = self.pick(stored, env_var, def);
        match def.global_fallback {
            Some(global) if resolved.value.is_null() => match self.resolve_global(global) {
                Some(fallback) => Resolved {
                    value: fallback.value,
                    source: Source::GlobalDefault,
                    env_var: resolved.env_var,
                },
                None => resolved,
            },
            _ => resolved,
        }
    }

    fn pick(&self, stored: Option<&Value>, env_var: String, def: &SettingDef) -> Resolved {
        let (value, source) = match (stored, self.env.get(&env_var)) {
            (Some(value), _) => (value.clone(), Source::Db),
            (None, Some(value)) => (value.clone(), Source::Env),
            (None, None) => (def.default_value(), Source::Default),
        };
        Resolved {
            value,
            source,
            env_var,
        }
    }

    fn global_bool(&self, key: &str) -> bool {
        typed(self.resolve_global(key), key, Scope::Global, Value::as_bool).unwrap_or(false)
    }

    fn global_count(&self, key: &str) -> u32 {
        typed(self.resolve_global(key), key, Scope::Global, |v| {
            v.as_u64().and_then(|n| u32::try_from(n).ok())
        })
        .unwrap_or(1)
    }

    fn global_text(&self, key: &str) -> String {
        typed(self.resolve_global(key), key, Scope::Global, |v| {
            v.as_str().map(str::to_owned)
        })
        .unwrap_or_default()
    }

    fn app_bool(&self, app: &str, key: &str) -> bool {
        typed(self.resolve_app(app, key), key, Scope::App, Value::as_bool).unwrap_or(false)
    }

    fn app_text(&self, app: &str, key: &str) -> Option<String> {
        typed(self.resolve_app(app, key), key, Scope::App, |v| {
            v.as_str().map(str::to_owned)
        })
    }

    fn app_list(&self, app: &str, key: &str) -> Vec<String> {
        typed(self.resolve_app(app, key), key, Scope::App, |v| {
            v.as_array().map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
    }

    /// Whether destructive rack actions (`DELETE /apps/{name}`) are allowed.
    pub fn allow_destructive_actions(&self) -> bool {
        self.global_bool(keys::ALLOW_DESTRUCTIVE_ACTIONS)
    }

    /// The RBAC policy switches these settings imply.
    pub fn policy(&self) -> Policy {
        Policy {
            allow_destructive_actions: self.allow_destructive_actions(),
        }
    }

    /// Whether deploy approvals are enabled.
    pub fn deploy_approvals_enabled(&self) -> bool {
        self.global_bool(keys::DEPLOY_APPROVALS_ENABLED)
    }

    /// Lifetime of an approval, in minutes.
    pub fn deploy_approval_window_minutes(&self) -> u32 {
        self.global_count(keys::DEPLOY_APPROVAL_WINDOW_MINUTES)
    }

    /// Whether MFA is required of every user.
    pub fn mfa_require_all_users(&self) -> bool {
        self.global_bool(keys::MFA_REQUIRE_ALL_USERS)
    }

    /// Idle timeout of web sessions, in minutes.
    pub fn session_timeout_minutes(&self) -> u32 {
        self.global_count(keys::SESSION_TIMEOUT_MINUTES)
    }

    /// Lifetime of a web session from sign-in, in hours.
    pub fn session_absolute_hours(&self) -> u32 {
        self.global_count(keys::SESSION_ABSOLUTE_HOURS)
    }

    /// Idle timeout of CLI sessions, in days.
    pub fn cli_session_idle_days(&self) -> u32 {
        self.global_count(keys::CLI_SESSION_IDLE_DAYS)
    }

    /// Lifetime of a CLI session from sign-in, in days.
    pub fn cli_session_absolute_days(&self) -> u32 {
        self.global_count(keys::CLI_SESSION_ABSOLUTE_DAYS)
    }

    /// Step-up freshness window, in minutes.
    pub fn mfa_step_up_window_minutes(&self) -> u32 {
        self.global_count(keys::MFA_STEP_UP_WINDOW_MINUTES)
    }

    /// Trusted device lifetime, in days.
    pub fn mfa_trusted_device_ttl_days(&self) -> u32 {
        self.global_count(keys::MFA_TRUSTED_DEVICE_TTL_DAYS)
    }

    /// The global default CI provider.
    pub fn default_ci_provider(&self) -> String {
        self.global_text(keys::DEFAULT_CI_PROVIDER)
    }

    /// The global default VCS provider.
    pub fn default_vcs_provider(&self) -> String {
        self.global_text(keys::DEFAULT_VCS_PROVIDER)
    }

    /// Env names of `app` that can never be changed through the gateway (upper case).
    pub fn protected_env_vars(&self, app: &str) -> Vec<String> {
        self.app_list(app, keys::PROTECTED_ENV_VARS)
    }

    /// Extra secret env names of `app` (upper case).
    pub fn secret_env_vars(&self, app: &str) -> Vec<String> {
        self.app_list(app, keys::SECRET_ENV_VARS)
    }

    /// Commands approval-gated tokens may run in `app` (empty: any).
    pub fn approved_deploy_commands(&self, app: &str) -> Vec<String> {
        self.app_list(app, keys::APPROVED_DEPLOY_COMMANDS)
    }

    /// Service name (or `*`) → image regex, for `app`.
    pub fn service_image_patterns(&self, app: &str) -> BTreeMap<String, String> {
        typed(
            self.resolve_app(app, keys::SERVICE_IMAGE_PATTERNS),
            keys::SERVICE_IMAGE_PATTERNS,
            Scope::App,
            |v| {
                v.as_object().map(|map| {
                    map.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
            },
        )
        .unwrap_or_default()
    }

    /// The CI provider of `app` (its own, else the global default).
    pub fn ci_provider(&self, app: &str) -> String {
        self.app_text(app, keys::CI_PROVIDER).unwrap_or_default()
    }

    /// The VCS provider of `app` (its own, else the global default).
    pub fn vcs_provider(&self, app: &str) -> String {
        self.app_text(app, keys::VCS_PROVIDER).unwrap_or_default()
    }

    /// The `owner/repo` of `app`, if set.
    pub fn vcs_repo(&self, app: &str) -> Option<String> {
        self.app_text(app, keys::VCS_REPO)
    }

    /// The default branch of `app`.
    pub fn default_branch(&self, app: &str) -> String {
        self.app_text(app, keys::DEFAULT_BRANCH).unwrap_or_default()
    }

    /// `latest` or `branch`.
    pub fn verify_git_commit_mode(&self, app: &str) -> String {
        self.app_text(app, keys::VERIFY_GIT_COMMIT_MODE)
            .unwrap_or_default()
    }

    /// The CircleCI approval job of `app` (may be empty).
    pub fn circleci_approval_job_name(&self, app: &str) -> String {
        self.app_text(app, keys::CIRCLECI_APPROVAL_JOB_NAME)
            .unwrap_or_default()
    }

    /// Whether approving in the gateway approves the CircleCI job of `app`.
    pub fn circleci_auto_approve_on_approval(&self, app: &str) -> bool {
        self.app_bool(app, keys::CIRCLECI_AUTO_APPROVE_ON_APPROVAL)
    }

    /// Whether `app` accepts approval requests from its default branch.
    pub fn allow_deploy_from_default_branch(&self, app: &str) -> bool {
        self.app_bool(app, keys::ALLOW_DEPLOY_FROM_DEFAULT_BRANCH)
    }

    /// Whether a PR comment is posted for `app`'s requests.
    pub fn github_post_pr_comment(&self, app: &str) -> bool {
        self.app_bool(app, keys::GITHUB_POST_PR_COMMENT)
    }

    /// Whether commits of `app` are verified on GitHub.
    pub fn github_verification(&self, app: &str) -> bool {
        self.app_bool(app, keys::GITHUB_VERIFICATION)
    }

    /// Whether `app` needs an open PR for the branch.
    pub fn require_pr_for_branch(&self, app: &str) -> bool {
        self.app_bool(app, keys::REQUIRE_PR_FOR_BRANCH)
    }
}

/// Extracts a typed value; values are checked on the way in, so a mismatch means the catalogue
/// and a getter disagree: the compiled default is used instead.
fn typed<T>(
    resolved: Option<Resolved>,
    key: &str,
    scope: Scope,
    get: impl Fn(&Value) -> Option<T>,
) -> Option<T> {
    if let Some(value) = resolved.as_ref().and_then(|r| get(&r.value)) {
        return Some(value);
    }
    let def = catalogue::lookup(scope, key)?;
    if resolved.as_ref().is_some_and(|r| !r.value.is_null()) {
        tracing::error!(key, "setting has an unexpected type; using its default");
    }
    get(&def.default_value())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn row(app: Option<&str>, key: &str, value: Value) -> StoredSetting {
        StoredSetting {
            app: app.map(str::to_owned),
            key: key.to_owned(),
            value,
            updated_at: Utc::now(),
            updated_by: Some("admin@example.com".into()),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Arc<EnvOverrides> {
        Arc::new(EnvOverrides::from_vars(pairs.iter().copied()).unwrap())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = Settings::new(env(&[]));
        assert!(!settings.allow_destructive_actions());
        assert!(settings.deploy_approvals_enabled());
        assert_eq!(settings.deploy_approval_window_minutes(), 15);
        assert!(settings.mfa_require_all_users());
        assert_eq!(settings.session_timeout_minutes(), 5);
        assert_eq!(settings.session_absolute_hours(), 12);
        assert_eq!(settings.cli_session_idle_days(), 7);
        assert_eq!(settings.cli_session_absolute_days(), 30);
        assert_eq!(settings.mfa_step_up_window_minutes(), 10);
        assert_eq!(settings.mfa_trusted_device_ttl_days(), 30);
        assert_eq!(settings.default_ci_provider(), "circleci");
        assert_eq!(settings.default_vcs_provider(), "github");
        assert!(settings.protected_env_vars("web").is_empty());
        assert!(settings.service_image_patterns("web").is_empty());
        assert_eq!(settings.default_branch("web"), "main");
        assert_eq!(settings.verify_git_commit_mode("web"), "latest");
        assert!(settings.github_verification("web"));
        assert!(!settings.allow_deploy_from_default_branch("web"));
        assert_eq!(settings.vcs_repo("web"), None);
        let all = settings.global_all();
        assert_eq!(all.len(), catalogue::GLOBAL.len());
        assert!(all.values().all(|r| r.source == Source::Default));
        assert_eq!(settings.app_all("web").len(), catalogue::APP.len());
    }

    #[test]
    fn db_beats_env_beats_default() {
        let env = env(&[
            ("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true"),
            ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "45"),
            ("RGW_APP_MY_APP_SETTING_PROTECTED_ENV_VARS", "port"),
        ]);
        let only_env = Settings::new(Arc::clone(&env));
        assert!(only_env.allow_destructive_actions());
        assert_eq!(only_env.session_timeout_minutes(), 45);
        assert_eq!(only_env.protected_env_vars("my-app"), ["PORT"]);
        assert!(only_env.protected_env_vars("other").is_empty());

        let stored = Settings::from_stored(
            Arc::clone(&env),
            &[
                row(None, keys::ALLOW_DESTRUCTIVE_ACTIONS, json!(false)),
                row(Some("my-app"), keys::PROTECTED_ENV_VARS, json!(["DB_URL"])),
            ],
        );
        let flag = stored
            .resolve_global(keys::ALLOW_DESTRUCTIVE_ACTIONS)
            .unwrap();
        assert_eq!((flag.value, flag.source), (json!(false), Source::Db));
        assert_eq!(flag.env_var, "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS");
        let timeout = stored
            .resolve_global(keys::SESSION_TIMEOUT_MINUTES)
            .unwrap();
        assert_eq!((timeout.value, timeout.source), (json!(45), Source::Env));
        let window = stored
            .resolve_global(keys::MFA_STEP_UP_WINDOW_MINUTES)
            .unwrap();
        assert_eq!((window.value, window.source), (json!(10), Source::Default));
        let protected = stored
            .resolve_app("my-app", keys::PROTECTED_ENV_VARS)
            .unwrap();
        assert_eq!(protected.source, Source::Db);
        assert_eq!(
            protected.env_var,
            "RGW_APP_MY_APP_SETTING_PROTECTED_ENV_VARS"
        );
        assert_eq!(stored.protected_env_vars("my-app"), ["DB_URL"]);
        assert!(!stored.policy().allow_destructive_actions);
    }

    #[test]
    fn null_providers_fall_back_to_the_global_default() {
        let settings = Settings::from_stored(
            env(&[("RGW_SETTING_DEFAULT_VCS_PROVIDER", "gitlab")]),
            &[
                row(None, keys::DEFAULT_CI_PROVIDER, json!("buildkite")),
                row(Some("web"), keys::VCS_PROVIDER, json!(null)),
                row(Some("api"), keys::VCS_PROVIDER, json!("github")),
            ],
        );
        let web = settings.resolve_app("web", keys::VCS_PROVIDER).unwrap();
        assert_eq!(
            (web.value, web.source),
            (json!("gitlab"), Source::GlobalDefault)
        );
        assert_eq!(web.env_var, "RGW_APP_WEB_SETTING_VCS_PROVIDER");
        let api = settings.resolve_app("api", keys::VCS_PROVIDER).unwrap();
        assert_eq!((api.value, api.source), (json!("github"), Source::Db));
        assert_eq!(settings.ci_provider("web"), "buildkite");
        assert_eq!(
            settings
                .resolve_app("web", keys::CI_PROVIDER)
                .unwrap()
                .source,
            Source::GlobalDefault
        );
    }

    #[test]
    fn unknown_and_ill_typed_rows_are_ignored() {
        let settings = Settings::from_stored(
            env(&[]),
            &[
                row(None, "rack_tls_cert", json!({"fingerprint": "AB"})),
                row(None, keys::SESSION_TIMEOUT_MINUTES, json!("ten")),
                row(Some("web"), keys::ALLOW_DESTRUCTIVE_ACTIONS, json!(true)),
            ],
        );
        assert_eq!(settings.session_timeout_minutes(), 5);
        assert!(settings.resolve_global("rack_tls_cert").is_none());
        assert!(settings
            .stored(Some("web"), keys::ALLOW_DESTRUCTIVE_ACTIONS)
            .is_none());
        assert!(!settings.allow_destructive_actions());
    }

    #[test]
    fn with_stored_sets_and_removes_one_value() {
        let base = Settings::new(env(&[("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "20")]));
        let set = base.with_stored(None, keys::SESSION_TIMEOUT_MINUTES, Some(json!(9)));
        assert_eq!(set.session_timeout_minutes(), 9);
        assert_eq!(base.session_timeout_minutes(), 20);
        let removed = set.with_stored(None, keys::SESSION_TIMEOUT_MINUTES, None);
        assert_eq!(removed.session_timeout_minutes(), 20);
        let app = base.with_stored(Some("web"), keys::SECRET_ENV_VARS, Some(json!(["x"])));
        assert_eq!(app.secret_env_vars("web"), ["X"]);
        let unknown = base.with_stored(None, "nope", Some(json!(1)));
        assert!(unknown.stored(None, "nope").is_none());
    }

    #[test]
    fn sources_serialize_in_snake_case() {
        let resolved = Resolved {
            value: json!(true),
            source: Source::GlobalDefault,
            env_var: "X".into(),
        };
        assert_eq!(
            serde_json::to_value(&resolved).unwrap(),
            json!({"value": true, "source": "global_default", "env_var": "X"})
        );
        assert_eq!(Source::Db.as_str(), "db");
    }
}

//! The catalogue: every setting the gateway knows, with its type, default and group.
//!
//! Global keys follow reference §2.2 and app keys §2.3. A group is a set of keys saved together
//! through one endpoint, authorized by `gateway:setting_group:<group>`; the four app list/map
//! keys have endpoints of their own, authorized by `gateway:setting:<key>`.
//!
//! ```
//! use rack_gateway_core::settings::catalogue::{self, Scope};
//!
//! let def = catalogue::global("allow_destructive_actions").unwrap();
//! assert_eq!(def.scope, Scope::Global);
//! assert_eq!(def.default_value(), serde_json::json!(false));
//! let group = catalogue::group(Scope::Global, "allow-destructive-actions").unwrap();
//! assert_eq!(group.permission(), "gateway:setting_group:allow_destructive_actions");
//! ```

use serde_json::{json, Value};

/// Key names, so callers never spell them twice.
pub mod keys {
    /// Global: allow destructive rack actions (`DELETE /apps/{name}`).
    pub const ALLOW_DESTRUCTIVE_ACTIONS: &str = "allow_destructive_actions";
    /// Global: fallback of the app setting `ci_provider`.
    pub const DEFAULT_CI_PROVIDER: &str = "default_ci_provider";
    /// Global: fallback of the app setting `vcs_provider`.
    pub const DEFAULT_VCS_PROVIDER: &str = "default_vcs_provider";
    /// Global: the deploy approval feature is on.
    pub const DEPLOY_APPROVALS_ENABLED: &str = "deploy_approvals_enabled";
    /// Global: lifetime of an approval, in minutes.
    pub const DEPLOY_APPROVAL_WINDOW_MINUTES: &str = "deploy_approval_window_minutes";
    /// Global: MFA enrollment and challenge for everyone.
    pub const MFA_REQUIRE_ALL_USERS: &str = "mfa_require_all_users";
    /// Global: sliding idle timeout of web sessions, in minutes.
    pub const SESSION_TIMEOUT_MINUTES: &str = "session_timeout_minutes";
    /// Global: lifetime of a web session from sign-in, in hours.
    pub const SESSION_ABSOLUTE_HOURS: &str = "session_absolute_hours";
    /// Global: sliding idle timeout of CLI sessions, in days.
    pub const CLI_SESSION_IDLE_DAYS: &str = "cli_session_idle_days";
    /// Global: lifetime of a CLI session from sign-in, in days.
    pub const CLI_SESSION_ABSOLUTE_DAYS: &str = "cli_session_absolute_days";
    /// Global: step-up freshness window, in minutes.
    pub const MFA_STEP_UP_WINDOW_MINUTES: &str = "mfa_step_up_window_minutes";
    /// Global: trusted device lifetime, in days.
    pub const MFA_TRUSTED_DEVICE_TTL_DAYS: &str = "mfa_trusted_device_ttl_days";

    /// App: allow approval requests from the default branch.
    pub const ALLOW_DEPLOY_FROM_DEFAULT_BRANCH: &str = "allow_deploy_from_default_branch";
    /// App: allow-list of commands approval-gated tokens may run.
    pub const APPROVED_DEPLOY_COMMANDS: &str = "approved_deploy_commands";
    /// App: CI provider (null: the global default).
    pub const CI_PROVIDER: &str = "ci_provider";
    /// App: CircleCI approval job name.
    pub const CIRCLECI_APPROVAL_JOB_NAME: &str = "circleci_approval_job_name";
    /// App: approve the CircleCI job when an admin approves.
    pub const CIRCLECI_AUTO_APPROVE_ON_APPROVAL: &str = "circleci_auto_approve_on_approval";
    /// App: the default branch.
    pub const DEFAULT_BRANCH: &str = "default_branch";
    /// App: post a PR comment when a request is created.
    pub const GITHUB_POST_PR_COMMENT: &str = "github_post_pr_comment";
    /// App: verify commit and branch on GitHub.
    pub const GITHUB_VERIFICATION: &str = "github_verification";
    /// App: env names that can never be changed through the gateway.
    pub const PROTECTED_ENV_VARS: &str = "protected_env_vars";
    /// App: an open PR must exist for the branch.
    pub const REQUIRE_PR_FOR_BRANCH: &str = "require_pr_for_branch";
    /// App: extra env names treated as secrets.
    pub const SECRET_ENV_VARS: &str = "secret_env_vars";
    /// App: service name (or `*`) → image regex.
    pub const SERVICE_IMAGE_PATTERNS: &str = "service_image_patterns";
    /// App: VCS provider (null: the global default).
    pub const VCS_PROVIDER: &str = "vcs_provider";
    /// App: `owner/repo`.
    pub const VCS_REPO: &str = "vcs_repo";
    /// App: `latest` or `branch`.
    pub const VERIFY_GIT_COMMIT_MODE: &str = "verify_git_commit_mode";
}

use keys::*;

/// Whether a setting is gateway-wide or per app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One value for the gateway.
    Global,
    /// One value per Convox app.
    App,
}

/// The type of a setting's value; values are checked and normalised by
/// [`SettingDef::normalize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// A whole number in `min..=max`.
    Integer {
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// A trimmed string; empty only when `allow_empty`.
    Text {
        /// Whether `""` is accepted.
        allow_empty: bool,
    },
    /// A trimmed string or null; `""` becomes null.
    OptionalText,
    /// One of a fixed set of strings (lower-cased).
    Choice(&'static [&'static str]),
    /// Null or `owner/repo`.
    Repository,
    /// A list of trimmed, non-empty, de-duplicated strings (null: empty).
    List,
    /// A list of env names, upper-cased and de-duplicated (null: empty).
    EnvNames,
    /// An object from a non-empty name to a non-empty string (null: empty).
    Map,
}

impl Kind {
    /// A short name for messages and the API (`bool`, `integer`, `string`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Integer { .. } => "integer",
            Kind::Text { .. } | Kind::Choice(_) => "string",
            Kind::OptionalText | Kind::Repository => "string or null",
            Kind::List | Kind::EnvNames => "list of strings",
            Kind::Map => "map of strings",
        }
    }
}

/// A compiled default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// A boolean.
    Bool(bool),
    /// A number.
    Integer(i64),
    /// A string.
    Text(&'static str),
    /// No value (for app keys: the global fallback applies).
    Null,
    /// `[]`.
    EmptyList,
    /// `{}`.
    EmptyMap,
}

/// How fresh a caller's MFA must be to change a group (enforced once MFA lands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MfaLevel {
    /// A recent step-up is enough.
    StepUp,
    /// A challenge on every change.
    Always,
}

/// One setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingDef {
    /// Key, lower-case with `_`.
    pub key: &'static str,
    /// Global or per app.
    pub scope: Scope,
    /// Value type.
    pub kind: Kind,
    /// Compiled default.
    pub default: DefaultValue,
    /// For app keys: the global key used when the value is null (reported as `global_default`).
    pub global_fallback: Option<&'static str>,
    /// What it does, in one line.
    pub description: &'static str,
}

impl SettingDef {
    /// The default as JSON.
    pub fn default_value(&self) -> Value {
        match self.default {
            DefaultValue::Bool(b) => json!(b),
            DefaultValue::Integer(n) => json!(n),
            DefaultValue::Text(s) => json!(s),
            DefaultValue::Null => Value::Null,
            DefaultValue::EmptyList => json!([]),
            DefaultValue::EmptyMap => json!({}),
        }
    }
}

/// Keys saved together through one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingGroup {
    /// Name with `_` (in the permission); the URL uses `-`.
    pub name: &'static str,
    /// Global or per app.
    pub scope: Scope,
    /// Its keys.
    pub keys: &'static [&'static str],
    /// MFA freshness needed to change it.
    pub mfa: MfaLevel,
}

impl SettingGroup {
    /// `gateway:setting_group:<name>`.
    pub fn permission(&self) -> String {
        format!("gateway:setting_group:{}", self.name)
    }

    /// The URL segment (`-` for `_`).
    pub fn path(&self) -> String {
        self.name.replace('_', "-")
    }

    /// Whether `key` belongs to the group.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(&key)
    }
}

const fn global_def(
    key: &'static str,
    kind: Kind,
    default: DefaultValue,
    description: &'static str,
) -> SettingDef {
    SettingDef {
        key,
        scope: Scope::Global,
        kind,
        default,
        global_fallback: None,
        description,
    }
}

const fn app_def(
    key: &'static str,
    kind: Kind,
    default: DefaultValue,
    description: &'static str,
) -> SettingDef {
    SettingDef {
        key,
        scope: Scope::App,
        kind,
        default,
        global_fallback: None,
        description,
    }
}

const MINUTES_PER_WEEK: i64 = 7 * 24 * 60;

/// Global settings (reference §2.2), in API order.
pub const GLOBAL: &[SettingDef] = &[
    global_def(
        ALLOW_DESTRUCTIVE_ACTIONS,
        Kind::Bool,
        DefaultValue::Bool(false),
        "when false, DELETE /apps/{name} is refused for everyone (disabled by policy)",
    ),
    global_def(
        DEFAULT_CI_PROVIDER,
        Kind::Text { allow_empty: false },
        DefaultValue::Text("circleci"),
        "fallback of the app setting ci_provider",
    ),
    global_def(
        DEFAULT_VCS_PROVIDER,
        Kind::Text { allow_empty: false },
        DefaultValue::Text("github"),
        "fallback of the app setting vcs_provider",
    ),
    global_def(
        DEPLOY_APPROVALS_ENABLED,
        Kind::Bool,
        DefaultValue::Bool(true),
        "deploy approval requests are available and required for gated tokens",
    ),
    global_def(
        DEPLOY_APPROVAL_WINDOW_MINUTES,
        Kind::Integer {
            min: 1,
            max: MINUTES_PER_WEEK,
        },
        DefaultValue::Integer(15),
        "lifetime of an approval, in minutes",
    ),
    global_def(
        MFA_REQUIRE_ALL_USERS,
        Kind::Bool,
        DefaultValue::Bool(true),
        "enforce MFA enrollment and challenge for everyone",
    ),
    global_def(
        SESSION_TIMEOUT_MINUTES,
        Kind::Integer {
            min: 1,
            max: 30 * 24 * 60,
        },
        DefaultValue::Integer(5),
        "sliding idle timeout of web sessions, in minutes",
    ),
    global_def(
        SESSION_ABSOLUTE_HOURS,
        Kind::Integer { min: 1, max: 720 },
        DefaultValue::Integer(12),
        "a web session ends this many hours after sign-in, however busy",
    ),
    global_def(
        CLI_SESSION_IDLE_DAYS,
        Kind::Integer { min: 1, max: 90 },
        DefaultValue::Integer(7),
        "sliding idle timeout of CLI sessions, in days",
    ),
    global_def(
        CLI_SESSION_ABSOLUTE_DAYS,
        Kind::Integer { min: 1, max: 365 },
        DefaultValue::Integer(30),
        "a CLI session ends this many days after sign-in, however busy",
    ),
    global_def(
        MFA_STEP_UP_WINDOW_MINUTES,
        Kind::Integer {
            min: 1,
            max: 24 * 60,
        },
        DefaultValue::Integer(10),
        "step-up freshness window, in minutes",
    ),
    global_def(
        MFA_TRUSTED_DEVICE_TTL_DAYS,
        Kind::Integer { min: 1, max: 365 },
        DefaultValue::Integer(30),
        "trusted device lifetime, in days",
    ),
];

/// App settings (reference §2.3), in API order.
pub const APP: &[SettingDef] = &[
    app_def(
        ALLOW_DEPLOY_FROM_DEFAULT_BRANCH,
        Kind::Bool,
        DefaultValue::Bool(false),
        "accept approval requests whose branch is the default branch",
    ),
    app_def(
        APPROVED_DEPLOY_COMMANDS,
        Kind::List,
        DefaultValue::EmptyList,
        "commands approval-gated tokens may start or exec (empty: any)",
    ),
    SettingDef {
        global_fallback: Some(DEFAULT_CI_PROVIDER),
        ..app_def(
            CI_PROVIDER,
            Kind::OptionalText,
            DefaultValue::Null,
            "CI provider; null uses default_ci_provider",
        )
    },
    app_def(
        CIRCLECI_APPROVAL_JOB_NAME,
        Kind::Text { allow_empty: true },
        DefaultValue::Text(""),
        "CircleCI approval job to approve",
    ),
    app_def(
        CIRCLECI_AUTO_APPROVE_ON_APPROVAL,
        Kind::Bool,
        DefaultValue::Bool(false),
        "approve the CircleCI job when an admin approves",
    ),
    app_def(
        DEFAULT_BRANCH,
        Kind::Text { allow_empty: false },
        DefaultValue::Text("main"),
        "the branch the default-branch restriction applies to",
    ),
    app_def(
        GITHUB_POST_PR_COMMENT,
        Kind::Bool,
        DefaultValue::Bool(true),
        "post a PR comment when a request is created",
    ),
    app_def(
        GITHUB_VERIFICATION,
        Kind::Bool,
        DefaultValue::Bool(true),
        "verify commit and branch on GitHub at request creation",
    ),
    app_def(
        PROTECTED_ENV_VARS,
        Kind::EnvNames,
        DefaultValue::EmptyList,
        "env names that can never be changed through the gateway",
    ),
    app_def(
        REQUIRE_PR_FOR_BRANCH,
        Kind::Bool,
        DefaultValue::Bool(true),
        "an open PR must exist for the branch",
    ),
    app_def(
        SECRET_ENV_VARS,
        Kind::EnvNames,
        DefaultValue::EmptyList,
        "extra env names masked unless the caller has convox:secret:read",
    ),
    app_def(
        SERVICE_IMAGE_PATTERNS,
        Kind::Map,
        DefaultValue::EmptyMap,
        "service name (or *) to the regex its image must match",
    ),
    SettingDef {
        global_fallback: Some(DEFAULT_VCS_PROVIDER),
        ..app_def(
            VCS_PROVIDER,
            Kind::OptionalText,
            DefaultValue::Null,
            "VCS provider; null uses default_vcs_provider",
        )
    },
    app_def(VCS_REPO, Kind::Repository, DefaultValue::Null, "owner/repo"),
    app_def(
        VERIFY_GIT_COMMIT_MODE,
        Kind::Choice(&["latest", "branch"]),
        DefaultValue::Text("latest"),
        "latest: the commit is the branch head; branch: the commit is in the branch",
    ),
];

/// Setting groups (reference §2.2 and §2.3).
pub const GROUPS: &[SettingGroup] = &[
    SettingGroup {
        name: "mfa_configuration",
        scope: Scope::Global,
        keys: &[
            MFA_REQUIRE_ALL_USERS,
            MFA_TRUSTED_DEVICE_TTL_DAYS,
            MFA_STEP_UP_WINDOW_MINUTES,
        ],
        mfa: MfaLevel::Always,
    },
    SettingGroup {
        name: "allow_destructive_actions",
        scope: Scope::Global,
        keys: &[ALLOW_DESTRUCTIVE_ACTIONS],
        mfa: MfaLevel::Always,
    },
    SettingGroup {
        name: "vcs_and_ci_defaults",
        scope: Scope::Global,
        keys: &[DEFAULT_CI_PROVIDER, DEFAULT_VCS_PROVIDER],
        mfa: MfaLevel::StepUp,
    },
    SettingGroup {
        name: "deploy_approvals",
        scope: Scope::Global,
        keys: &[DEPLOY_APPROVALS_ENABLED, DEPLOY_APPROVAL_WINDOW_MINUTES],
        mfa: MfaLevel::Always,
    },
    SettingGroup {
        name: "session_configuration",
        scope: Scope::Global,
        keys: &[
            SESSION_TIMEOUT_MINUTES,
            SESSION_ABSOLUTE_HOURS,
            CLI_SESSION_IDLE_DAYS,
            CLI_SESSION_ABSOLUTE_DAYS,
        ],
        mfa: MfaLevel::StepUp,
    },
    SettingGroup {
        name: "vcs_ci_deploy",
        scope: Scope::App,
        keys: &[
            VCS_PROVIDER,
            VCS_REPO,
            CI_PROVIDER,
            CIRCLECI_APPROVAL_JOB_NAME,
            CIRCLECI_AUTO_APPROVE_ON_APPROVAL,
            GITHUB_VERIFICATION,
            GITHUB_POST_PR_COMMENT,
            ALLOW_DEPLOY_FROM_DEFAULT_BRANCH,
            REQUIRE_PR_FOR_BRANCH,
            DEFAULT_BRANCH,
            VERIFY_GIT_COMMIT_MODE,
        ],
        mfa: MfaLevel::Always,
    },
];

/// App keys with an endpoint of their own (`PUT /apps/{app}/settings/<key with ->`), each
/// authorized by `gateway:setting:<key>` at step-up level.
pub const APP_SINGLE_KEYS: &[&str] = &[
    PROTECTED_ENV_VARS,
    SECRET_ENV_VARS,
    APPROVED_DEPLOY_COMMANDS,
    SERVICE_IMAGE_PATTERNS,
];

/// The global setting `key`.
pub fn global(key: &str) -> Option<&'static SettingDef> {
    GLOBAL.iter().find(|def| def.key == key)
}

/// The app setting `key`.
pub fn app(key: &str) -> Option<&'static SettingDef> {
    APP.iter().find(|def| def.key == key)
}

/// The setting `key` of `scope`.
pub fn lookup(scope: Scope, key: &str) -> Option<&'static SettingDef> {
    match scope {
        Scope::Global => global(key),
        Scope::App => app(key),
    }
}

/// The group of `scope` named `name` (with `_` or `-`).
pub fn group(scope: Scope, name: &str) -> Option<&'static SettingGroup> {
    let name = name.replace('-', "_");
    GROUPS
        .iter()
        .find(|group| group.scope == scope && group.name == name)
}

/// The app key with an endpoint of its own named `segment` (`protected-env-vars` or
/// `protected_env_vars`).
pub fn app_single_key(segment: &str) -> Option<&'static SettingDef> {
    let key = segment.replace('-', "_");
    APP_SINGLE_KEYS
        .iter()
        .find(|k| **k == key)
        .and_then(|k| app(k))
}

/// `gateway:setting:<key>`.
pub fn key_permission(key: &str) -> String {
    format!("gateway:setting:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_well_formed() {
        for list in [GLOBAL, APP] {
            for (i, def) in list.iter().enumerate() {
                assert!(
                    def.key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{}",
                    def.key
                );
                assert!(list[..i].iter().all(|other| other.key != def.key));
                assert_eq!(
                    def.normalize(def.default_value()).as_ref(),
                    Ok(&def.default_value()),
                    "default of {} must be a valid value",
                    def.key
                );
            }
        }
    }

    #[test]
    fn every_group_key_exists_in_its_scope_and_global_keys_have_a_group() {
        for group in GROUPS {
            for key in group.keys {
                assert!(lookup(group.scope, key).is_some(), "{}: {key}", group.name);
            }
        }
        for def in GLOBAL {
            let groups = GROUPS.iter().filter(|g| g.contains(def.key)).count();
            assert_eq!(groups, 1, "{} must be in exactly one group", def.key);
        }
        for key in APP_SINGLE_KEYS {
            assert!(app(key).is_some());
            assert!(GROUPS.iter().all(|g| !g.contains(key)));
        }
        for def in APP {
            if let Some(fallback) = def.global_fallback {
                assert!(global(fallback).is_some(), "{}", def.key);
            }
        }
    }

    #[test]
    fn groups_and_single_keys_are_found_by_url_segment() {
        let group = group(Scope::Global, "vcs-and-ci-defaults").unwrap();
        assert_eq!(group.path(), "vcs-and-ci-defaults");
        assert!(super::group(Scope::App, "mfa-configuration").is_none());
        assert_eq!(
            app_single_key("protected-env-vars").map(|d| d.key),
            Some(PROTECTED_ENV_VARS)
        );
        assert!(app_single_key("vcs-repo").is_none());
        assert_eq!(
            key_permission(SECRET_ENV_VARS),
            "gateway:setting:secret_env_vars"
        );
    }
}

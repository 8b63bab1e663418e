//! Checking and normalising setting values by type, from the API (JSON) and from environment
//! variables (JSON first, else by type).
//!
//! ```
//! use rack_gateway_core::settings::catalogue;
//! use serde_json::json;
//!
//! let def = catalogue::app("protected_env_vars").unwrap();
//! assert_eq!(def.normalize(json!(["db_url", " DB_URL ", "Port"])).unwrap(), json!(["DB_URL", "PORT"]));
//! assert!(def.normalize(json!("DB_URL")).is_err());
//! assert_eq!(def.parse_env("db_url, port").unwrap(), json!(["DB_URL", "PORT"]));
//! ```

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::catalogue::{Kind, SettingDef};
use super::SettingsError;

/// Longest string value accepted (in characters).
const TEXT_MAX: usize = 1000;
/// Most items in a list or entries in a map.
const ITEMS_MAX: usize = 500;
/// Longest env name accepted.
const ENV_NAME_MAX: usize = 256;

impl SettingDef {
    /// Checks `value` against the setting's type and returns its stored form (trimmed strings,
    /// upper-cased and de-duplicated env names, `""` → null for optional strings).
    pub fn normalize(&self, value: Value) -> Result<Value, SettingsError> {
        let invalid = |reason: String| SettingsError::InvalidValue {
            key: self.key.to_owned(),
            reason,
        };
        normalize(self.kind, value).map_err(invalid)
    }

    /// Parses the raw text of an environment override: as JSON when that gives a valid value,
    /// else by type (a boolean word, the raw string, or a comma-separated list).
    pub fn parse_env(&self, raw: &str) -> Result<Value, SettingsError> {
        if let Ok(json) = serde_json::from_str::<Value>(raw) {
            if let Ok(value) = self.normalize(json) {
                return Ok(value);
            }
        }
        let fallback = match self.kind {
            Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Value::Bool(true),
                "false" | "0" | "no" | "off" => Value::Bool(false),
                _ => {
                    return Err(SettingsError::InvalidValue {
                        key: self.key.to_owned(),
                        reason: format!("expected true or false, got {raw:?}"),
                    })
                }
            },
            Kind::Text { .. } | Kind::OptionalText | Kind::Choice(_) | Kind::Repository => {
                Value::String(raw.to_owned())
            }
            Kind::List | Kind::EnvNames => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Value::String(item.to_owned()))
                    .collect(),
            ),
            Kind::Integer { .. } | Kind::Map => {
                // JSON was the only way: report why it was refused.
                let json = serde_json::from_str::<Value>(raw).map_err(|e| {
                    SettingsError::InvalidValue {
                        key: self.key.to_owned(),
                        reason: format!("expected {} as JSON: {e}", self.kind.name()),
                    }
                })?;
                return self.normalize(json);
            }
        };
        self.normalize(fallback)
    }
}

fn type_error(kind: Kind, value: &Value) -> String {
    let got = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    format!("expected {}, got {got}", kind.name())
}

fn check_text(text: &str, what: &str) -> Result<(), String> {
    if text.chars().count() > TEXT_MAX {
        return Err(format!("{what} is longer than {TEXT_MAX} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

fn normalize(kind: Kind, value: Value) -> Result<Value, String> {
    match (kind, value) {
        (Kind::Bool, value @ Value::Bool(_)) => Ok(value),
        (Kind::Integer { min, max }, Value::Number(number)) => match number.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Value::from(n)),
            Some(n) => Err(format!("{n} is outside {min}..={max}")),
            None => Err(format!(
                "expected a whole number in {min}..={max}, got {number}"
            )),
        },
        (Kind::Text { allow_empty }, Value::String(text)) => {
            let text = text.trim();
            check_text(text, "the value")?;
            if text.is_empty() && !allow_empty {
                return Err("must not be empty".into());
            }
            Ok(Value::String(text.to_owned()))
        }
        (Kind::OptionalText | Kind::Repository, Value::Null) => Ok(Value::Null),
        (Kind::OptionalText, Value::String(text)) => {
            let text = text.trim();
            check_text(text, "the value")?;
            Ok(if text.is_empty() {
                Value::Null
            } else {
                Value::String(text.to_owned())
            })
        }
        (Kind::Repository, Value::String(text)) => {
            let text = text.trim();
            if text.is_empty() {
                return Ok(Value::Null);
            }
            let part_ok = |part: &str| {
                !part.is_empty()
                    && part.len() <= 100
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            };
            match text.split_once('/') {
                Some((owner, repo)) if part_ok(owner) && part_ok(repo) => {
                    Ok(Value::String(text.to_owned()))
                }
                _ => Err(format!("expected owner/repo, got {text:?}")),
            }
        }
        (Kind::Choice(choices), Value::String(text)) => {
            let text = text.trim().to_ascii_lowercase();
            if choices.contains(&text.as_str()) {
                Ok(Value::String(text))
            } else {
                Err(format!(
                    "expected one of {}, got {text:?}",
                    choices.join(", ")
                ))
            }
        }
        (Kind::List | Kind::EnvNames | Kind::Map, Value::Null) => Ok(match kind {
            Kind::Map => Value::Object(Map::new()),
            _ => Value::Array(Vec::new()),
        }),
        (Kind::List, Value::Array(items)) => string_list(items, |item| {
            check_text(item, "an item")?;
            Ok((!item.is_empty()).then(|| item.to_owned()))
        }),
        (Kind::EnvNames, Value::Array(items)) => string_list(items, |item| {
            if item.is_empty() {
                return Ok(None);
            }
            let valid = item.len() <= ENV_NAME_MAX
                && item
                    .chars()
                    .all(|c| !c.is_control() && !c.is_whitespace() && c != '=');
            if !valid {
                return Err(format!(
                    "{item:?} is not an env name (no spaces, '=' or control characters, at most {ENV_NAME_MAX} characters)"
                ));
            }
            Ok(Some(item.to_uppercase()))
        }),
        (Kind::Map, Value::Object(entries)) => {
            if entries.len() > ITEMS_MAX {
                return Err(format!("more than {ITEMS_MAX} entries"));
            }
            let mut out = Map::new();
            for (name, value) in entries {
                let name = name.trim().to_owned();
                if name.is_empty() {
                    return Err("an entry has an empty name".into());
                }
                check_text(&name, "a name")?;
                let Value::String(text) = value else {
                    return Err(format!("the value of {name:?} must be a string"));
                };
                let text = text.trim();
                if text.is_empty() {
                    return Err(format!("the value of {name:?} is empty"));
                }
                check_text(text, "a value")?;
                out.insert(name, Value::String(text.to_owned()));
            }
            Ok(Value::Object(out))
        }
        (kind, value) => Err(type_error(kind, &value)),
    }
}

/// A list of strings, each trimmed and mapped by `item` (`None` drops it), de-duplicated in
/// first-seen order.
fn string_list(
    items: Vec<Value>,
    item: impl Fn(&str) -> Result<Option<String>, String>,
) -> Result<Value, String> {
    if items.len() > ITEMS_MAX {
        return Err(format!("more than {ITEMS_MAX} items"));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for value in items {
        let Value::String(text) = value else {
            return Err(format!("every item must be a string, got {value}"));
        };
        if let Some(text) = item(text.trim())? {
            if seen.insert(text.clone()) {
                out.push(Value::String(text));
            }
        }
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::catalogue::{self, keys};

    fn global(key: &str) -> &'static catalogue::SettingDef {
        catalogue::global(key).unwrap()
    }

    fn app(key: &str) -> &'static catalogue::SettingDef {
        catalogue::app(key).unwrap()
    }

    #[test]
    fn values_are_checked_by_type() {
        let flag = global(keys::ALLOW_DESTRUCTIVE_ACTIONS);
        assert_eq!(flag.normalize(json!(true)).unwrap(), json!(true));
        for bad in [json!("true"), json!(1), json!(null), json!([])] {
            let error = flag.normalize(bad.clone()).unwrap_err().to_string();
            assert!(
                error.contains("allow_destructive_actions"),
                "{bad}: {error}"
            );
        }
        let minutes = global(keys::SESSION_TIMEOUT_MINUTES);
        assert_eq!(minutes.normalize(json!(30)).unwrap(), json!(30));
        assert!(minutes.normalize(json!(0)).is_err());
        assert!(minutes.normalize(json!(1.5)).is_err());
        assert!(minutes.normalize(json!("30")).is_err());
        let provider = global(keys::DEFAULT_CI_PROVIDER);
        assert_eq!(
            provider.normalize(json!(" github ")).unwrap(),
            json!("github")
        );
        assert!(provider.normalize(json!("")).is_err());
        assert!(provider.normalize(json!("a\u{0}b")).is_err());
    }

    #[test]
    fn app_values_are_normalised() {
        let protected = app(keys::PROTECTED_ENV_VARS);
        assert_eq!(
            protected
                .normalize(json!(["db_url", "DB_URL", " port ", ""]))
                .unwrap(),
            json!(["DB_URL", "PORT"])
        );
        assert_eq!(protected.normalize(json!(null)).unwrap(), json!([]));
        assert!(protected.normalize(json!(["A=B"])).is_err());
        assert!(protected.normalize(json!(["A B"])).is_err());
        assert!(protected.normalize(json!([1])).is_err());
        assert!(protected.normalize(json!({"A": "B"})).is_err());

        let commands = app(keys::APPROVED_DEPLOY_COMMANDS);
        assert_eq!(
            commands
                .normalize(json!([" bin/migrate ", "bin/migrate", "rake db"]))
                .unwrap(),
            json!(["bin/migrate", "rake db"])
        );

        let patterns = app(keys::SERVICE_IMAGE_PATTERNS);
        assert_eq!(
            patterns
                .normalize(json!({" web ": "^repo:{{GIT_COMMIT}}$"}))
                .unwrap(),
            json!({"web": "^repo:{{GIT_COMMIT}}$"})
        );
        assert!(patterns.normalize(json!({"web": 1})).is_err());
        assert!(patterns.normalize(json!({"": "x"})).is_err());
        assert!(patterns.normalize(json!(["web"])).is_err());

        let repo = app(keys::VCS_REPO);
        assert_eq!(
            repo.normalize(json!("acme/api")).unwrap(),
            json!("acme/api")
        );
        assert_eq!(repo.normalize(json!("")).unwrap(), json!(null));
        assert!(repo.normalize(json!("acme")).is_err());
        assert!(repo.normalize(json!("a/b/c")).is_err());

        let provider = app(keys::VCS_PROVIDER);
        assert_eq!(provider.normalize(json!(" ")).unwrap(), json!(null));

        let mode = app(keys::VERIFY_GIT_COMMIT_MODE);
        assert_eq!(mode.normalize(json!("Branch")).unwrap(), json!("branch"));
        assert!(mode.normalize(json!("head")).is_err());
    }

    #[test]
    fn env_text_is_json_first_then_by_type() {
        let flag = global(keys::ALLOW_DESTRUCTIVE_ACTIONS);
        assert_eq!(flag.parse_env("true").unwrap(), json!(true));
        assert_eq!(flag.parse_env("YES").unwrap(), json!(true));
        assert_eq!(flag.parse_env("0").unwrap(), json!(false));
        assert!(flag.parse_env("maybe").is_err());

        let minutes = global(keys::MFA_STEP_UP_WINDOW_MINUTES);
        assert_eq!(minutes.parse_env("15").unwrap(), json!(15));
        assert!(minutes.parse_env("fifteen").is_err());
        assert!(minutes.parse_env("0").is_err());

        let provider = global(keys::DEFAULT_VCS_PROVIDER);
        assert_eq!(provider.parse_env("github").unwrap(), json!("github"));
        assert_eq!(provider.parse_env("\"gitlab\"").unwrap(), json!("gitlab"));
        // JSON that is not a string: the raw text is the value.
        assert_eq!(provider.parse_env("123").unwrap(), json!("123"));

        let secrets = app(keys::SECRET_ENV_VARS);
        assert_eq!(
            secrets.parse_env("[\"a\",\"b\"]").unwrap(),
            json!(["A", "B"])
        );
        assert_eq!(secrets.parse_env("a, b,,a").unwrap(), json!(["A", "B"]));

        let patterns = app(keys::SERVICE_IMAGE_PATTERNS);
        assert_eq!(
            patterns.parse_env("{\"web\":\".*\"}").unwrap(),
            json!({"web": ".*"})
        );
        assert!(patterns.parse_env("web=.*").is_err());

        let repo = app(keys::VCS_REPO);
        assert_eq!(repo.parse_env("acme/api").unwrap(), json!("acme/api"));
        assert!(repo.parse_env("not a repo").is_err());
    }
}

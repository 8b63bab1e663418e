//! Masking the env-bearing fields of a Convox JSON response for one caller.
//!
//! The walk visits every object (top level, in arrays, nested) and masks:
//!
//! - `env`: the Convox env text (`KEY=VALUE` lines) of releases, a `{KEY: value}` map, or an
//!   array of `KEY=VALUE` strings — every value masked without `convox:env:read`; secret keys
//!   (global rules, the app's secret keys and its protected keys) masked and URL passwords
//!   masked in the rest with it. Malformed lines are dropped, never passed through.
//! - `parameters` (apps and the rack): rack settings, not env, so readable by whoever may read the
//!   app or the rack; but values of secret-looking names ([`SecretRules::is_sensitive_name`] or a
//!   secret env key) are masked and URL passwords masked in the others.
//!
//! Callers holding `convox:secret:read` see everything; the layer then skips the walk entirely.
//! The app whose settings apply is the object's `app` field, else the enclosing object's, else
//! the route's `{app}`.

use std::collections::HashMap;

use rack_gateway_core::redact::{
    mask_env_value, mask_env_with, mask_url_credentials, EnvMap, Reveal, SecretRules, MASK,
};
use serde_json::Value;

use super::policy::EnvPolicy;

/// What masking needs to know about the caller and the request.
#[derive(Clone, Copy)]
pub struct MaskScope<'a> {
    /// The global secret-key rules.
    pub rules: &'a SecretRules,
    /// Per-app protected and secret keys.
    pub policy: &'a dyn EnvPolicy,
    /// How much of an env the caller may see.
    pub reveal: Reveal,
    /// The route's `{app}`, if any.
    pub app: Option<&'a str>,
}

impl std::fmt::Debug for MaskScope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskScope")
            .field("reveal", &self.reveal)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// Masks every `env` and `parameters` field in `value` for the caller; returns whether anything
/// changed. With [`Reveal::Everything`] nothing is masked.
pub fn mask_json(value: &mut Value, scope: &MaskScope<'_>) -> bool {
    if scope.reveal == Reveal::Everything {
        return false;
    }
    let mut masker = Masker {
        scope,
        extras: HashMap::new(),
    };
    masker.walk(value, scope.app)
}

struct Masker<'s, 'a> {
    scope: &'s MaskScope<'a>,
    /// App → its secret and protected keys, looked up once per response.
    extras: HashMap<String, Vec<String>>,
}

impl Masker<'_, '_> {
    fn extra(&mut self, app: Option<&str>) -> Vec<String> {
        let app = app.unwrap_or_default();
        let policy = self.scope.policy;
        self.extras
            .entry(app.to_owned())
            .or_insert_with(|| {
                let mut keys = policy.secret_keys(app);
                keys.extend(policy.protected_keys(app));
                keys
            })
            .clone()
    }

    fn walk(&mut self, value: &mut Value, app: Option<&str>) -> bool {
        match value {
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.walk(item, app);
                }
                changed
            }
            Value::Object(map) => {
                let own_app = map.get("app").and_then(Value::as_str).map(str::to_owned);
                let app = own_app.as_deref().or(app);
                let mut changed = false;
                for (key, field) in map.iter_mut() {
                    changed |= match key.as_str() {
                        "env" => self.env_field(field, app),
                        "parameters" => self.parameters(field, app),
                        _ => self.walk(field, app),
                    };
                }
                changed
            }
            _ => false,
        }
    }

    fn env_field(&mut self, field: &mut Value, app: Option<&str>) -> bool {
        let extra = self.extra(app);
        let (rules, reveal) = (self.scope.rules, self.scope.reveal);
        match field {
            Value::String(text) => {
                let masked = mask_env_with(&EnvMap::parse(text), rules, &extra, reveal).serialize();
                replace(text, masked)
            }
            Value::Object(map) => {
                let mut changed = false;
                for (key, value) in map.iter_mut() {
                    let secret = reveal == Reveal::Nothing || rules.is_secret_key_with(key, &extra);
                    changed |= match value {
                        Value::String(text) => {
                            let masked =
                                mask_env_value(key, text, rules, &extra, reveal).into_owned();
                            replace(text, masked)
                        }
                        Value::Null => false,
                        other if secret => {
                            *other = Value::String(MASK.to_owned());
                            true
                        }
                        _ => false,
                    };
                }
                changed
            }
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= match item {
                        Value::String(text) => {
                            let masked = mask_env_with(&EnvMap::parse(text), rules, &extra, reveal)
                                .serialize();
                            replace(text, masked)
                        }
                        other => self.env_field(other, app),
                    };
                }
                changed
            }
            _ => false,
        }
    }

    fn parameters(&mut self, field: &mut Value, app: Option<&str>) -> bool {
        let extra = self.extra(app);
        let rules = self.scope.rules;
        let secret_name =
            |name: &str| rules.is_sensitive_name(name) || rules.is_secret_key_with(name, &extra);
        match field {
            Value::Object(map) => {
                let mut changed = false;
                for (name, value) in map.iter_mut() {
                    changed |= mask_parameter(value, secret_name(name));
                }
                changed
            }
            Value::Array(items) => {
                // `[{"name": …, "value": …}]` lists.
                let mut changed = false;
                for item in items {
                    changed |= match item {
                        Value::Object(entry) => {
                            let name = ["name", "key"]
                                .iter()
                                .find_map(|field| entry.get(*field).and_then(Value::as_str))
                                .map(str::to_owned);
                            let secret = name.as_deref().is_none_or(secret_name);
                            entry
                                .get_mut("value")
                                .is_some_and(|value| mask_parameter(value, secret))
                        }
                        other => mask_parameter(other, false),
                    };
                }
                changed
            }
            other => mask_parameter(other, false),
        }
    }
}

/// Masks one parameter value: all of it when `secret`, else its URL passwords.
fn mask_parameter(value: &mut Value, secret: bool) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) if secret => replace(text, MASK.to_owned()),
        Value::String(text) => {
            let masked = mask_url_credentials(text).into_owned();
            replace(text, masked)
        }
        other if secret => {
            *other = Value::String(MASK.to_owned());
            true
        }
        _ => false,
    }
}

fn replace(text: &mut String, masked: String) -> bool {
    if *text == masked {
        false
    } else {
        *text = masked;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::StaticEnvPolicy;
    use serde_json::json;

    const ENV: &str = "NODE_ENV=production\nSECRET_KEY=sk-123456\nDATABASE_URL=postgres://u:dbpw-9876@db/app\nDB_HOST=db\nnot a line\n";

    fn masked(value: &Value, reveal: Reveal) -> Value {
        let rules = SecretRules::default();
        let policy = StaticEnvPolicy::new().app("web", ["DB_HOST"], Vec::<String>::new());
        let mut value = value.clone();
        mask_json(
            &mut value,
            &MaskScope {
                rules: &rules,
                policy: &policy,
                reveal,
                app: Some("web"),
            },
        );
        value
    }

    #[test]
    fn release_env_per_reveal() {
        let release = json!({"id": "R1", "app": "web", "env": ENV, "manifest": "x"});
        let ops = masked(&release, Reveal::NonSecrets);
        assert_eq!(
            ops["env"],
            format!("NODE_ENV=production\nSECRET_KEY={MASK}\nDATABASE_URL=postgres://u:{MASK}@db/app\nDB_HOST={MASK}")
        );
        assert_eq!(ops["manifest"], "x");
        let viewer = masked(&release, Reveal::Nothing);
        let text = viewer["env"].as_str().expect("string");
        assert!(text.lines().all(|line| line.ends_with(&format!("={MASK}"))));
        assert_eq!(masked(&release, Reveal::Everything), release);
    }

    #[test]
    fn lists_maps_and_nested() {
        let list = json!([{"app": "web", "env": ENV}, {"env": {"API_TOKEN": "t-1", "PORT": 3000, "X": null}}, {"env": ["SECRET_KEY=a", "A=b"]}, {"release": {"env": "PASSWORD=p"}}]);
        let text = masked(&list, Reveal::NonSecrets).to_string();
        for secret in [
            "sk-123456",
            "dbpw-9876",
            "t-1",
            "SECRET_KEY=a",
            "PASSWORD=p",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("\"PORT\":3000") && text.contains("A=b"));
        let viewer = masked(&list, Reveal::Nothing).to_string();
        assert!(!viewer.contains("3000") && !viewer.contains("A=b"));
    }

    #[test]
    fn parameters() {
        let system = json!({"name": "rack", "parameters": {"NodeType": "t3.large", "Password": "rack-pw", "api-key": "k1", "LogUrl": "https://u:lpw@logs/x", "Count": 3}});
        let shown = masked(&system, Reveal::Nothing);
        assert_eq!(shown["parameters"]["NodeType"], "t3.large");
        assert_eq!(shown["parameters"]["Password"], MASK);
        assert_eq!(shown["parameters"]["api-key"], MASK);
        assert_eq!(
            shown["parameters"]["LogUrl"],
            format!("https://u:{MASK}@logs/x")
        );
        assert_eq!(shown["parameters"]["Count"], 3);
        let listed = json!({"parameters": [{"name": "Password", "value": "p1"}, {"name": "Type", "value": "x"}]});
        let shown = masked(&listed, Reveal::NonSecrets);
        assert_eq!(shown["parameters"][0]["value"], MASK);
        assert_eq!(shown["parameters"][1]["value"], "x");
    }
}

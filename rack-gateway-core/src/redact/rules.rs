//! Which env keys are secret, and which query/form field names are sensitive.

use std::collections::BTreeSet;
use std::sync::Arc;

/// Words that make an (upper-cased) env key secret wherever they occur in it.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PRIVATE",
    "CREDENTIAL",
];

/// Suffixes that make an (upper-cased) env key secret.
const SECRET_SUFFIXES: &[&str] = &["_KEY", "_KEY_ID"];

/// Extra words that make a query/form field name sensitive (on top of the secret-key rules).
const SENSITIVE_NAME_WORDS: &[&str] = &["AUTH", "SESSION", "COOKIE", "SIGNATURE"];

/// Field names that carry a whole env (`KEY=VALUE` lines, as Convox reads `env` from the form,
/// the query string or a header): sensitive as a whole.
const ENV_FIELD_NAMES: &[&str] = &["ENV", "ENVIRONMENT", "RELEASE_ENV"];

/// The secret-key rules, built once at start-up; cloning is cheap (the extra names are shared).
///
/// A key is secret when its upper-cased form contains `SECRET`, `TOKEN`, `PASSWORD`, `PASSWD`,
/// `PRIVATE` or `CREDENTIAL`, ends with `_KEY` or `_KEY_ID`, or equals (case-insensitively) one
/// of the extra names (CONVOX_SECRET_ENV_VARS, or an app's `secret_env_vars` passed per call).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRules {
    /// Extra secret names, upper-cased and trimmed.
    extra: Arc<BTreeSet<String>>,
}

impl SecretRules {
    /// Rules with the given extra secret names (trimmed; empty names are ignored).
    pub fn new<I, S>(extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let extra = extra
            .into_iter()
            .map(|name| name.as_ref().trim().to_uppercase())
            .filter(|name| !name.is_empty())
            .collect();
        SecretRules {
            extra: Arc::new(extra),
        }
    }

    /// Rules from a comma-separated list of extra names, e.g. the CONVOX_SECRET_ENV_VARS value.
    pub fn from_list(list: &str) -> Self {
        Self::new(list.split(','))
    }

    /// The extra names (upper-cased), in sorted order.
    pub fn extra_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.extra.iter().map(String::as_str)
    }

    /// Whether `key` names a secret env value.
    pub fn is_secret_key(&self, key: &str) -> bool {
        self.is_secret_key_with(key, &[])
    }

    /// Whether `key` names a secret, also counting `app_extra` (an app's `secret_env_vars`).
    pub fn is_secret_key_with(&self, key: &str, app_extra: &[String]) -> bool {
        let upper = key.trim().to_uppercase();
        self.is_secret_upper(&upper) || listed(&upper, app_extra)
    }

    /// Whether a query/form field name looks sensitive: a secret key (with `-` read as `_`), its
    /// upper-cased form contains `AUTH`, `SESSION`, `COOKIE` or `SIGNATURE`, or it names a whole
    /// env (`env`, `environment`, `release-env`).
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        let upper = name.trim().to_uppercase().replace('-', "_");
        self.is_secret_upper(&upper)
            || SENSITIVE_NAME_WORDS.iter().any(|word| upper.contains(word))
            || ENV_FIELD_NAMES.contains(&upper.as_str())
    }

    fn is_secret_upper(&self, upper: &str) -> bool {
        SECRET_WORDS.iter().any(|word| upper.contains(word))
            || SECRET_SUFFIXES.iter().any(|suffix| upper.ends_with(suffix))
            || self.extra.contains(upper)
    }
}

/// Whether the upper-cased `upper` equals one of `names`, case-insensitively.
fn listed(upper: &str, names: &[String]) -> bool {
    names.iter().any(|name| name.trim().to_uppercase() == upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_suffixes() {
        let rules = SecretRules::default();
        for key in [
            "SECRET",
            "client_secret",
            "GITHUB_TOKEN",
            "db_password",
            "MYSQL_PASSWD",
            "PRIVATE_PEM",
            "gcp_credentials",
            "STRIPE_KEY",
            "aws_access_key_id",
            " API_KEY ",
        ] {
            assert!(rules.is_secret_key(key), "{key}");
        }
        for key in [
            "PORT",
            "DATABASE_URL",
            "KEY",
            "KEYS",
            "MONKEY",
            "KEY_NAME",
            "",
            "=",
            "é",
        ] {
            assert!(!rules.is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn extra_names_are_case_insensitive() {
        let rules = SecretRules::from_list(" License_Blob , ,SENTRY_DSN");
        assert!(rules.is_secret_key("LICENSE_BLOB"));
        assert!(rules.is_secret_key("sentry_dsn"));
        assert!(!rules.is_secret_key("SENTRY"));
        assert!(!rules.is_secret_key(""));
        assert_eq!(
            rules.extra_names().collect::<Vec<_>>(),
            ["LICENSE_BLOB", "SENTRY_DSN"]
        );
    }

    #[test]
    fn app_extra_per_call() {
        let rules = SecretRules::default();
        let app = vec!["Mailgun_Domain".to_owned()];
        assert!(!rules.is_secret_key("MAILGUN_DOMAIN"));
        assert!(rules.is_secret_key_with("mailgun_domain", &app));
        assert!(rules.is_secret_key_with("API_TOKEN", &app));
    }

    #[test]
    fn unicode_keys_do_not_panic() {
        let rules = SecretRules::new(["straße"]);
        assert!(rules.is_secret_key("STRASSE"));
        assert!(rules.is_secret_key("geheim_token_ü"));
        assert!(!rules.is_secret_key("日本"));
    }

    #[test]
    fn sensitive_names() {
        let rules = SecretRules::from_list("otp");
        for name in [
            "access_token",
            "Authorization",
            "oauth_verifier",
            "SESSIONID",
            "cookie",
            "X-Amz-Signature",
            "x-api-key",
            "password",
            "OTP",
            "env",
            "Environment",
            "Release-Env",
        ] {
            assert!(rules.is_sensitive_name(name), "{name}");
        }
        for name in [
            "page",
            "limit",
            "q",
            "service",
            "key",
            "",
            "envoy",
            "dev_env_name",
        ] {
            assert!(!rules.is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn clones_share_names() {
        let rules = SecretRules::from_list("A_NAME");
        let clone = rules.clone();
        assert!(Arc::ptr_eq(&rules.extra, &clone.extra));
        assert_eq!(rules, clone);
    }
}

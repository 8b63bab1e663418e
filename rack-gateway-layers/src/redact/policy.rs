//! Per-app env settings the redaction layer needs: protected and extra secret keys.

use std::collections::BTreeMap;

/// Per-app env settings (`protected_env_vars`, `secret_env_vars`), looked up on every request
/// that carries an env, so a settings change applies to the next request.
pub trait EnvPolicy: Send + Sync {
    /// Keys that can never be changed through the gateway (compared case-insensitively).
    fn protected_keys(&self, app: &str) -> Vec<String>;
    /// Extra secret keys of `app`, on top of the global [`SecretRules`](rack_gateway_core::redact::SecretRules).
    fn secret_keys(&self, app: &str) -> Vec<String>;
}

/// An [`EnvPolicy`] with fixed lists: the same for every app, plus optional per-app ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticEnvPolicy {
    protected: Vec<String>,
    secrets: Vec<String>,
    per_app: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

impl StaticEnvPolicy {
    /// No protected keys and no extra secrets (the global rules still apply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Protects `keys` in every app.
    pub fn protected<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protected.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Treats `keys` as secret in every app.
    pub fn secrets<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.secrets.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Adds protected and secret keys for `app` only.
    pub fn app<P, S>(mut self, app: &str, protected: P, secrets: S) -> Self
    where
        P: IntoIterator,
        P::Item: Into<String>,
        S: IntoIterator,
        S::Item: Into<String>,
    {
        let entry = self.per_app.entry(app.to_owned()).or_default();
        entry.0.extend(protected.into_iter().map(Into::into));
        entry.1.extend(secrets.into_iter().map(Into::into));
        self
    }
}

impl EnvPolicy for StaticEnvPolicy {
    fn protected_keys(&self, app: &str) -> Vec<String> {
        let mut keys = self.protected.clone();
        if let Some((protected, _)) = self.per_app.get(app) {
            keys.extend(protected.iter().cloned());
        }
        keys
    }

    fn secret_keys(&self, app: &str) -> Vec<String> {
        let mut keys = self.secrets.clone();
        if let Some((_, secrets)) = self.per_app.get(app) {
            keys.extend(secrets.iter().cloned());
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_and_per_app_lists() {
        let policy = StaticEnvPolicy::new()
            .protected(["DB_HOST"])
            .secrets(["LICENSE"])
            .app("web", ["PORT"], ["MAILGUN_DOMAIN"]);
        assert_eq!(policy.protected_keys("web"), ["DB_HOST", "PORT"]);
        assert_eq!(policy.protected_keys("api"), ["DB_HOST"]);
        assert_eq!(policy.secret_keys("web"), ["LICENSE", "MAILGUN_DOMAIN"]);
        assert_eq!(policy.secret_keys("api"), ["LICENSE"]);
    }
}

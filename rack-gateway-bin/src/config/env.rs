//! Reading variables, and the one-line error that names one.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rack_gateway_core::settings::EnvOverrides;

/// A problem with one configuration variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// What is wrong with it, in a few words.
    pub problem: String,
}

impl ConfigError {
    /// A problem with `variable`.
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// A snapshot of environment variables (the process's, or given pairs in tests).
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment (variables that are not valid UTF-8 are left out).
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// Fixed pairs, for tests and for `dev`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// Sets a variable (used by `dev` to layer its defaults under the real environment).
    pub fn set_default(&mut self, key: &str, value: &str) {
        let present = self.get(key).is_some();
        if !present {
            self.vars.insert(key.to_owned(), value.to_owned());
        }
    }

    /// The trimmed value, or `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A required value.
    pub fn required(&self, key: &'static str) -> Result<&str, ConfigError> {
        self.get(key)
            .ok_or_else(|| ConfigError::new(key, "is required but not set"))
    }

    /// A parsed value, or the default when unset.
    pub fn parsed<T: FromStr>(&self, key: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(key, format!("cannot parse {raw:?}: {e}"))),
        }
    }

    /// A boolean: true/false, 1/0, yes/no, on/off (any case).
    pub fn flag(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::new(
                key,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }

    /// The setting overrides (`RGW_SETTING_<KEY>`, `RGW_APP_<APP>_SETTING_<KEY>`), each parsed
    /// by its key's type; an unknown key or a bad value is an error naming the variable.
    pub fn settings_overrides(&self) -> Result<EnvOverrides, ConfigError> {
        EnvOverrides::from_vars(&self.vars).map_err(|error| {
            // Variables are named at run time; this happens once, just before start-up stops.
            let variable: &'static str = Box::leak(error.variable.into_boxed_str());
            ConfigError::new(variable, error.problem)
        })
    }

    /// A comma-separated list, trimmed, empty items dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

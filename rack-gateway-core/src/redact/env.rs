//! The Convox env text (`KEY=VALUE` lines) and its masking for a caller.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use super::{mask_url_credentials, SecretRules, MASK};

/// An ordered env: keys in first-seen order, one value each.
///
/// Parsing ([`EnvMap::parse`]) splits on `\n`, drops trailing `\r`s of each line (CRLF text),
/// skips blank lines and lines without `=` or with an empty key, splits at the first `=`, trims
/// the key and keeps the value verbatim (further `=`, spaces, unicode). A duplicate key keeps its
/// first position and takes the last value. [`EnvMap::serialize`] joins `KEY=VALUE` lines with `\n`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvMap {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

/// Why a key or value cannot be held by an [`EnvMap`] (it would not survive serialization).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// The key is empty, has surrounding whitespace, or contains `=` or a newline.
    #[error("invalid env key")]
    InvalidKey,
    /// The value contains a newline or ends with `\r`.
    #[error("invalid env value for {0}")]
    InvalidValue(String),
}

/// How much of an env a caller may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reveal {
    /// Every value masked (caller without `convox:env:read`).
    Nothing,
    /// Secret keys masked, URL passwords masked in the other values (`convox:env:read`).
    NonSecrets,
    /// Every value as is (`convox:secret:read`).
    Everything,
}

impl EnvMap {
    /// An empty env.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the Convox env text (see the type docs); never fails, malformed lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut env = EnvMap::new();
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r');
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            env.put(key.to_owned(), value.to_owned());
        }
        env
    }

    /// The env text: `KEY=VALUE` lines joined with `\n` (no trailing newline; empty for none).
    pub fn serialize(&self) -> String {
        let capacity = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        let mut out = String::with_capacity(capacity);
        for (position, (key, value)) in self.entries.iter().enumerate() {
            if position > 0 {
                out.push('\n');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out
    }

    /// Sets `key` to `value` (a new key goes last, an existing one keeps its place).
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), EnvError> {
        let key = key.into();
        let value = value.into();
        if key.is_empty() || key.trim() != key || key.contains(['=', '\n']) {
            return Err(EnvError::InvalidKey);
        }
        if value.contains('\n') || value.ends_with('\r') {
            return Err(EnvError::InvalidValue(key));
        }
        self.put(key, value);
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let position = self.index.remove(key)?;
        let (_, value) = self.entries.remove(position);
        for slot in self.index.values_mut() {
            if *slot > position {
                *slot -= 1;
            }
        }
        Some(value)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.index
            .get(key)
            .map(|&position| self.entries[position].1.as_str())
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets a key already known to be valid.
    fn put(&mut self, key: String, value: String) {
        match self.index.get(&key) {
            Some(&position) => self.entries[position].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// The same keys with values mapped by `f(key, value)` (which must keep values valid).
    fn map_values(&self, mut f: impl FnMut(&str, &str) -> String) -> Self {
        EnvMap {
            entries: self
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), f(k, v)))
                .collect(),
            index: self.index.clone(),
        }
    }
}

/// Debug output shows keys only: values may be secret.
impl fmt::Debug for EnvMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvMap")
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Masks `env` for a caller who may see `reveal` (see [`mask_env_with`]).
pub fn mask_env(env: &EnvMap, rules: &SecretRules, reveal: Reveal) -> EnvMap {
    mask_env_with(env, rules, &[], reveal)
}

/// Masks `env` for a caller who may see `reveal`, also treating `app_extra` names as secret.
///
/// Masked values become [`MASK`]; with [`Reveal::NonSecrets`] the remaining values have their URL
/// passwords masked ([`mask_url_credentials`]).
pub fn mask_env_with(
    env: &EnvMap,
    rules: &SecretRules,
    app_extra: &[String],
    reveal: Reveal,
) -> EnvMap {
    match reveal {
        Reveal::Everything => env.clone(),
        _ => env.map_values(|key, value| {
            mask_env_value(key, value, rules, app_extra, reveal).into_owned()
        }),
    }
}

/// Masks one env value for a caller who may see `reveal`, as [`mask_env_with`] does for a map.
pub fn mask_env_value<'a>(
    key: &str,
    value: &'a str,
    rules: &SecretRules,
    app_extra: &[String],
    reveal: Reveal,
) -> Cow<'a, str> {
    match reveal {
        Reveal::Everything => Cow::Borrowed(value),
        Reveal::Nothing => Cow::Borrowed(MASK),
        Reveal::NonSecrets if rules.is_secret_key_with(key, app_extra) => Cow::Borrowed(MASK),
        Reveal::NonSecrets => mask_url_credentials(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(env: &EnvMap) -> Vec<(&str, &str)> {
        env.iter().collect()
    }

    #[test]
    fn parse_basic_and_empty() {
        assert!(EnvMap::parse("").is_empty());
        assert!(EnvMap::parse("\n\n\r\n").is_empty());
        let env = EnvMap::parse("A=1\nB=\n\n C =x y \n");
        assert_eq!(pairs(&env), [("A", "1"), ("B", ""), ("C", "x y ")]);
    }

    #[test]
    fn equals_in_values_and_lines_without_equals() {
        let env = EnvMap::parse("URL=a=b==c\nNOEQUALS\n=orphan\n  =x\nK==");
        assert_eq!(pairs(&env), [("URL", "a=b==c"), ("K", "=")]);
    }

    #[test]
    fn crlf() {
        let env = EnvMap::parse("A=1\r\nB=two words\r\n\r\nC=3\r\r\n");
        assert_eq!(pairs(&env), [("A", "1"), ("B", "two words"), ("C", "3")]);
        assert_eq!(env.serialize(), "A=1\nB=two words\nC=3");
    }

    #[test]
    fn unicode_keys_and_values() {
        let env = EnvMap::parse("ÜBER=日本語=ok\nemoji=🙂");
        assert_eq!(env.get("ÜBER"), Some("日本語=ok"));
        assert_eq!(env.get("emoji"), Some("🙂"));
    }

    #[test]
    fn duplicate_keeps_first_position_last_value() {
        let env = EnvMap::parse("A=1\nB=2\nA=3");
        assert_eq!(pairs(&env), [("A", "3"), ("B", "2")]);
        assert_eq!(env.serialize(), "A=3\nB=2");
    }

    #[test]
    fn insert_validates_and_remove_reindexes() {
        let mut env = EnvMap::new();
        assert_eq!(env.insert("", "x"), Err(EnvError::InvalidKey));
        assert_eq!(env.insert(" A", "x"), Err(EnvError::InvalidKey));
        assert_eq!(env.insert("A=B", "x"), Err(EnvError::InvalidKey));
        assert_eq!(
            env.insert("A", "x\ny"),
            Err(EnvError::InvalidValue("A".into()))
        );
        assert_eq!(
            env.insert("A", "x\r"),
            Err(EnvError::InvalidValue("A".into()))
        );
        for key in ["A", "B", "C"] {
            assert_eq!(env.insert(key, key.to_lowercase()), Ok(()));
        }
        assert_eq!(env.remove("A"), Some("a".into()));
        assert_eq!(env.remove("A"), None);
        assert_eq!(env.get("C"), Some("c"));
        assert_eq!(env.insert("B", "bb"), Ok(()));
        assert_eq!(env.serialize(), "B=bb\nC=c");
        assert!(env.contains_key("C") && !env.contains_key("A"));
    }

    #[test]
    fn debug_hides_values() {
        let env = EnvMap::parse("API_TOKEN=very-secret");
        assert!(!format!("{env:?}").contains("very-secret"));
    }

    #[test]
    fn mask_levels() {
        let rules = SecretRules::from_list("LICENSE");
        let env = EnvMap::parse(
            "PORT=3000\nAPI_TOKEN=tok\nlicense=lic\nDATABASE_URL=postgres://u:pw@db/app\nEMPTY_SECRET=",
        );
        let nothing = mask_env(&env, &rules, Reveal::Nothing);
        assert_eq!(
            nothing.keys().collect::<Vec<_>>(),
            env.keys().collect::<Vec<_>>()
        );
        assert!(nothing.iter().all(|(_, v)| v == MASK));

        let shown = mask_env(&env, &rules, Reveal::NonSecrets);
        assert_eq!(
            pairs(&shown),
            [
                ("PORT", "3000"),
                ("API_TOKEN", MASK),
                ("license", MASK),
                ("DATABASE_URL", "postgres://u:********************@db/app"),
                ("EMPTY_SECRET", MASK),
            ]
        );
        assert_eq!(mask_env(&env, &rules, Reveal::Everything), env);

        assert_eq!(
            mask_env_value("API_TOKEN", "tok", &rules, &[], Reveal::NonSecrets),
            MASK
        );
        assert_eq!(
            mask_env_value("URL", "redis://:pw@h", &rules, &[], Reveal::NonSecrets),
            format!("redis://:{MASK}@h")
        );
        assert_eq!(
            mask_env_value("PORT", "3000", &rules, &[], Reveal::Nothing),
            MASK
        );
        assert_eq!(
            mask_env_value("API_TOKEN", "tok", &rules, &[], Reveal::Everything),
            "tok"
        );

        let app = vec!["port".to_owned()];
        assert_eq!(
            mask_env_with(&env, &rules, &app, Reveal::NonSecrets).get("PORT"),
            Some(MASK)
        );
    }
}

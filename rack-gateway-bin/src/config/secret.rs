//! Secret configuration values: never printed, checked for length and variety.

use std::fmt;

use base64::Engine as _;

use super::env::ConfigError;

/// Secret bytes from configuration. `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// The shortest secret accepted, in bytes.
pub(super) const MIN_SECRET_BYTES: usize = 32;

impl Secret {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A base64 value (standard or URL-safe, padding optional) that decodes to enough bytes.
    pub fn from_base64(variable: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let bytes = engines
            .iter()
            .find_map(|engine| engine.decode(raw).ok())
            .ok_or_else(|| {
                ConfigError::new(
                    variable,
                    "must be base64 (for example: openssl rand -base64 32)",
                )
            })?;
        Self::checked(variable, bytes)
    }

    /// A raw value used as bytes.
    pub fn from_text(variable: &'static str, raw: &str) -> Result<Self, ConfigError> {
        Self::checked(variable, raw.as_bytes().to_vec())
    }

    fn checked(variable: &'static str, bytes: Vec<u8>) -> Result<Self, ConfigError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::new(
                variable,
                format!(
                    "too short: {} bytes, need at least {MIN_SECRET_BYTES} (for example: openssl rand -base64 32)",
                    bytes.len()
                ),
            ));
        }
        let mut seen = [false; 256];
        bytes.iter().for_each(|b| seen[usize::from(*b)] = true);
        if seen.iter().filter(|s| **s).count() < 8 {
            return Err(ConfigError::new(
                variable,
                "too weak: use random bytes (for example: openssl rand -base64 32)",
            ));
        }
        Ok(Secret(bytes))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_repetitive_secrets_are_refused() {
        assert!(Secret::from_text("X", "short").is_err());
        assert!(Secret::from_text("X", &"a".repeat(64)).is_err());
        assert!(Secret::from_text("X", "0123456789abcdef0123456789abcdef").is_ok());
        assert!(Secret::from_base64("X", "not base64 !!").is_err());
        let err = Secret::from_base64("APP_SECRET_KEY", "c2hvcnQ=").unwrap_err();
        assert!(
            err.to_string().starts_with("APP_SECRET_KEY: too short"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_the_value() {
        let secret = Secret::from_text("X", "0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(32 bytes)");
    }
}

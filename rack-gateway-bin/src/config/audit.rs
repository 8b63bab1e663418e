//! The audit chain keys, for `serve` and for the operator commands.
//!
//! `serve` requires AUDIT_HMAC_SECRET. Operator commands use it too; against the dev store
//! (`rack-gateway dev` writes `dev-secrets.json` into its data directory) they fall back to the
//! dev key, so `RGW_DATA_DIR=./.rack-gateway-dev rack-gateway audit verify` just works.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rack_gateway_core::audit::{ChainKey, Keyring};
use serde::{Deserialize, Serialize};

use super::env::{ConfigError, Env};
use super::secret::Secret;
use super::store::StoreConfig;

/// The signing key and the previous keys that still verify older rows.
#[derive(Clone, Debug)]
pub struct AuditKeys {
    /// AUDIT_HMAC_SECRET.
    pub current: Secret,
    /// AUDIT_HMAC_PREVIOUS_SECRETS.
    pub previous: Vec<Secret>,
}

/// Secrets `rack-gateway dev` keeps in its data directory so that its audit chain survives
/// restarts (mode 0600; dev only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DevSecrets {
    /// Base64 APP_SECRET_KEY.
    pub app_secret_key: String,
    /// Base64 AUDIT_HMAC_SECRET.
    pub audit_hmac_secret: String,
}

impl DevSecrets {
    /// Where dev keeps them.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("dev-secrets.json")
    }

    /// Reads them, if present.
    pub fn load(data_dir: &Path) -> Option<DevSecrets> {
        let text = std::fs::read_to_string(Self::path(data_dir)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Decoded audit key.
    pub fn audit_key(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.audit_hmac_secret)
            .ok()
    }
}

impl AuditKeys {
    /// AUDIT_HMAC_SECRET (and previous keys); against the embedded dev store, its dev key.
    pub fn from_env(env: &Env, store: &StoreConfig) -> Result<Self, ConfigError> {
        let previous = env
            .list("AUDIT_HMAC_PREVIOUS_SECRETS")
            .iter()
            .map(|raw| Secret::from_text("AUDIT_HMAC_PREVIOUS_SECRETS", raw))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(raw) = env.get("AUDIT_HMAC_SECRET") {
            return Ok(AuditKeys {
                current: Secret::from_text("AUDIT_HMAC_SECRET", raw)?,
                previous,
            });
        }
        let dev_key = store
            .database_url
            .is_none()
            .then(|| DevSecrets::load(&store.data_dir))
            .flatten()
            .and_then(|secrets| secrets.audit_key());
        match dev_key {
            Some(key) => Ok(AuditKeys {
                current: Secret::new(key),
                previous,
            }),
            None => Err(ConfigError::new(
                "AUDIT_HMAC_SECRET",
                "is required (the audit chain key the gateway was started with)",
            )),
        }
    }

    /// The keyring built from these secrets.
    pub fn keyring(&self) -> Keyring {
        Keyring::new(
            ChainKey::new(self.current.expose()),
            self.previous
                .iter()
                .map(|s| ChainKey::new(s.expose()))
                .collect(),
        )
    }
}

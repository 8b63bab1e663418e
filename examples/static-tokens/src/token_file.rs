//! An [`IdentitySource`] over a file of static API tokens, read once at start-up.
//!
//! The file names each token and lists its permissions, but holds only the SHA-256 of the token
//! itself, so reading the file gives no one a working credential:
//!
//! ```toml
//! [[token]]
//! name = "dashboard"
//! id = "6f1c0c52-0c1f-4d55-9b43-3b9d7b6c2a10"   # public id, recorded in the audit trail
//! sha256 = "<64 hex digits>"
//! permissions = ["inventory:stock:read"]
//! ```
//!
//! The tokens have no owners, so the resolver never asks for a user. Nothing changes while the
//! process runs, so the trait's default change feed (a quiet one) is right; a source that can
//! revoke tokens would report each change on [`IdentitySource::watch_identity`].

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use chrono::Utc;
use rack_gateway_core::identity::{ApiToken, IdentitySource, TokenHash, User};
use rack_gateway_core::rbac::Permission;
use rack_gateway_core::store::StoreError;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    id: Uuid,
    sha256: String,
    permissions: Vec<String>,
}

/// The tokens of one file, by hash.
pub(crate) struct StaticTokens {
    by_hash: HashMap<TokenHash, ApiToken>,
}

impl StaticTokens {
    /// Reads and checks the file: a malformed hash or permission stops start-up here rather than
    /// refusing the token later.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: TokenFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let loaded_at = Utc::now();
        let mut by_hash = HashMap::new();
        for (index, entry) in file.token.into_iter().enumerate() {
            let hash = TokenHash::from_hex(&entry.sha256)
                .ok_or_else(|| format!("token {:?}: sha256 is not 64 hex digits", entry.name))?;
            for permission in &entry.permissions {
                Permission::parse(permission)
                    .map_err(|e| format!("token {:?}: {e}", entry.name))?;
            }
            // Only id, public_id, name and permissions matter to the resolver; the rest of an
            // `ApiToken` describes a stored token's life, which a static one does not have.
            let token = ApiToken {
                id: i64::try_from(index).unwrap_or(i64::MAX),
                public_id: entry.id,
                name: entry.name,
                owner_id: None,
                owner_email: None,
                permissions: entry.permissions,
                role: None,
                created_by: None,
                created_at: loaded_at,
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            };
            if let Some(earlier) = by_hash.insert(hash, token) {
                return Err(format!(
                    "token {:?} has the same hash as another",
                    earlier.name
                ));
            }
        }
        Ok(StaticTokens { by_hash })
    }
}

#[async_trait]
impl IdentitySource for StaticTokens {
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        Ok(self.by_hash.get(hash).cloned())
    }

    async fn user_by_id(&self, _id: i64) -> Result<Option<User>, StoreError> {
        // No token has an owner, so this is never asked.
        Ok(None)
    }
}

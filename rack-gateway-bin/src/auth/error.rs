//! [`OidcError`]: why the OIDC client could not be set up.

use std::time::Duration;

/// Discovery failed; sign-in cannot work until it succeeds. One line, no secrets.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider did not answer usefully within the discovery deadline.
    #[error("OIDC provider {issuer} unreachable for {waited:?}: {reason}")]
    Unreachable {
        /// The configured issuer.
        issuer: String,
        /// How long discovery kept trying.
        waited: Duration,
        /// The last failure.
        reason: String,
    },
    /// The provider answered, but with something sign-in cannot use (wrong issuer, no token
    /// endpoint, unreadable document or keys).
    #[error("OIDC provider {issuer} is not usable: {reason}")]
    InvalidProvider {
        /// The configured issuer.
        issuer: String,
        /// What is wrong.
        reason: String,
    },
    /// TLS to the provider cannot be set up (for an `https://` provider: no system roots).
    #[error("cannot set up TLS to the OIDC provider: {0}")]
    Tls(String),
}

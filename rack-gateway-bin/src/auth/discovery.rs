//! Fetching the provider's discovery document and keys, retrying with backoff for a bounded
//! time: at start-up the provider (or the network to it) may not be ready yet.

use std::time::{Duration, Instant};

use openidconnect::core::CoreProviderMetadata;
use openidconnect::{DiscoveryError, IssuerUrl};

use super::error::OidcError;
use super::http::{OidcHttpClient, OidcHttpError};

/// How long [`OidcClient::discover`](super::OidcClient::discover) keeps trying.
pub const DISCOVERY_PATIENCE: Duration = Duration::from_secs(20);

/// The wait before the first retry; it doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The longest wait between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Whether another attempt could succeed.
enum Failure {
    /// Network trouble or a server error: worth retrying.
    Transient(String),
    /// The provider answered with something unusable: retrying will not change it.
    Permanent(String),
}

/// The discovery document and the keys it points to, retried until `patience` has passed.
pub(crate) async fn discover_metadata(
    issuer: &IssuerUrl,
    http: &OidcHttpClient,
    patience: Duration,
) -> Result<CoreProviderMetadata, OidcError> {
    let started = Instant::now();
    let deadline = started + patience;
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(
            remaining,
            CoreProviderMetadata::discover_async(issuer.clone(), http),
        )
        .await;
        let reason = match attempt {
            Ok(Ok(metadata)) => return Ok(metadata),
            Ok(Err(error)) => match classify(&error) {
                Failure::Transient(reason) => reason,
                Failure::Permanent(reason) => {
                    return Err(OidcError::InvalidProvider {
                        issuer: issuer.to_string(),
                        reason,
                    })
                }
            },
            Err(_elapsed) => "no answer before the discovery deadline".to_owned(),
        };
        if Instant::now() + delay >= deadline {
            return Err(OidcError::Unreachable {
                issuer: issuer.to_string(),
                waited: started.elapsed(),
                reason,
            });
        }
        tracing::warn!(issuer = %issuer.as_str(), %reason, retry_in = ?delay, "OIDC discovery failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// A discovery or key-set fetch failure in one line.
pub(crate) fn failure_reason(error: &DiscoveryError<OidcHttpError>) -> String {
    match classify(error) {
        Failure::Transient(reason) | Failure::Permanent(reason) => reason,
    }
}

/// Sorts a discovery failure into retry-worthy or not, with a one-line reason.
fn classify(error: &DiscoveryError<OidcHttpError>) -> Failure {
    match error {
        DiscoveryError::Request(error) => Failure::Transient(error.to_string()),
        DiscoveryError::Response(status, _body, message) => {
            let reason = format!("HTTP {status}: {message}");
            if status.is_server_error() || status.as_u16() == 429 {
                Failure::Transient(reason)
            } else {
                Failure::Permanent(reason)
            }
        }
        // The parser's own message can quote the document; the path says enough.
        DiscoveryError::Parse(error) => Failure::Permanent(format!(
            "unreadable discovery document or key set (at {})",
            error.path()
        )),
        DiscoveryError::Validation(message) | DiscoveryError::Other(message) => {
            Failure::Permanent(message.clone())
        }
        DiscoveryError::UrlParse(error) => Failure::Permanent(format!("bad URL: {error}")),
        other => Failure::Permanent(other.to_string()),
    }
}

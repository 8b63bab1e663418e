//! The provider's signing keys, cached; fetched again when a token needs a key we do not
//! have (the provider rotated its keys), but never more often than [`JWKS_REFETCH_INTERVAL`],
//! so tokens with made-up key ids cannot make the gateway hammer the provider.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::CoreJsonWebKeySet;
use openidconnect::{JsonWebKeySet, JsonWebKeySetUrl};

use super::discovery::failure_reason;
use super::http::OidcHttpClient;

/// The shortest time between two fetches of the key set (discovery's fetch counts).
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// The current key set and when it was last fetched.
pub(crate) struct SigningKeys {
    url: JsonWebKeySetUrl,
    current: RwLock<Arc<CoreJsonWebKeySet>>,
    /// When the last fetch started, successful or not; held while fetching, so concurrent
    /// sign-ins that all miss a key wait for one fetch instead of each making their own.
    last_fetch: tokio::sync::Mutex<Instant>,
}

impl SigningKeys {
    /// Keys fetched just now (by discovery) from `url`.
    pub(crate) fn new(url: JsonWebKeySetUrl, keys: CoreJsonWebKeySet) -> Self {
        SigningKeys {
            url,
            current: RwLock::new(Arc::new(keys)),
            last_fetch: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// The keys to verify with now.
    pub(crate) fn current(&self) -> Arc<CoreJsonWebKeySet> {
        // A poisoned lock still holds a complete key set: replacing it is a single store.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keys newer than `tried`, if any can be had: someone else's fresh fetch, or a fetch of our
    /// own when the last one is at least [`JWKS_REFETCH_INTERVAL`] old. `None` otherwise.
    pub(crate) async fn newer_than(
        &self,
        tried: &Arc<CoreJsonWebKeySet>,
        http: &OidcHttpClient,
    ) -> Option<Arc<CoreJsonWebKeySet>> {
        let mut last_fetch = self.last_fetch.lock().await;
        let current = self.current();
        if !Arc::ptr_eq(&current, tried) {
            return Some(current);
        }
        if last_fetch.elapsed() < JWKS_REFETCH_INTERVAL {
            return None;
        }
        // Counted before the fetch, so a failing key endpoint is not asked again at once.
        *last_fetch = Instant::now();
        match JsonWebKeySet::fetch_async(&self.url, http).await {
            Ok(keys) => {
                tracing::info!(url = %self.url.as_str(), keys = keys.keys().len(), "fetched the OIDC provider's signing keys again");
                let keys = Arc::new(keys);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&keys);
                Some(keys)
            }
            Err(error) => {
                let reason = failure_reason(&error);
                tracing::warn!(url = %self.url.as_str(), %reason, "cannot fetch the OIDC provider's signing keys");
                None
            }
        }
    }
}

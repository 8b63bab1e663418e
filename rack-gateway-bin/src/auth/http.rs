//! The HTTP client the OIDC library talks to the provider through: hyper-util over rustls,
//! certificates verified against the system roots, every exchange bounded in time and size.
//!
//! Plain `http://` is refused except where the [`PlainHttpPolicy`] allows it (loopback hosts,
//! or anywhere in dev mode), so a discovery document cannot send the client secret or a code
//! to a plain-HTTP endpoint elsewhere. Redirects are not followed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::config::PlainHttpPolicy;

/// The longest one exchange with the provider may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response body read from the provider (discovery, keys and tokens are small).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// How long an idle connection to the provider is kept for the next exchange.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an exchange with the provider failed. Never holds a request or response body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OidcHttpError {
    /// The URL is `http://` to a host the policy does not allow, or not http(s) at all.
    #[error("refusing to talk to {host} without TLS (only loopback hosts may use http://)")]
    PlainHttpRefused {
        /// The host named by the URL.
        host: String,
    },
    /// The exchange did not finish within [`REQUEST_TIMEOUT`].
    #[error("{host} did not answer within {after:?}")]
    Timeout {
        /// The provider's host.
        host: String,
        /// The limit that passed.
        after: Duration,
    },
    /// Connecting, TLS, or HTTP failed.
    #[error("cannot reach {host}: {reason}")]
    Transport {
        /// The provider's host.
        host: String,
        /// What went wrong, from the connection's error chain.
        reason: String,
    },
    /// The response body was larger than the client reads.
    #[error("{host} sent a response larger than {limit} bytes")]
    TooLarge {
        /// The provider's host.
        host: String,
        /// The limit in bytes.
        limit: usize,
    },
}

/// TLS could not be set up: typically no system root certificates to verify `https://` with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TlsSetupError(String);

/// A pooled HTTPS client for the provider; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct OidcHttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    plain_http: PlainHttpPolicy,
}

impl OidcHttpClient {
    /// A client verifying TLS against the system roots.
    ///
    /// When the system has no roots, a client is still built if `https_needed` is false (a
    /// provider on loopback over plain HTTP, as in tests); its HTTPS requests then fail.
    pub(crate) fn new(
        plain_http: PlainHttpPolicy,
        https_needed: bool,
    ) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError(e.to_string()))?;
        let tls = {
            use hyper_rustls::ConfigBuilderExt as _;
            match builder.clone().with_native_roots() {
                Ok(with_roots) => with_roots.with_no_client_auth(),
                Err(error) if https_needed => {
                    return Err(TlsSetupError(format!(
                        "no usable system root certificates: {error}"
                    )))
                }
                Err(_) => builder
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            }
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(OidcHttpClient { client, plain_http })
    }

    /// Sends one request and reads the whole (bounded) response.
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, OidcHttpError> {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        if !self
            .plain_http
            .permits(uri.scheme_str().unwrap_or_default(), &host)
        {
            return Err(OidcHttpError::PlainHttpRefused { host });
        }
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let exchange =
            async {
                let response = self.client.request(request).await.map_err(|error| {
                    OidcHttpError::Transport {
                        host: host.clone(),
                        reason: error_chain(&error),
                    }
                })?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|error| {
                        if error.is::<http_body_util::LengthLimitError>() {
                            OidcHttpError::TooLarge {
                                host: host.clone(),
                                limit: MAX_RESPONSE_BYTES,
                            }
                        } else {
                            OidcHttpError::Transport {
                                host: host.clone(),
                                reason: error_chain(error.as_ref()),
                            }
                        }
                    })?
                    .to_bytes();
                Ok(http::Response::from_parts(parts, body.to_vec()))
            };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => Err(OidcHttpError::Timeout {
                host,
                after: REQUEST_TIMEOUT,
            }),
        }
    }
}

impl<'c> AsyncHttpClient<'c> for OidcHttpClient {
    type Error = OidcHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OidcHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// The messages of an error and its sources, joined: hyper's own message alone ("client error
/// (Connect)") does not say what happened.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(err) = current {
        let message = err.to_string();
        if !messages.iter().any(|seen| seen.contains(&message)) {
            messages.push(message);
        }
        current = err.source();
        if messages.len() >= 8 {
            break;
        }
    }
    messages.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> HttpRequest {
        http::Request::builder().uri(url).body(Vec::new()).unwrap()
    }

    #[tokio::test]
    async fn plain_http_is_refused_off_loopback() {
        let client = OidcHttpClient::new(PlainHttpPolicy::LoopbackOnly, false).unwrap();
        let error = client
            .send(get(
                "http://idp.example.com/.well-known/openid-configuration",
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, OidcHttpError::PlainHttpRefused { host } if host == "idp.example.com"),
            "{error}"
        );
        let error = client.send(get("ftp://127.0.0.1/x")).await.unwrap_err();
        assert!(matches!(error, OidcHttpError::PlainHttpRefused { .. }));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let client = OidcHttpClient::new(PlainHttpPolicy::LoopbackOnly, false).unwrap();
        let error = client
            .send(get(&format!("http://{address}/jwks")))
            .await
            .unwrap_err();
        assert!(matches!(error, OidcHttpError::Transport { .. }), "{error}");
    }
}

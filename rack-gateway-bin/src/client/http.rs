//! JSON over HTTP(S) to a gateway: certificates checked against the system's roots, every
//! call bounded in time and size, no redirects followed.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::gateway_url::GatewayUrl;
use super::one_line::{json_problem, one_line};
use super::token::SessionToken;

/// How long one call may take, connecting and reading the answer included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read; the gateway's answers here are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// A client for one gateway.
#[derive(Debug, Clone)]
pub struct GatewayHttp {
    url: GatewayUrl,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// A call that got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The system has no root certificates, so no https gateway can be trusted.
    #[error("no trusted root certificates were found on this system (install the CA certificates package, or set SSL_CERT_FILE)")]
    NoTrustedRoots,
    /// Connecting, TLS, or the exchange failed.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// What went wrong, with its causes.
        reason: String,
    },
    /// No complete answer in time.
    #[error("{url} did not answer within {} seconds", CALL_TIMEOUT.as_secs())]
    TimedOut {
        /// The endpoint.
        url: String,
    },
}

/// A gateway's answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

/// An answer whose body is not the JSON the contract promises.
#[derive(Debug, thiserror::Error)]
#[error("the gateway answered {status} with an unexpected body ({reason})")]
pub struct UnexpectedAnswer {
    /// The HTTP status.
    pub status: StatusCode,
    /// What did not match.
    pub reason: String,
}

impl Answer {
    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, UnexpectedAnswer> {
        serde_json::from_slice(&self.body).map_err(|error| UnexpectedAnswer {
            status: self.status,
            reason: json_problem(&error),
        })
    }

    /// Why the gateway refused, on one line: the `error` field of a JSON body, else the text,
    /// else the status.
    pub fn reason(&self) -> String {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: String,
        }
        let text = match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(body) => body.error,
            Err(_) => String::from_utf8_lossy(&self.body).into_owned(),
        };
        let text = one_line(&text);
        if text.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            text
        }
    }
}

impl GatewayHttp {
    /// A client for the gateway at `url`.
    pub fn new(url: GatewayUrl) -> Result<Self, CallError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        // Unparsable system certificates are skipped, as every TLS client does.
        let _ = roots.add_parsable_certificates(found.certs);
        if roots.is_empty() && url.is_https() {
            return Err(CallError::NoTrustedRoots);
        }
        let tls = rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .map_err(|error| CallError::Unreachable {
            url: url.to_string(),
            reason: error.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(GatewayHttp { url, client })
    }

    /// The gateway's base URL.
    pub fn url(&self) -> &GatewayUrl {
        &self.url
    }

    /// `POST`s `body` as JSON to `path`, with `bearer` as the credential when given.
    pub async fn post_json(
        &self,
        path: &str,
        body: &impl Serialize,
        bearer: Option<&SessionToken>,
    ) -> Result<Answer, CallError> {
        let url = self.url.endpoint(path);
        let unreachable = |reason: String| CallError::Unreachable {
            url: url.clone(),
            reason,
        };
        let json = serde_json::to_vec(body).map_err(|error| unreachable(error.to_string()))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("rack-gateway/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = bearer {
            let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
                .map_err(|_| unreachable("the stored token cannot be sent".to_owned()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(json)))
            .map_err(|error| unreachable(error.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| unreachable(with_causes(&error)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| unreachable(with_causes(error.as_ref())))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| CallError::TimedOut { url: url.clone() })?
    }
}

/// An error and its causes on one line (the client's own message is only "client error").
fn with_causes(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn reason_prefers_the_json_error_then_text_then_status() {
        assert_eq!(
            answer(403, r#"{"error":"user not authorized"}"#).reason(),
            "user not authorized"
        );
        assert_eq!(answer(502, "bad gateway\n\n").reason(), "bad gateway");
        assert_eq!(answer(500, "").reason(), "HTTP 500 Internal Server Error");
    }
}

//! A real OpenID Connect provider for tests: the PyPI package `oidc-provider-mock`, run as
//! `python3 -m oidc_provider_mock` on a loopback port (`scripts/test` installs it).
//!
//! The provider accepts any client id, secret and redirect URI. A test defines a user's claims
//! with [`OidcProvider::set_user`] (they are merged into the ID token, overriding even `iss`,
//! `aud`, `exp`, `iat` and `nonce`), then signs in as that user with
//! [`OidcProvider::authorize`], which answers like the browser's trip through the provider:
//! the redirect URL carrying `code` and `state`. The provider does not check PKCE. Its issuer
//! is `http://` + the Host header of each request, so clients must use [`OidcProvider::base_url`]
//! (or a proxy that keeps the Host header) consistently. Each start has a new RSA signing key.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::process::{Child, Command};

use super::http::send;

/// A running provider, stopped when dropped.
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`: the issuer to configure (GOOGLE_OAUTH_BASE_URL).
    pub base_url: String,
    /// The loopback port it listens on.
    pub port: u16,
    child: Option<Child>,
    log_dir: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts a provider on a free port and waits until it answers discovery.
    pub async fn start() -> OidcProvider {
        let mut last_log = String::new();
        // A free port can be taken by someone else before the provider binds it: try again.
        for _ in 0..3 {
            match OidcProvider::try_start_on(free_port()).await {
                Ok(provider) => return provider,
                Err(log) => last_log = log,
            }
        }
        panic!("oidc-provider-mock did not start:\n{last_log}");
    }

    /// Starts a provider on `port` and waits until it answers discovery.
    pub async fn start_on(port: u16) -> OidcProvider {
        OidcProvider::try_start_on(port)
            .await
            .unwrap_or_else(|log| panic!("oidc-provider-mock did not start on {port}:\n{log}"))
    }

    /// Stops the provider and starts a new one on the same port: same issuer and endpoints, a
    /// new signing key, and no users (set them again).
    pub async fn restart(&mut self) {
        self.stop().await;
        let fresh = OidcProvider::start_on(self.port).await;
        *self = fresh;
    }

    /// Stops the provider and waits for the process to end.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Defines (or replaces) the user `sub` with these claims (a JSON object).
    pub async fn set_user(&self, sub: &str, claims: serde_json::Value) {
        let url = format!("{}/users/{}", self.base_url, percent_encode(sub));
        let reply = send(
            Method::PUT,
            &url,
            &[("content-type", "application/json")],
            claims.to_string(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "PUT {url}: {}",
            reply.body
        );
    }

    /// Signs in as `sub` at `authorization_url` (as the user would by choosing the account)
    /// and returns where the provider redirects the browser: the redirect URI with `code` and
    /// `state`, or with `error`.
    pub async fn authorize(&self, authorization_url: &str, sub: &str) -> String {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("sub", sub)
            .finish();
        let reply = send(
            Method::POST,
            authorization_url,
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::FOUND,
            "POST {authorization_url}: {}",
            reply.body
        );
        reply
            .headers
            .get(http::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .expect("a Location header")
            .to_owned()
    }

    /// What the provider printed so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir.path().join("provider.log")
    }

    /// Starts the process; `Err` carries its output when it ends or never answers.
    async fn try_start_on(port: u16) -> Result<OidcProvider, String> {
        require_the_package();
        let log_dir = tempfile::tempdir().expect("tempdir");
        let log_path = log_dir.path().join("provider.log");
        let log = std::fs::File::create(&log_path).expect("provider log");
        let mut child = Command::new("python3")
            .args(["-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .env("NO_COLOR", "1")
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python3 -m oidc_provider_mock");
        let base_url = format!("http://127.0.0.1:{port}");
        let discovery = format!("{base_url}/.well-known/openid-configuration");
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}:\n{}", read_log()));
            }
            if answers(&discovery).await {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill().await;
                return Err(format!("no answer within 30 s:\n{}", read_log()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(OidcProvider {
            base_url,
            port,
            child: Some(child),
            log_dir,
        })
    }
}

/// Stops with one clear line when the provider package is not installed.
fn require_the_package() {
    let found = std::process::Command::new("python3")
        .args(["-c", "import oidc_provider_mock"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "oidc-provider-mock is missing: pip install oidc-provider-mock (scripts/test installs it)"
    );
}

/// Whether a GET of `url` answers 200 (a connection refusal is just "not yet").
async fn answers(url: &str) -> bool {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match tokio::time::timeout(Duration::from_secs(2), client.get(uri)).await {
        Ok(Ok(response)) => response.status() == StatusCode::OK,
        _ => false,
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

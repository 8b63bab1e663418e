//! A stand-in between a relying party and the OIDC provider process, for what the provider
//! cannot show by itself: the PKCE verifier a token request carries, when keys are fetched, and
//! an ID token whose signature does not verify.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::oidc::OidcProvider;

/// A stand-in between the client and the provider: forwards every request unchanged (the Host
/// header too, so the provider names the tap's address as its issuer), records the
/// `code_verifier` of each token request and when the keys are fetched, and can spoil the
/// signature of the ID token in token responses.
pub struct ProviderTap {
    /// The tap's base URL: the issuer to configure.
    pub url: String,
    seen: Arc<Seen>,
    tap: Arc<Tap>,
}

#[derive(Default)]
struct Seen {
    verifiers: Mutex<Vec<String>>,
    jwks_fetches: Mutex<Vec<Instant>>,
}

struct Tap {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    spoil_signature: AtomicBool,
    seen: Arc<Seen>,
}

impl ProviderTap {
    /// Starts a tap in front of `provider`, spoiling signatures from the start or not.
    pub async fn start(provider: &OidcProvider, spoil_signature: bool) -> ProviderTap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Seen::default());
        let tap = Arc::new(Tap {
            upstream: provider.base_url.clone(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            spoil_signature: AtomicBool::new(spoil_signature),
            seen: Arc::clone(&seen),
        });
        let tap_handle = Arc::clone(&tap);
        let app = axum::Router::new().fallback(forward).with_state(tap);
        tokio::spawn(async move { axum::serve(listener, app).await });
        ProviderTap {
            url,
            seen,
            tap: Arc::clone(&tap_handle),
        }
    }

    /// Spoils the ID token's signature in token responses from now on, or stops.
    pub fn spoil_signatures(&self, spoil: bool) {
        self.tap.spoil_signature.store(spoil, Ordering::SeqCst);
    }

    /// The `code_verifier` of each token request so far.
    pub fn verifiers(&self) -> Vec<String> {
        self.seen.verifiers.lock().expect("lock").clone()
    }

    /// When the keys were fetched.
    pub fn jwks_fetches(&self) -> Vec<Instant> {
        self.seen.jwks_fetches.lock().expect("lock").clone()
    }
}

async fn forward(State(tap): State<Arc<Tap>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.expect("request body").to_bytes();
    let path = parts.uri.path().to_owned();
    if path == "/oauth2/token" {
        let verifiers = form_urlencoded::parse(&body)
            .filter(|(name, _)| name == "code_verifier")
            .map(|(_, value)| value.into_owned());
        tap.seen.verifiers.lock().expect("lock").extend(verifiers);
    }
    if path == "/jwks" {
        tap.seen
            .jwks_fetches
            .lock()
            .expect("lock")
            .push(Instant::now());
    }
    let target = format!(
        "{}{}",
        tap.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut upstream = http::Request::builder().method(parts.method).uri(target);
    for (name, value) in &parts.headers {
        upstream = upstream.header(name, value);
    }
    let response = tap
        .client
        .request(upstream.body(Full::new(body)).expect("request"))
        .await
        .expect("provider answers");
    let (mut parts, body) = response.into_parts();
    let mut body = body.collect().await.expect("response body").to_bytes();
    if tap.spoil_signature.load(Ordering::SeqCst)
        && path == "/oauth2/token"
        && parts.status.is_success()
    {
        let mut answer: Value = serde_json::from_slice(&body).expect("token JSON");
        let id_token = answer["id_token"].as_str().expect("an id_token").to_owned();
        answer["id_token"] = Value::String(spoil_signature(&id_token));
        body = Bytes::from(serde_json::to_vec(&answer).expect("JSON"));
    }
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The same token with one character of its signature changed (in the middle, so the
/// base64url stays canonical and only the signature check can notice).
fn spoil_signature(jwt: &str) -> String {
    let (signed, signature) = jwt.rsplit_once('.').expect("a JWS");
    let mut signature: Vec<char> = signature.chars().collect();
    signature[10] = if signature[10] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", signature.into_iter().collect::<String>())
}

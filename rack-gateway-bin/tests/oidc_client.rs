//! The OIDC client against a real provider process on loopback (oidc-provider-mock): the
//! authorization URL, the code exchange with PKCE, every refusal of an ID token, key rotation,
//! and discovery's retries.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use url::Url;

use common::oidc::OidcProvider;
use common::oidc_tap::ProviderTap;
use rack_gateway_bin::auth::{
    pkce, AuthorizationRequest, OidcClient, OidcError, SignInRefusal, VerifiedIdentity,
    JWKS_REFETCH_INTERVAL,
};
use rack_gateway_bin::config::{Env, SignInConfig, SignInKind};

const CLIENT_ID: &str = "rack-gateway-test";
const CLIENT_SECRET: &str = "test-client-secret";

/// Sign-in settings for a provider at `issuer`, optionally limited to one domain.
fn config(issuer: &str, allowed_domain: Option<&str>) -> SignInConfig {
    let mut pairs = vec![
        ("GOOGLE_CLIENT_ID", CLIENT_ID),
        ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET),
        ("GOOGLE_OAUTH_BASE_URL", issuer),
    ];
    if let Some(domain) = allowed_domain {
        pairs.push(("GOOGLE_ALLOWED_DOMAIN", domain));
    }
    SignInConfig::from_env(&Env::from_pairs(pairs), false, "gateway.example.com")
        .expect("valid sign-in settings")
        .expect("sign-in configured")
}

/// A Workspace account of example.com whose email the provider has verified.
fn workspace_user(email: &str) -> Value {
    json!({
        "email": email,
        "email_verified": true,
        "hd": "example.com",
        "name": "Alice Example",
    })
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One sign-in attempt as a handler would make it: fresh state, nonce and PKCE verifier.
struct Attempt {
    request: AuthorizationRequest,
    verifier: String,
}

impl Attempt {
    fn new(config: &SignInConfig) -> Attempt {
        let verifier = format!("{}{}", random(), random());
        Attempt {
            request: AuthorizationRequest {
                redirect_uri: config.redirect_uri(SignInKind::Web).clone(),
                state: random(),
                nonce: random(),
                pkce_challenge: pkce::challenge_s256(&verifier),
            },
            verifier,
        }
    }
}

/// The `code` of a redirect back to the gateway, after checking its `state`.
fn code_from(redirect: &str, attempt: &Attempt) -> String {
    let url = Url::parse(redirect).expect("redirect URL");
    assert!(
        redirect.starts_with(attempt.request.redirect_uri.as_str()),
        "{redirect}"
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("state"),
        Some(&attempt.request.state),
        "{redirect}"
    );
    query.get("code").cloned().expect("a code")
}

/// Signs in as `sub` (whose claims are already set) through the whole flow.
async fn sign_in_as(
    provider: &OidcProvider,
    client: &OidcClient,
    config: &SignInConfig,
    sub: &str,
) -> Result<VerifiedIdentity, SignInRefusal> {
    let attempt = Attempt::new(config);
    let url = client.authorization_url(&attempt.request);
    let code = code_from(&provider.authorize(url.as_str(), sub).await, &attempt);
    let result = client
        .sign_in(
            &code,
            &attempt.verifier,
            &attempt.request.redirect_uri,
            &attempt.request.nonce,
        )
        .await;
    if let Err(refusal) = &result {
        let shown = refusal.to_string();
        assert!(
            !shown.contains(&code) && !shown.contains(CLIENT_SECRET) && !shown.contains('\n'),
            "{shown}"
        );
    }
    result
}

#[tokio::test]
async fn the_authorization_url_asks_for_the_code_flow_with_pkce() {
    let provider = OidcProvider::start().await;
    let config = config(&provider.base_url, Some("example.com"));
    let client = OidcClient::discover(&config).await.expect("discovery");
    let attempt = Attempt::new(&config);

    let url = client.authorization_url(&attempt.request);

    assert_eq!(
        url.as_str().split('?').next(),
        Some(format!("{}/oauth2/authorize", provider.base_url).as_str())
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let expected = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        (
            "redirect_uri",
            "https://gateway.example.com/api/v1/auth/web/callback",
        ),
        ("scope", "openid email profile"),
        ("state", attempt.request.state.as_str()),
        ("nonce", attempt.request.nonce.as_str()),
        ("code_challenge", attempt.request.pkce_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "select_account"),
        ("hd", "example.com"),
    ];
    for (name, value) in expected {
        assert_eq!(
            query.get(name).map(String::as_str),
            Some(value),
            "{name} in {url}"
        );
    }
    assert_eq!(query.len(), expected.len(), "nothing else: {url}");

    let open = OidcClient::discover(&self::config(&provider.base_url, None))
        .await
        .expect("discovery");
    let url = open.authorization_url(&attempt.request);
    assert!(
        !url.query_pairs().any(|(name, _)| name == "hd"),
        "no hd without GOOGLE_ALLOWED_DOMAIN: {url}"
    );
}

#[tokio::test]
async fn a_workspace_account_of_the_allowed_domain_signs_in() {
    let provider = OidcProvider::start().await;
    let config = config(&provider.base_url, Some("example.com"));
    let client = OidcClient::discover(&config).await.expect("discovery");
    provider
        .set_user(
            "alice-sub",
            json!({
                "email": "Alice@Example.COM",
                "email_verified": true,
                "hd": "Example.com",
                "name": "Alice Example",
            }),
        )
        .await;

    let identity = sign_in_as(&provider, &client, &config, "alice-sub").await;

    assert_eq!(
        identity,
        Ok(VerifiedIdentity {
            subject: "alice-sub".into(),
            email: "alice@example.com".into(),
            name: Some("Alice Example".into()),
        }),
        "provider log:\n{}",
        provider.log()
    );
}

#[tokio::test]
async fn without_an_allowed_domain_any_verified_account_signs_in() {
    let provider = OidcProvider::start().await;
    let config = config(&provider.base_url, None);
    let client = OidcClient::discover(&config).await.expect("discovery");
    provider
        .set_user(
            "bob-sub",
            json!({"email": "bob@gmail.com", "email_verified": true}),
        )
        .await;

    let identity = sign_in_as(&provider, &client, &config, "bob-sub")
        .await
        .expect("signed in");

    assert_eq!(identity.email, "bob@gmail.com");
    assert_eq!(identity.name, None);
}

#[tokio::test]
async fn each_unacceptable_id_token_is_refused_with_its_reason() {
    let provider = OidcProvider::start().await;
    let config = config(&provider.base_url, Some("example.com"));
    let client = OidcClient::discover(&config).await.expect("discovery");
    let now = chrono::Utc::now().timestamp();
    let with = |extra: Value| {
        let mut claims = workspace_user("alice@example.com");
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        claims
    };
    let cases: Vec<(&str, Value, SignInRefusal)> = vec![
        (
            "another Workspace domain",
            with(json!({"hd": "other.com"})),
            SignInRefusal::WrongHostedDomain,
        ),
        (
            "a consumer account (no hd)",
            json!({"email": "alice@example.com", "email_verified": true}),
            SignInRefusal::WrongHostedDomain,
        ),
        (
            "an email outside the domain",
            with(json!({"email": "alice@other.com"})),
            SignInRefusal::WrongEmailDomain,
        ),
        (
            "an unverified email",
            with(json!({"email_verified": false})),
            SignInRefusal::EmailNotVerified,
        ),
        (
            "no email_verified claim",
            json!({"email": "alice@example.com", "hd": "example.com"}),
            SignInRefusal::EmailNotVerified,
        ),
        (
            "no email",
            json!({"email_verified": true, "hd": "example.com"}),
            SignInRefusal::NoEmail,
        ),
        (
            "another audience",
            with(json!({"aud": "some-other-client"})),
            SignInRefusal::WrongAudience,
        ),
        (
            "an extra untrusted audience",
            with(json!({"aud": [CLIENT_ID, "some-other-client"]})),
            SignInRefusal::WrongAudience,
        ),
        (
            "another issuer",
            with(json!({"iss": "https://accounts.evil.example"})),
            SignInRefusal::WrongIssuer,
        ),
        (
            "an expired token",
            with(json!({"iat": now - 7200, "exp": now - 3600})),
            SignInRefusal::Expired,
        ),
        (
            "a token issued in the future",
            with(json!({"iat": now + 3600, "exp": now + 7200})),
            SignInRefusal::NotYetValid,
        ),
        (
            "another sign-in's nonce",
            with(json!({"nonce": "the-nonce-of-another-attempt"})),
            SignInRefusal::WrongNonce,
        ),
    ];
    for (index, (case, claims, refusal)) in cases.into_iter().enumerate() {
        let sub = format!("user-{index}");
        provider.set_user(&sub, claims).await;
        let result = sign_in_as(&provider, &client, &config, &sub).await;
        assert_eq!(result, Err(refusal), "{case}");
    }
}

#[tokio::test]
async fn the_pkce_verifier_is_sent_and_matches_the_challenge() {
    let provider = OidcProvider::start().await;
    let tap = ProviderTap::start(&provider, false).await;
    let config = config(&tap.url, Some("example.com"));
    let client = OidcClient::discover(&config).await.expect("discovery");
    provider
        .set_user("alice-sub", workspace_user("alice@example.com"))
        .await;
    let attempt = Attempt::new(&config);
    let url = client.authorization_url(&attempt.request);
    let challenge = url
        .query_pairs()
        .find(|(name, _)| name == "code_challenge")
        .map(|(_, value)| value.into_owned())
        .expect("a code_challenge");
    let code = code_from(
        &provider.authorize(url.as_str(), "alice-sub").await,
        &attempt,
    );

    let identity = client
        .sign_in(
            &code,
            &attempt.verifier,
            &attempt.request.redirect_uri,
            &attempt.request.nonce,
        )
        .await;

    assert_eq!(identity.map(|i| i.email), Ok("alice@example.com".into()));
    let sent = tap.verifiers();
    assert_eq!(
        sent,
        vec![attempt.verifier.clone()],
        "one exchange, with the verifier"
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, sent[0].as_bytes());
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()),
        challenge,
        "BASE64URL(SHA256(code_verifier)) == code_challenge"
    );
}

#[tokio::test]
async fn a_spoiled_signature_is_refused_and_keys_are_refetched_at_most_every_interval() {
    let provider = OidcProvider::start().await;
    let tap = ProviderTap::start(&provider, true).await;
    let config = config(&tap.url, Some("example.com"));
    let client = OidcClient::discover(&config).await.expect("discovery");
    provider
        .set_user("alice-sub", workspace_user("alice@example.com"))
        .await;
    assert_eq!(tap.jwks_fetches().len(), 1, "discovery fetched the keys");

    // Right after discovery, then once the interval has passed (a refetch is allowed: the key
    // could have rotated), then right away again.
    let mut refusals = vec![sign_in_as(&provider, &client, &config, "alice-sub").await];
    tokio::time::sleep(JWKS_REFETCH_INTERVAL).await;
    refusals.push(sign_in_as(&provider, &client, &config, "alice-sub").await);
    refusals.push(sign_in_as(&provider, &client, &config, "alice-sub").await);

    for refusal in &refusals {
        assert_eq!(refusal, &Err(SignInRefusal::BadSignature));
    }
    let fetches = tap.jwks_fetches();
    assert!(
        fetches.len() >= 2,
        "the keys were fetched again after the interval: {fetches:?}"
    );
    assert!(
        fetches.len() <= 1 + refusals.len(),
        "at most one refetch per sign-in: {fetches:?}"
    );
    let tolerance = Duration::from_millis(500);
    for pair in fetches.windows(2) {
        assert!(
            pair[1] - pair[0] + tolerance >= JWKS_REFETCH_INTERVAL,
            "two fetches within the interval: {fetches:?}"
        );
    }
}

#[tokio::test]
async fn after_the_provider_rotates_its_key_sign_in_still_works() {
    let mut provider = OidcProvider::start().await;
    let config = config(&provider.base_url, Some("example.com"));
    let client = OidcClient::discover(&config).await.expect("discovery");
    let discovered = Instant::now();
    provider
        .set_user("alice-sub", workspace_user("alice@example.com"))
        .await;
    assert!(sign_in_as(&provider, &client, &config, "alice-sub")
        .await
        .is_ok());

    // Same port, same issuer and endpoints; a new signing key and an empty user store.
    provider.restart().await;
    provider
        .set_user("alice-sub", workspace_user("alice@example.com"))
        .await;
    tokio::time::sleep(JWKS_REFETCH_INTERVAL.saturating_sub(discovered.elapsed())).await;

    let identity = sign_in_as(&provider, &client, &config, "alice-sub").await;
    assert_eq!(
        identity.map(|i| i.email),
        Ok("alice@example.com".into()),
        "provider log:\n{}",
        provider.log()
    );
    // The new key is cached now: the next sign-in needs no fetch (and could not make one).
    assert!(sign_in_as(&provider, &client, &config, "alice-sub")
        .await
        .is_ok());
}

#[tokio::test]
async fn a_code_used_twice_is_refused_by_the_provider() {
    let provider = OidcProvider::start().await;
    let config = config(&provider.base_url, None);
    let client = OidcClient::discover(&config).await.expect("discovery");
    provider
        .set_user(
            "bob-sub",
            json!({"email": "bob@example.com", "email_verified": true}),
        )
        .await;
    let attempt = Attempt::new(&config);
    let url = client.authorization_url(&attempt.request);
    let code = code_from(&provider.authorize(url.as_str(), "bob-sub").await, &attempt);
    let sign_in = || {
        client.sign_in(
            &code,
            &attempt.verifier,
            &attempt.request.redirect_uri,
            &attempt.request.nonce,
        )
    };

    assert!(sign_in().await.is_ok());
    let refusal = sign_in().await.expect_err("a used code");

    assert!(
        matches!(&refusal, SignInRefusal::Provider(reason) if reason.contains("invalid_grant")),
        "{refusal}"
    );
    assert!(!refusal.to_string().contains(&code));
}

#[tokio::test]
async fn discovery_waits_for_a_provider_that_starts_late() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let config = config(&format!("http://127.0.0.1:{port}"), None);
    let discovering =
        tokio::spawn(
            async move { OidcClient::discover_within(&config, Duration::from_secs(30)).await },
        );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let _provider = OidcProvider::start_on(port).await;

    let client = discovering.await.expect("task");
    assert!(client.is_ok(), "{client:?}");
}

#[tokio::test]
async fn discovery_gives_up_on_an_unreachable_provider_after_its_patience() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let config = config(&format!("http://127.0.0.1:{port}"), None);
    let started = Instant::now();

    let error = OidcClient::discover_within(&config, Duration::from_secs(1))
        .await
        .expect_err("nothing listens there");

    assert!(matches!(error, OidcError::Unreachable { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!error.to_string().contains(CLIENT_SECRET));
}

#[tokio::test]
async fn discovery_refuses_a_wrong_issuer_at_once() {
    let provider = OidcProvider::start().await;
    let config = config(&format!("{}/realms/staff", provider.base_url), None);
    let started = Instant::now();

    let error = OidcClient::discover(&config)
        .await
        .expect_err("no such issuer");

    assert!(
        matches!(error, OidcError::InvalidProvider { .. }),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a 404 is not retried for 20 s: {:?}",
        started.elapsed()
    );
}

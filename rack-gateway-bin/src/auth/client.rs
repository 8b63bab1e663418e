//! [`OidcClient`]: the authorization URL of the code flow, and the exchange of the code for a
//! verified identity.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, IssuerUrl, JwsSigningAlgorithm,
    Nonce, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse,
    TokenResponse as _,
};
use url::Url;

use super::discovery::{discover_metadata, DISCOVERY_PATIENCE};
use super::error::OidcError;
use super::http::{OidcHttpClient, OidcHttpError};
use super::identity::{check_issue_time, identity_from_claims, VerifiedIdentity};
use super::keys::SigningKeys;
use super::provider_types::{GoogleIdToken, GoogleIdTokenClaims, ProviderClient};
use super::refusal::{newer_keys_might_help, SignInRefusal};
use crate::config::SignInConfig;

/// What one authorization URL carries; the caller keeps `state`, `nonce` and the PKCE verifier
/// behind `pkce_challenge` until the callback.
#[derive(Clone)]
pub struct AuthorizationRequest {
    /// Where the provider sends the browser back ([`SignInConfig::redirect_uri`]).
    pub redirect_uri: Url,
    /// The anti-forgery value the callback must bring back.
    pub state: String,
    /// The value the ID token must carry in its `nonce` claim.
    pub nonce: String,
    /// `BASE64URL(SHA256(verifier))`, see [`challenge_s256`](super::pkce::challenge_s256).
    pub pkce_challenge: String,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state is what ties a browser to its sign-in: it stays out of logs.
        f.debug_struct("AuthorizationRequest")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("state", &"<redacted>")
            .field("nonce", &"<redacted>")
            .field("pkce_challenge", &self.pkce_challenge)
            .finish()
    }
}

/// The relying party for one provider: discovered once, then shared by every sign-in.
pub struct OidcClient {
    provider: ProviderClient,
    http: OidcHttpClient,
    issuer: IssuerUrl,
    client_id: ClientId,
    allowed_domain: Option<String>,
    signing_algs: Vec<CoreJwsSigningAlgorithm>,
    keys: SigningKeys,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id.as_str())
            .field("allowed_domain", &self.allowed_domain)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Fetches the provider's discovery document and keys, retrying for up to
    /// [`DISCOVERY_PATIENCE`].
    pub async fn discover(config: &SignInConfig) -> Result<OidcClient, OidcError> {
        Self::discover_within(config, DISCOVERY_PATIENCE).await
    }

    /// Like [`OidcClient::discover`], giving up after `patience`.
    pub async fn discover_within(
        config: &SignInConfig,
        patience: Duration,
    ) -> Result<OidcClient, OidcError> {
        let invalid = |reason: String| OidcError::InvalidProvider {
            issuer: config.issuer.clone(),
            reason,
        };
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| invalid(format!("the issuer is not a URL: {e}")))?;
        let https_needed = issuer.url().scheme() == "https";
        let http = OidcHttpClient::new(config.plain_http, https_needed)
            .map_err(|e| OidcError::Tls(e.to_string()))?;
        let metadata = discover_metadata(&issuer, &http, patience).await?;
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| invalid("the discovery document names no token endpoint".into()))?;
        let signing_algs = asymmetric_algs(metadata.id_token_signing_alg_values_supported());
        let keys = SigningKeys::new(metadata.jwks_uri().clone(), metadata.jwks().clone());
        let client_id = ClientId::new(config.client_id.clone());
        let client_secret =
            ClientSecret::new(String::from_utf8_lossy(config.client_secret.expose()).into_owned());
        let provider: ProviderClient =
            Client::from_provider_metadata(metadata, client_id.clone(), Some(client_secret))
                .set_token_uri(token_url);
        tracing::info!(issuer = %issuer.as_str(), "OIDC provider discovered");
        Ok(OidcClient {
            provider,
            http,
            issuer,
            client_id,
            allowed_domain: config.allowed_domain.clone(),
            signing_algs,
            keys,
        })
    }

    /// The provider URL to send the browser to: the code flow with PKCE (`S256`), scope
    /// `openid email profile`, `prompt=select_account`, and `hd` when a domain is required.
    pub fn authorization_url(&self, request: &AuthorizationRequest) -> Url {
        let state = request.state.clone();
        let nonce = request.nonce.clone();
        let mut url = self
            .provider
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(
                request.redirect_uri.clone(),
            )))
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .add_prompt(CoreAuthPrompt::SelectAccount)
            // The challenge comes from the caller, who keeps the verifier across the redirect;
            // the library only builds challenges from verifiers it holds itself.
            .add_extra_param("code_challenge", request.pkce_challenge.clone())
            .add_extra_param("code_challenge_method", "S256");
        if let Some(domain) = &self.allowed_domain {
            // Only a hint to Google's account chooser; the `hd` claim is checked on return.
            url = url.add_extra_param("hd", domain.clone());
        }
        url.url().0
    }

    /// Exchanges `code` (sending `pkce_verifier`) and verifies the ID token: signature, `iss`,
    /// `aud`, `exp`, `iat`, `nonce`, a verified email, and the allowed domain when set.
    pub async fn sign_in(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &Url,
        expected_nonce: &str,
    ) -> Result<VerifiedIdentity, SignInRefusal> {
        let response = self
            .provider
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())))
            .request_async(&self.http)
            .await
            .map_err(|error| exchange_refusal(&error))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInRefusal::Provider("it returned no identity token".into()))?;
        let claims = self
            .verified_claims(id_token, &Nonce::new(expected_nonce.to_owned()))
            .await?;
        check_issue_time(claims.issue_time(), chrono::Utc::now())?;
        identity_from_claims(claims, self.allowed_domain.as_deref())
    }

    /// Verifies with the cached keys and, when a key may be missing, once more with newer keys.
    async fn verified_claims<'t>(
        &self,
        id_token: &'t GoogleIdToken,
        nonce: &Nonce,
    ) -> Result<&'t GoogleIdTokenClaims, SignInRefusal> {
        let keys = self.keys.current();
        let error = match id_token.claims(&self.verifier(&keys), nonce) {
            Ok(claims) => return Ok(claims),
            Err(error) => error,
        };
        let retried = if newer_keys_might_help(&error) {
            match self.keys.newer_than(&keys, &self.http).await {
                Some(newer) => id_token.claims(&self.verifier(&newer), nonce),
                None => Err(error),
            }
        } else {
            Err(error)
        };
        retried.map_err(|error| {
            tracing::info!(reason = %error, "ID token refused");
            SignInRefusal::from_verification(&error)
        })
    }

    /// The ID token verifier over `keys`.
    fn verifier(&self, keys: &Arc<CoreJsonWebKeySet>) -> CoreIdTokenVerifier<'static> {
        // A public-client verifier: no HS256 with the client secret as the key. Google signs
        // with its published keys, and a shared-secret signature proves less.
        CoreIdTokenVerifier::new_public_client(
            self.client_id.clone(),
            self.issuer.clone(),
            CoreJsonWebKeySet::clone(keys),
        )
        .set_allowed_algs(self.signing_algs.iter().cloned())
    }
}

/// The provider's advertised ID token algorithms that use published keys; RS256 (required of
/// every provider by the discovery spec) when it advertises none.
fn asymmetric_algs(advertised: &[CoreJwsSigningAlgorithm]) -> Vec<CoreJwsSigningAlgorithm> {
    let algs: Vec<_> = advertised
        .iter()
        .filter(|alg| !alg.uses_shared_secret() && **alg != CoreJwsSigningAlgorithm::None)
        .cloned()
        .collect();
    if algs.is_empty() {
        vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
    } else {
        algs
    }
}

/// The refusal for a failed code exchange, without the code, the secret or the response body.
fn exchange_refusal(
    error: &RequestTokenError<OidcHttpError, StandardErrorResponse<CoreErrorResponseType>>,
) -> SignInRefusal {
    let reason = match error {
        RequestTokenError::ServerResponse(response) => {
            format!(
                "the identity provider refused the code ({})",
                response.error()
            )
        }
        RequestTokenError::Request(error) => format!("cannot reach the identity provider: {error}"),
        RequestTokenError::Parse(error, _body) => format!(
            "unreadable answer from the identity provider (at {})",
            error.path()
        ),
        RequestTokenError::Other(message) => message.clone(),
    };
    tracing::info!(%reason, "OIDC code exchange failed");
    SignInRefusal::Provider(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        use CoreJwsSigningAlgorithm as Alg;
        assert_eq!(
            asymmetric_algs(&[Alg::HmacSha256, Alg::None, Alg::EcdsaP256Sha256]),
            vec![Alg::EcdsaP256Sha256]
        );
        assert_eq!(
            asymmetric_algs(&[Alg::HmacSha256]),
            vec![Alg::RsaSsaPkcs1V15Sha256]
        );
    }

    #[test]
    fn the_client_and_its_futures_can_move_between_tasks() {
        fn send_and_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        // Compiled, never called: what matters is that the futures' types are Send.
        fn futures_are_send(client: &OidcClient, config: &SignInConfig, redirect_uri: &Url) {
            send(&client.sign_in("code", "verifier", redirect_uri, "nonce"));
            send(&OidcClient::discover(config));
        }
        send_and_sync::<OidcClient>();
        let _ = futures_are_send;
    }

    #[test]
    fn debug_hides_state_and_nonce() {
        let request = AuthorizationRequest {
            redirect_uri: Url::parse("https://g.example.com/api/v1/auth/web/callback").unwrap(),
            state: "state-value-123".into(),
            nonce: "nonce-value-456".into(),
            pkce_challenge: "challenge".into(),
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("state-value-123") && !shown.contains("nonce-value-456"));
    }
}

//! Human sign-in through an OpenID Connect provider (Google Workspace): the relying party.
//!
//! [`OidcClient::discover`] reads the provider's discovery document and signing keys (retrying
//! while the provider is unreachable). A sign-in then takes two steps:
//!
//! 1. [`OidcClient::authorization_url`] builds the code-flow URL the browser is sent to, with
//!    the caller's `state`, `nonce` and PKCE challenge ([`pkce::challenge_s256`]);
//! 2. on the callback, [`OidcClient::sign_in`] exchanges the code (sending the PKCE verifier),
//!    verifies the ID token (signature, `iss`, `aud`, `exp`, `iat`, `nonce`), requires a
//!    verified email and, with `GOOGLE_ALLOWED_DOMAIN`, the `hd` claim and the email's domain to
//!    equal that domain. It returns a [`VerifiedIdentity`] or a [`SignInRefusal`] whose text
//!    can be shown to the user and recorded.
//!
//! The signing keys are cached and fetched again when a token needs a key the cache lacks
//! (key rotation), at most every [`JWKS_REFETCH_INTERVAL`]. All HTTP goes through a small
//! hyper client that verifies TLS against the system roots and allows `http://` only to
//! loopback hosts (or anywhere with DEV_MODE). No token, code or secret is logged.
//!
//! ```no_run
//! use rack_gateway_bin::auth::{pkce, AuthorizationRequest, OidcClient};
//! use rack_gateway_bin::config::{Env, SignInConfig, SignInKind};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let env = Env::from_process();
//! let Some(config) = SignInConfig::from_env(&env, false, "gateway.example.com")? else {
//!     return Ok(()); // human sign-in is off
//! };
//! let client = OidcClient::discover(&config).await?;
//!
//! // Start: keep state, nonce and verifier (for example in a short-lived cookie or row).
//! let verifier = "a-random-verifier-of-43-to-128-url-safe-characters-0123456789";
//! let request = AuthorizationRequest {
//!     redirect_uri: config.redirect_uri(SignInKind::Web).clone(),
//!     state: "random-state".into(),
//!     nonce: "random-nonce".into(),
//!     pkce_challenge: pkce::challenge_s256(verifier),
//! };
//! let send_the_browser_to = client.authorization_url(&request);
//! # let _ = send_the_browser_to;
//!
//! // Callback (after checking `state`): the code from the query string.
//! match client.sign_in("code-from-callback", verifier, &request.redirect_uri, &request.nonce).await {
//!     Ok(identity) => println!("signed in: {}", identity.email),
//!     Err(refusal) => println!("refused: {refusal}"),
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod discovery;
mod error;
mod http;
mod identity;
mod keys;
pub mod pkce;
mod provider_types;
mod refusal;

pub use crate::config::{SignInConfig, SignInKind};
pub use client::{AuthorizationRequest, OidcClient};
pub use discovery::DISCOVERY_PATIENCE;
pub use error::OidcError;
pub use identity::VerifiedIdentity;
pub use keys::JWKS_REFETCH_INTERVAL;
pub use refusal::SignInRefusal;

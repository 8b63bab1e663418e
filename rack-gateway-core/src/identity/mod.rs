//! Who is calling: users, API tokens, sessions and the [`Principal`] a request acts as.
//!
//! API tokens are `rgw_` followed by 32 random bytes in unpadded base64url; session tokens
//! ([`SessionSecret`]) are `rgs_` and the same. Only the SHA-256 of a token is ever stored; the
//! plaintext is shown once, when it is created. A session ends when it is revoked or outlives
//! its [`SessionLimits`]; sign-ins in progress are [`LoginState`]s.
//!
//! ```
//! use rack_gateway_core::identity::{ApiTokenSecret, TokenHash};
//!
//! let secret = ApiTokenSecret::generate();
//! assert!(secret.expose().starts_with("rgw_"));
//! let hash = TokenHash::of(secret.expose());
//! assert!(hash.matches(&TokenHash::of(secret.expose())));
//! ```
//!
//! [`IdentityResolver`] turns a presented API token or session token into a [`Principal`], with
//! a short-lived cache. It reads an [`IdentitySource`]: token by hash, user by id, and
//! optionally sessions by hash, a change feed and a record of each credential's use. The gateway's stores are sources; so can be a service's own
//! tables:
//!
//! ```
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use rack_gateway_core::identity::{
//!     ApiToken, ApiTokenSecret, IdentityResolver, IdentitySource, ResolverConfig, TokenHash, User,
//! };
//! use rack_gateway_core::store::StoreError;
//!
//! /// A source that knows no tokens (a real one would query its tables).
//! struct NoTokens;
//!
//! #[async_trait]
//! impl IdentitySource for NoTokens {
//!     async fn token_by_hash(&self, _: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
//!         Ok(None)
//!     }
//!     async fn user_by_id(&self, _: i64) -> Result<Option<User>, StoreError> {
//!         Ok(None)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), StoreError> {
//! let resolver = IdentityResolver::start(Arc::new(NoTokens), ResolverConfig::default()).await?;
//! let stranger = ApiTokenSecret::generate();
//! assert!(resolver.resolve_api_token(stranger.expose()).await.is_err());
//! # Ok(())
//! # }
//! ```

mod cache;
mod chore;
mod login;
mod principal;
mod resolver;
mod session;
mod session_clock;
mod session_limits;
mod session_token;
mod source;
mod token;
mod user;

pub use login::{
    CliLoginPoll, LoginKind, LoginState, LoginStateUse, NewLoginState, LOGIN_STATE_LIFETIME,
};
pub use principal::{Principal, TokenPrincipal, UserPrincipal};
pub use resolver::{IdentityResolver, ResolveError, ResolverConfig};
pub use session::{
    EndedSession, NewSession, Session, SessionInfo, SessionKind, UnknownSessionKind,
};
pub use session_limits::{SessionEnd, SessionLimits};
pub use session_token::SessionSecret;
pub use source::IdentitySource;
pub use token::{
    ApiToken, ApiTokenSecret, NewApiToken, TokenHash, SESSION_TOKEN_PREFIX, TOKEN_PREFIX,
};
pub use user::{NewUser, User, UserStatus};

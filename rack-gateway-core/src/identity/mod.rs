//! Who is calling: users, API tokens and the [`Principal`] a request acts as.
//!
//! API tokens are `rgw_` followed by 32 random bytes in unpadded base64url. Only the SHA-256 of
//! a token is ever stored; the plaintext is shown once, when it is created. Session tokens do not
//! exist yet; their shape is fixed already (`rgs_` and 43 base64url characters) so that
//! redaction recognises both kinds.
//!
//! ```
//! use rack_gateway_core::identity::{ApiTokenSecret, TokenHash};
//!
//! let secret = ApiTokenSecret::generate();
//! assert!(secret.expose().starts_with("rgw_"));
//! let hash = TokenHash::of(secret.expose());
//! assert!(hash.matches(&TokenHash::of(secret.expose())));
//! ```

mod cache;
mod principal;
mod resolver;
mod token;
mod user;

pub use principal::{Principal, TokenPrincipal, UserPrincipal};
pub use resolver::{IdentityResolver, ResolveError, ResolverConfig};
pub use token::{
    ApiToken, ApiTokenSecret, NewApiToken, TokenHash, SESSION_TOKEN_PREFIX, TOKEN_PREFIX,
};
pub use user::{NewUser, User, UserStatus};

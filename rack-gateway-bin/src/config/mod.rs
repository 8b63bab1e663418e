//! Configuration from the environment, validated once at start-up.
//!
//! Every problem is reported as one line naming the variable, and the process exits with
//! status 2. Empty values count as unset.
//!
//! ```
//! use rack_gateway_bin::config::{Env, StoreConfig};
//!
//! let env = Env::from_pairs([("DATABASE_URL", "postgres://db/gateway")]);
//! let store = StoreConfig::from_env(&env).unwrap();
//! assert_eq!(store.database_url.as_deref(), Some("postgres://db/gateway"));
//! ```

mod audit;
mod env;
mod secret;
mod serve;
mod sign_in;
mod store;

pub use audit::{AuditKeys, DevSecrets};
pub use env::{ConfigError, Env};
pub use secret::Secret;
pub use serve::{max_connections, RackConfig, ServeConfig, TlsFiles};
pub use sign_in::{is_loopback_host, PlainHttpPolicy, SignInConfig, SignInKind, GOOGLE_ISSUER};
pub use store::StoreConfig;

//! Redaction: keeping secret values out of audit records, logs and responses.
//!
//! Everything here is a pure function (no I/O), meant to run *before* a value is stored or shown:
//!
//! - [`SecretRules`] decides which env keys are secret ([`SecretRules::is_secret_key`]) and which
//!   query/form field names are sensitive ([`SecretRules::is_sensitive_name`]).
//! - [`mask_url_credentials`] replaces the password of every `scheme://user:password@host` in a
//!   value with [`MASK`], keeping user and host.
//! - [`EnvMap`] parses and serializes the Convox env text; [`mask_env`] masks it for a caller
//!   according to what they may see ([`Reveal`]).
//! - [`redact_query`] and [`redact_form_pairs`] replace sensitive fields by [`REDACTED`] for audit
//!   details; [`redact_text`] is a last line of defence for free text.
//! - [`redact_credentials`] replaces anything shaped like a gateway token (`rgw_…`, `rgs_…`) in
//!   any text; every audit event goes through it before it is sealed.
//! - [`redact_command`] redacts a command line: secret `NAME=value` assignments, URL passwords
//!   and gateway tokens.
//! - [`canonical_json`] renders audit details with sorted keys and no spaces.
//!
//! ```
//! use rack_gateway_core::redact::{mask_env, redact_query, EnvMap, Reveal, SecretRules, MASK};
//!
//! let rules = SecretRules::from_list("LICENSE_BLOB");
//! let env = EnvMap::parse("PORT=3000\nAPI_TOKEN=abc123\nDATABASE_URL=postgres://app:hunter2@db:5432/app\n");
//! let shown = mask_env(&env, &rules, Reveal::NonSecrets);
//! assert_eq!(shown.get("PORT"), Some("3000"));
//! assert_eq!(shown.get("API_TOKEN"), Some(MASK));
//! assert_eq!(
//!     shown.get("DATABASE_URL"),
//!     Some("postgres://app:********************@db:5432/app")
//! );
//!
//! assert_eq!(redact_query("page=2&access_token=abc", &rules), "page=2&access_token=[REDACTED]");
//! ```

mod command;
mod credentials;
mod env;
mod json;
mod query;
mod rules;
mod text;
mod url;

pub use command::{redact_command, redact_command_with};
pub use credentials::{redact_credentials, MIN_BODY_CHARS};
pub use env::{mask_env, mask_env_value, mask_env_with, EnvError, EnvMap, Reveal};
pub use json::canonical_json;
pub use query::{redact_form_pairs, redact_query};
pub use rules::SecretRules;
pub use text::redact_text;
pub use url::mask_url_credentials;

/// What a masked env value is shown as: 20 asterisks, as the Convox CLI tooling expects.
pub const MASK: &str = "********************";

/// What a redacted audit value (query/form field, known secret in free text) is replaced by.
pub const REDACTED: &str = "[REDACTED]";

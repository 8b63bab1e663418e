//! Redaction on the proxy path: env values masked in rack responses per caller, safe env writes
//! on release create, and env request headers only for callers who may set env.
//!
//! [`RedactLayer`] sits between the `AuthorizeLayer` and the
//! `AuditIntentLayer`, so its refusals happen before an
//! intent is written and nothing reaches the rack. It reads the caller (`Arc<Principal>`) and
//! the matched route ([`Decision`](crate::decision::Decision)) from the request extensions, and
//! decides by route — other responses stream through unbuffered:
//!
//! - **Responses** of release, app and rack reads (and the writes that answer with those
//!   objects) are buffered up to a limit (16 MiB; beyond it 502, never unmasked data), parsed
//!   as JSON and masked ([`mask_json`]): `env` values all masked without `convox:env:read`,
//!   secret keys, protected keys and URL passwords masked with it, nothing masked with
//!   `convox:secret:read`; `parameters` readable, except secret-named values and URL passwords
//!   (unless `convox:secret:read`). Non-2xx and non-JSON bodies pass untouched.
//! - **Release create** (`POST /apps/{app}/releases`): the body must be exactly one well-formed
//!   `application/x-www-form-urlencoded` form (or empty, without a `Content-Type`); any other
//!   media type is 415 and a malformed form 400, never forwarded. The posted `env` field is
//!   merged over the app's current env ([`merge_env`]: masked values keep the stored value,
//!   protected keys never change, secrets need `convox:secret:set` — a secret the caller cannot
//!   read may only be posted as the mask, so guessing it tells nothing — other changes and
//!   removals need `convox:env:set`), and the rack gets the gateway's own re-encoding of the
//!   form. One record per changed key (`env.set`, `env.unset`, `secret.set`, `secret.unset`,
//!   resource `app/KEY`, details `{"new":…,"old":…}` holding `[REDACTED]` or `null` — never a
//!   value) goes into the request's [`AuditDraft`](crate::draft::AuditDraft) and is made durable
//!   with its intent, before the rack sees the change. `env` in the query string, a malformed
//!   query, or a repeated `env` field are refused.
//! - **Memory**: every buffer (responses to mask, forms, envs read from the rack) takes its
//!   size from one [`BufferBudget`] shared by all requests; when it is spent a request waits
//!   briefly, then gets 503.
//! - **Env headers** (`Env`, `Environment`, `Release-Env`, e.g. `convox run --env`) pass only
//!   for callers with `convox:env:set` (403 otherwise), through the
//!   [`EnvHeadersAllowed`] marker; on release create they are
//!   refused (Convox would read them as the `env` field and bypass the merge). Their values never
//!   reach the audit record, which holds only the path, the redacted query and the command.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use rack_gateway_core::redact::SecretRules;
//! use rack_gateway_layers::forward::{OriginPolicy, RackForward, RackTarget, RackTls};
//! use rack_gateway_layers::redact::{RedactLayer, StaticEnvPolicy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rack = RackForward::new(
//!     RackTarget {
//!         base: "http://127.0.0.1:5443".parse()?,
//!         username: "convox".into(),
//!         token: "rack-token".into(),
//!         tls: RackTls::Insecure,
//!         connect_timeout: Duration::from_secs(10),
//!         header_timeout: Duration::from_secs(30),
//!     },
//!     OriginPolicy::default(),
//! )?;
//! let policy = Arc::new(StaticEnvPolicy::new().protected(["DATABASE_HOST"]));
//! let layer = RedactLayer::new(SecretRules::from_list("LICENSE_BLOB"), policy, rack.clone());
//! // ServiceBuilder::new().layer(authorize).layer(layer).layer(audit_intent).service(rack)
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

mod access;
mod budget;
mod changes;
mod collect;
mod env_request;
mod fetch;
mod form;
mod future;
mod layer;
mod mask;
mod merge;
mod policy;
mod release;
mod response;

pub use crate::upstream::{EnvHeadersAllowed, ENV_HEADERS};
pub use access::{EnvAccess, ENV_READ, ENV_SET, SECRET_READ, SECRET_SET};
pub use budget::{BufferBudget, DEFAULT_BUFFER_BUDGET, DEFAULT_BUFFER_WAIT};
pub use changes::record_env_changes;
pub use fetch::{create_release, fetch_env, is_app_name, FetchError, RackRequestOptions};
pub use future::RedactFuture;
pub(crate) use layer::Config;
pub use layer::{
    Redact, RedactLayer, DEFAULT_FETCH_TIMEOUT, DEFAULT_FORM_LIMIT, DEFAULT_RESPONSE_LIMIT,
};
pub use mask::{mask_json, MaskScope};
pub use merge::{merge_env, ChangeKind, EnvChange, MergeRefusal, MergeRules, MergedEnv};
pub use policy::{EnvPolicy, StaticEnvPolicy};

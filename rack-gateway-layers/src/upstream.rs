//! What the layers tell the forwarder about the request it sends upstream, as request
//! extensions: where to send it ([`RackPath`], set by authorization) and whether env headers may
//! go with it ([`EnvHeadersAllowed`], set by redaction). Without them nothing is forwarded, or
//! the headers are dropped: a stack missing a layer fails closed.
//!
//! ```
//! use rack_gateway_layers::upstream::RackPath;
//!
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(RackPath("/apps/web/processes".into()));
//! ```

/// Request extension set by the authorization layer: the Convox path and query to send upstream
/// (e.g. `/apps/web/processes?service=web`), gateway prefix already removed. Must start with `/`.
#[derive(Clone, Debug)]
pub struct RackPath(pub String);

/// Request extension set by the redaction layer: the caller may send env values in the
/// `Env`, `Environment` and `Release-Env` headers (it holds `convox:env:set`). Without it those
/// headers are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvHeadersAllowed;

/// The request headers that carry env values to the rack, lower-case: `Environment` (what
/// `convox run` sends), and `Env` / `Release-Env` (Convox reads any form value, a release's
/// `env` included, from a header of the same name). Forwarded only with [`EnvHeadersAllowed`].
pub const ENV_HEADERS: &[&str] = &["env", "environment", "release-env"];

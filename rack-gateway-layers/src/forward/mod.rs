//! [`RackForward`]: the innermost service, which sends an already-authorized request to the
//! Convox rack with the rack's own credential, streaming both bodies, or relays a websocket.
//!
//! # What the rack receives
//!
//! - The URI is the configured base (scheme, authority, optional path prefix) followed by the
//!   [`RackPath`] the authorization layer put in the request extensions. Without a `RackPath`
//!   the request is not forwarded ([`ForwardError::MissingRackPath`]).
//! - The client's end-to-end headers, except its credentials (`Authorization`, `Cookie`,
//!   `Proxy-Authorization`), hop-by-hop headers, identity headers a client could spoof, and the
//!   env headers (`Env`, `Environment`, `Release-Env`) unless the request carries
//!   [`EnvHeadersAllowed`].
//! - `Host` (the rack's authority), `Authorization: Basic base64(RACK_USERNAME:RACK_TOKEN)`,
//!   `X-Request-ID` (the incoming `x-request-id`, else a new UUIDv4) and `X-User-Email` (from the
//!   [`Principal`](rack_gateway_core::identity::Principal) in the extensions, as
//!   `Arc<Principal>` or `Principal`).
//!
//! # Streaming and timeouts
//!
//! Request and response bodies are streamed, never collected. Connecting (TCP and TLS) is bounded
//! by `connect_timeout`; `header_timeout` bounds request-body stalls and the wait for response
//! headers once the body is sent; nothing bounds a response body or a websocket once it flows.
//!
//! # Errors
//!
//! A refusal (websocket `Origin` not allowed) is an `Ok` 403. Infrastructure failures are `Err`
//! for the edge layer to map: [`RackUnavailable`](crate::error::RackUnavailable) with the reason,
//! [`RackTimeout`](crate::error::RackTimeout), and
//! [`RackCertificateMismatch`](crate::error::RackCertificateMismatch) when the pin does not match.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use rack_gateway_layers::forward::{parse_pin, OriginPolicy, RackForward, RackPath, RackTarget, RackTls};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pin = parse_pin("3A:5F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD")?;
//! let forward = RackForward::new(
//!     RackTarget {
//!         base: "https://rack.example:5443".parse()?,
//!         username: "convox".into(),
//!         token: "rack-token".into(),
//!         tls: RackTls::Pinned(pin),
//!         connect_timeout: Duration::from_secs(10),
//!         header_timeout: Duration::from_secs(30),
//!     },
//!     OriginPolicy { allowed_hosts: vec!["gateway.example.com".into()], allow_localhost: false },
//! )?;
//!
//! // The authorization layer states what may be sent upstream:
//! let mut request = http::Request::new(rack_gateway_layers::body::empty());
//! request.extensions_mut().insert(RackPath("/apps/web/processes?service=web".into()));
//! // let response = tower::ServiceExt::oneshot(forward, request).await?;
//! # let _ = (forward, request);
//! # Ok(())
//! # }
//! ```
//!
//! Websocket upgrades only complete when the server side is HTTP/1.1 with upgrades enabled
//! (`hyper::server::conn::http1::Builder::serve_connection(..).with_upgrades()`, or
//! `serve_connection_with_upgrades` with hyper-util's auto builder).

mod client;
mod config;
mod deadline;
mod frames;
mod headers;
mod origin;
mod relays;
mod service;
mod tls;
mod websocket;

pub use config::{parse_pin, ForwardConfigError, OriginPolicy, RackTarget, RackTls};
pub use relays::RelayTracker;
pub use service::{ForwardBody, ForwardError, RackForward, ResponseFuture};

pub use crate::relay::{RelayStats, RelayStatsSender};
pub use crate::upstream::{EnvHeadersAllowed, RackPath, ENV_HEADERS};

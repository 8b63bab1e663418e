//! The HTTP server: the proxy stack, the other endpoints, and the listener.
//!
//! Requests under `/api/v1/rack-proxy` go through the Tower stack of `rack-gateway-layers`
//! ([`stack::proxy_stack`]), the rest of `/api/v1` through the JSON API's stack
//! ([`crate::api::service`]: the same audit and authentication layers); health (and the web UI
//! later) is an axum router ([`routes::router`]). [`Dispatch`] picks one by path, and
//! [`listen::serve`] runs it on a socket with optional TLS and graceful shutdown, within the
//! connection limits of `admission` (how many) and `connection` (how long to the first
//! request).

mod admission;
mod connection;
mod dispatch;
pub mod health;
pub mod listen;
pub mod routes;
pub mod stack;

pub use dispatch::{Dispatch, PeerAddr, PROXY_PREFIX};

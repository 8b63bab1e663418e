//! Auditing: every request that reaches the layer leaves a record in the HMAC chain.
//!
//! [`AuditLayer`] sits outside authentication, so failed logins, unknown routes and denials are
//! recorded too. It places an [`AuditDraft`] in the request extensions; the authentication and
//! authorization layers write what they decided into it, and the audit layer turns it into one
//! `complete` record when the response (or, for websockets, the relay) ends. [`AuditIntentLayer`]
//! sits just before the rack: a mutating request is forwarded only once its `intent` record is
//! durable, and gets 503 (and is never forwarded) when the audit store cannot take it.
//!
//! Records go to one [`AuditWriter`] task per process, which commits them in batches (group
//! commit) through an [`AuditSink`](rack_gateway_core::audit::AuditSink) (the gateway's stores,
//! or one of your own). Its queue is bounded: when it is full, new requests wait for room and get
//! 503 after a bound; nothing acknowledged is ever dropped.
//!
//! What a record says:
//!
//! - `decision` is the gateway's: `deny` for what authentication or authorization refused (and
//!   for any answer carrying a [`GatewayReason`](crate::body::GatewayReason), the reason then
//!   being recorded), `error` for infrastructure failures, otherwise `allow` — an inner service's
//!   own 4xx (the rack's "no such app") is `allow` with that status. A handler that refuses for a
//!   reason of its own adds a `GatewayReason` to its response to be recorded as `deny`.
//! - `client_ip` comes from the [`PeerAddr`] the server puts in the request extensions (and
//!   X-Forwarded-For from trusted proxies); `request_id` from the `X-Request-ID` header (use
//!   tower-http's `SetRequestIdLayer` outside).
//! - Unknown routes are `route.unknown`, ambiguous paths `route.bad_path`, credentials refused
//!   before any route was matched `auth.failed`.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn rack_gateway_core::audit::AuditSink>) {
//! use rack_gateway_core::audit::ChainKey;
//! use rack_gateway_layers::audit::{AuditConfig, AuditIntentLayer, AuditLayer, AuditWriter, WriterConfig};
//!
//! let key = ChainKey::new(b"the AUDIT_HMAC_SECRET, at least 32 bytes");
//! let (writer, _task) = AuditWriter::spawn(store, key, WriterConfig::default());
//! let outer = AuditLayer::new(writer.clone(), AuditConfig::new("/api/v1/rack-proxy"));
//! let inner = AuditIntentLayer::new(writer);
//! # let _ = (outer, inner);
//! # }
//! ```

mod future;
mod intent;
mod layer;
mod writer;

pub use future::ResponseFuture;
pub use intent::{record_intent, AuditIntent, AuditIntentLayer, IntentFuture};
pub use layer::{Audit, AuditConfig, AuditLayer};
pub use writer::{AuditUnavailable, AuditWriter, WriterConfig, WriterHealth, WriterTask};

pub use crate::draft::AuditDraft;
pub use crate::peer::{Cidr, CidrError, PeerAddr};

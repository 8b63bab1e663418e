//! Anchoring the audit chain in S3 Object Lock (WORM) storage.
//!
//! While AUDIT_ANCHOR_BUCKET is set, one gateway instance at a time (the holder of the
//! `audit-anchor` lease) copies the chain head to an object
//! `<chain_id>/<YYYY>/<MM>/<DD>/<seq:020>.json` every AUDIT_ANCHOR_INTERVAL_SECONDS when the
//! head moved, and once more on graceful shutdown. Each object is written once
//! (`If-None-Match: *`), COMPLIANCE-locked for AUDIT_ANCHOR_RETENTION_DAYS, carries a SHA-256
//! checksum, links to the previous anchor, and is recorded in the store so the previous
//! anchor is found without listing the bucket. Failures are retried with backoff, counted in
//! `rgw_audit_anchor_failures_total` and shown by [`AnchorHandle::status`]; requests never
//! wait for any of it.
//!
//! [`check_anchors`] (or [`AnchorVerifier::check`], [`claims_for_verify`]) reads the anchors
//! back for `audit verify`: the verifier then checks each [`AnchorClaim`] against its row and
//! treats every [`AnchorProblem`] as tampering.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn rack_gateway_core::store::Store>) -> anyhow::Result<()> {
//! use rack_gateway_bin::anchors::{AnchorConfig, AnchorWriter};
//! use rack_gateway_bin::config::Env;
//!
//! if let Some(config) = AnchorConfig::from_env(&Env::from_process())? {
//!     let handle = AnchorWriter::spawn(store.clone(), config, "gateway-1").await;
//!     // … serve; the readiness endpoint shows handle.status() …
//!     let check = handle.verifier().check(store.as_ref()).await?;
//!     assert!(check.is_intact(), "{:?}", check.problems);
//!     let last = handle.flush_and_stop().await;
//!     println!("last anchored seq: {:?}", last.last_seq);
//! }
//! # Ok(()) }
//! ```

mod check;
mod client;
mod config;
mod error;
mod writer;

pub use check::{
    check_anchors, claims_for_verify, read_anchor, AnchorCheck, AnchorClaim, AnchorProblem,
    AnchorVerifier,
};
pub use client::s3_client;
pub use config::{AnchorConfig, DEFAULT_INTERVAL_SECONDS, DEFAULT_REGION, DEFAULT_RETENTION_DAYS};
pub use error::AnchorError;
pub use writer::{
    write_anchor_once, AnchorHandle, AnchorOutcome, AnchorStatus, AnchorWriter, FAILURES_METRIC,
    LEASE_NAME,
};

//! Runnable examples of embedding the rack-gateway layers in another Rust service.
//!
//! This library is empty; the examples live beside it:
//!
//! - `embed` (`cargo run -p rack-gateway-examples --example embed`): an in-memory "rack status"
//!   service of its own, wrapped in `RescueLayer`, `AuthenticateLayer` and `AuthorizeLayer`,
//!   served on a loopback port and exercised with and without credentials. It checks every
//!   answer and exits non-zero if one is not as expected.

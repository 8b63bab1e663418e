//! Benchmarks of rack-gateway. This library is empty; the benchmarks live beside it:
//!
//! - `layers.rs` (`cargo bench -p rack-gateway-benches --bench layers`): one request through
//!   `RescueLayer` → `AuthenticateLayer` → `AuthorizeLayer` → a no-op service with a warm
//!   identity cache, against the no-op service alone, `explain()` alone and
//!   `parse_authorization` alone (divan prints the medians).
//! - `load.sh`: the release binary end to end with `wrk`, straight at a mock rack and through
//!   the gateway, in one run, with the ratios.
//! - `run.sh`: both.

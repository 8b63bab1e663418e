//! Helpers shared by the binary's integration tests: child processes and a small HTTP client.
#![allow(dead_code, unreachable_pub)]

pub mod audit;
pub mod deploy;
pub mod http;
pub mod oidc;
pub mod oidc_tap;
pub mod postgres;
pub mod process;
pub mod standin;

//! The `rack-gateway` binary.
#![forbid(unsafe_code)]

fn main() {}

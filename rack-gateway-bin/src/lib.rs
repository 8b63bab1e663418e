//! The rack-gateway binary's library: the pieces behind the `rack-gateway` subcommands.
//!
//! [`config`] reads and validates the environment, [`auth`] signs people in through OIDC,
//! [`server`] holds the HTTP server and the proxy stack, [`gateway`] assembles them,
//! [`commands`] has one module per subcommand, and [`mock_rack`] is a fake Convox rack API used
//! by `rack-gateway dev`, tests and benchmarks. [`client`] is the other side: signing in to a
//! gateway and running the Convox CLI through it.
#![forbid(unsafe_code)]

pub mod anchors;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod failure;
pub mod gateway;
pub mod logging;
pub mod mock_rack;
pub mod server;
pub mod settings;
pub mod signin;

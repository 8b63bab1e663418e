//! Route tables: which (method, path) pairs pass at all, with what permission, MFA level and
//! flags.
//!
//! A table is data: rows ([`Route`]) built in code or read from TOML/JSON ([`mod@file`]), checked
//! and compiled once into a [`RouteTable`] ([`RouteTableBuilder`] refuses duplicate or shadowed
//! rows, malformed patterns and unknown permissions). A request that matches no row is refused
//! with 404 before any permission check; a path that is ambiguous (`..`, `//`, `%2e`, `%2f`,
//! `\`) with 400. The Convox allow-list ([`CONVOX_ROUTES`], [`RouteTable::global`]) is one such
//! table; a service embedding the layers brings its own.
//!
//! ```
//! use rack_gateway_core::routes::RouteTable;
//!
//! let matched = RouteTable::global().classify("GET", false, "/apps/web/processes").unwrap();
//! assert_eq!(matched.route.permission, "convox:process:list");
//! assert_eq!(matched.app.as_deref(), Some("web"));
//! ```

mod builder;
mod convox;
pub mod file;
mod path;
mod route;
mod table;

pub use builder::{RouteProblem, RouteTableBuilder, RouteTableError};
pub use convox::CONVOX_ROUTES;
pub use file::RouteFileError;
pub use path::{check_path, PathError};
pub use route::{Route, RouteSpec};
pub use table::{RouteError, RouteMatch, RouteTable};

use serde::Deserialize;

/// The method column of the route table; websocket upgrades are `Socket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RouteMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// A websocket upgrade (`Connection: upgrade` + `Upgrade: websocket`).
    Socket,
}

impl RouteMethod {
    /// Whether rows of this method change state by default (POST, PUT, DELETE).
    pub const fn changes_state(self) -> bool {
        matches!(
            self,
            RouteMethod::Post | RouteMethod::Put | RouteMethod::Delete
        )
    }

    /// As printed: `GET`, …, `SOCKET`.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteMethod::Get => "GET",
            RouteMethod::Post => "POST",
            RouteMethod::Put => "PUT",
            RouteMethod::Delete => "DELETE",
            RouteMethod::Socket => "SOCKET",
        }
    }
}

/// How recently a session user must have passed MFA to use a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaLevel {
    /// No MFA beyond sign-in.
    None,
    /// MFA within the step-up window.
    StepUp,
    /// MFA on this very request.
    Always,
}

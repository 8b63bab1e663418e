//! The Convox route allow-list: which (method, path) pairs the gateway forwards at all.
//!
//! The table is data ([`RACK_ROUTES`]), compiled once into a [`RouteTable`]. A request that
//! does not match a row is refused with 404 before any permission check; a path that is
//! ambiguous (`..`, `//`, `%2e`, `%2f`, `\`) is refused with 400.
//!
//! ```
//! use rack_gateway_core::routes::RouteTable;
//!
//! let matched = RouteTable::global().classify("GET", false, "/apps/web/processes").unwrap();
//! assert_eq!(matched.route.permission, "convox:process:list");
//! assert_eq!(matched.app.as_deref(), Some("web"));
//! ```

mod matcher;
mod normalize;
mod table;

pub use matcher::{RouteError, RouteMatch, RouteTable};
pub use normalize::{normalize, PathError};
pub use table::RACK_ROUTES;

/// The method column of the route table; websocket upgrades are `Socket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MfaLevel {
    /// No MFA beyond sign-in.
    None,
    /// MFA within the step-up window.
    StepUp,
    /// MFA on this very request.
    Always,
}

/// One row of the allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RackRoute {
    /// Method, or `Socket` for websocket upgrades.
    pub method: RouteMethod,
    /// Path pattern; `{name}` matches one non-empty segment, `{id}.tgz` a segment ending in `.tgz`.
    pub pattern: &'static str,
    /// The permission needed.
    pub permission: &'static str,
    /// MFA level for session users.
    pub mfa: MfaLevel,
    /// Reachable by a `deploy_with_approval` token holding an approved deploy request.
    pub approval_gated: bool,
    /// Audit action name, `<resource>.<action>` (e.g. `app.list`, `process.exec`).
    pub action: &'static str,
    /// Blocked unless the `allow_destructive_actions` policy is on.
    pub destructive: bool,
    /// Changes state on the rack (so its audit intent must be durable before forwarding).
    pub mutating: bool,
}

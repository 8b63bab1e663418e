//! One row of a route table: what a request must hold to pass, and the facts the layers act on.

use std::borrow::Cow;

use super::{MfaLevel, RouteMethod};

/// One row of a route table.
///
/// Rows are built in code ([`Route::new`] and its setters, or a `const` [`RouteSpec`] for a
/// built-in table such as [`CONVOX_ROUTES`]) or read from a file ([`RouteTable::from_toml`]);
/// either way they are checked when the table is built.
///
/// [`CONVOX_ROUTES`]: super::CONVOX_ROUTES
/// [`RouteTable::from_toml`]: super::RouteTable::from_toml
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Method, or `Socket` for websocket upgrades.
    pub method: RouteMethod,
    /// Path pattern; `{name}` matches one non-empty segment, `{id}.tgz` a segment ending in `.tgz`.
    pub pattern: Cow<'static, str>,
    /// The permission needed; empty: any authenticated caller (the handler decides the rest).
    pub permission: Cow<'static, str>,
    /// MFA level for session users.
    pub mfa: MfaLevel,
    /// Audit action name, `<resource>.<action>` (e.g. `app.list`, `process.exec`).
    pub action: Cow<'static, str>,
    /// Reachable by a `deploy_with_approval` token holding an approved deploy request.
    pub approval_gated: bool,
    /// Blocked unless the `allow_destructive_actions` policy is on.
    pub destructive: bool,
    /// Changes state (so its audit intent must be durable before the request goes on).
    pub mutating: bool,
    /// Its responses may carry env values or secret parameters (so they are masked per caller).
    pub carries_env: bool,
    /// Its request carries an env to merge over the current one (a release create).
    pub merges_env: bool,
}

impl Route {
    /// A row needing `permission` (empty: any authenticated caller); it changes state when the
    /// method is POST, PUT or DELETE, and needs no MFA.
    pub fn new(
        method: RouteMethod,
        pattern: impl Into<Cow<'static, str>>,
        permission: impl Into<Cow<'static, str>>,
        action: impl Into<Cow<'static, str>>,
    ) -> Route {
        Route {
            method,
            pattern: pattern.into(),
            permission: permission.into(),
            mfa: MfaLevel::None,
            action: action.into(),
            approval_gated: false,
            destructive: false,
            mutating: method.changes_state(),
            carries_env: false,
            merges_env: false,
        }
    }

    /// With this MFA level.
    pub fn mfa(mut self, mfa: MfaLevel) -> Route {
        self.mfa = mfa;
        self
    }

    /// Reachable through an approved deploy approval request.
    pub fn approval_gated(mut self) -> Route {
        self.approval_gated = true;
        self
    }

    /// Blocked unless the `allow_destructive_actions` policy is on.
    pub fn destructive(mut self) -> Route {
        self.destructive = true;
        self
    }

    /// Changes state even though its method does not say so (an exec runs code as a GET).
    pub fn mutating(mut self) -> Route {
        self.mutating = true;
        self
    }

    /// Its responses may carry env values or secret parameters.
    pub fn carries_env(mut self) -> Route {
        self.carries_env = true;
        self
    }

    /// Its request carries an env to merge over the current one.
    pub fn merges_env(mut self) -> Route {
        self.merges_env = true;
        self
    }

    /// Whether a specific permission is needed (not just any authenticated caller).
    pub fn requires_permission(&self) -> bool {
        !self.permission.is_empty()
    }
}

/// A row of a built-in table, written as a `const` (a [`Route`] owns its text, which a
/// `const` cannot build); [`RouteTableBuilder::route`](super::RouteTableBuilder::route) takes
/// either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// See [`Route::method`].
    pub method: RouteMethod,
    /// See [`Route::pattern`].
    pub pattern: &'static str,
    /// See [`Route::permission`].
    pub permission: &'static str,
    /// See [`Route::mfa`].
    pub mfa: MfaLevel,
    /// See [`Route::action`].
    pub action: &'static str,
    /// See [`Route::approval_gated`].
    pub approval_gated: bool,
    /// See [`Route::destructive`].
    pub destructive: bool,
    /// See [`Route::mutating`].
    pub mutating: bool,
    /// See [`Route::carries_env`].
    pub carries_env: bool,
    /// See [`Route::merges_env`].
    pub merges_env: bool,
}

impl RouteSpec {
    /// As [`Route::new`].
    pub const fn new(
        method: RouteMethod,
        pattern: &'static str,
        permission: &'static str,
        action: &'static str,
    ) -> RouteSpec {
        RouteSpec {
            method,
            pattern,
            permission,
            mfa: MfaLevel::None,
            action,
            approval_gated: false,
            destructive: false,
            mutating: method.changes_state(),
            carries_env: false,
            merges_env: false,
        }
    }

    /// As [`Route::mfa`].
    pub const fn mfa(self, mfa: MfaLevel) -> RouteSpec {
        RouteSpec { mfa, ..self }
    }

    /// As [`Route::approval_gated`].
    pub const fn approval_gated(self) -> RouteSpec {
        RouteSpec {
            approval_gated: true,
            ..self
        }
    }

    /// As [`Route::destructive`].
    pub const fn destructive(self) -> RouteSpec {
        RouteSpec {
            destructive: true,
            ..self
        }
    }

    /// As [`Route::mutating`].
    pub const fn mutating(self) -> RouteSpec {
        RouteSpec {
            mutating: true,
            ..self
        }
    }

    /// As [`Route::carries_env`].
    pub const fn carries_env(self) -> RouteSpec {
        RouteSpec {
            carries_env: true,
            ..self
        }
    }

    /// As [`Route::merges_env`].
    pub const fn merges_env(self) -> RouteSpec {
        RouteSpec {
            merges_env: true,
            ..self
        }
    }
}

impl From<RouteSpec> for Route {
    fn from(spec: RouteSpec) -> Route {
        Route {
            method: spec.method,
            pattern: Cow::Borrowed(spec.pattern),
            permission: Cow::Borrowed(spec.permission),
            mfa: spec.mfa,
            action: Cow::Borrowed(spec.action),
            approval_gated: spec.approval_gated,
            destructive: spec.destructive,
            mutating: spec.mutating,
            carries_env: spec.carries_env,
            merges_env: spec.merges_env,
        }
    }
}

impl From<&RouteSpec> for Route {
    fn from(spec: &RouteSpec) -> Route {
        Route::from(*spec)
    }
}

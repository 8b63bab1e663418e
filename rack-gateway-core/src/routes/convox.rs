//! The allow-list itself (reference §2.5). First match wins, so more specific rows come first.
//!
//! The reference lists `GET /apps/{app}/builds/{id}` before `{id}.tgz`, so there the export
//! row is never reached and `{id}` captures `B1.tgz`; here `{id}.tgz` comes first so that the
//! build id is captured without the suffix (same permission, MFA level and approval gating).
//! Rows marked `SOCKET, GET` in the reference are two rows here.

use super::MfaLevel::{Always, None as NoMfa, StepUp};
use super::RouteMethod::{Delete, Get, Post, Put, Socket};
use super::{MfaLevel, RouteMethod, RouteSpec};

const fn row(
    method: RouteMethod,
    pattern: &'static str,
    permission: &'static str,
    mfa: MfaLevel,
    approval_gated: bool,
    action: &'static str,
) -> RouteSpec {
    let route = RouteSpec::new(method, pattern, permission, action).mfa(mfa);
    if approval_gated {
        route.approval_gated()
    } else {
        route
    }
}

/// Marks a row that runs a command in a process (exec): it changes state even as a GET.
const fn runs_code(route: RouteSpec) -> RouteSpec {
    route.mutating()
}

const fn destructive(route: RouteSpec) -> RouteSpec {
    route.destructive()
}

/// Marks a row whose responses may carry an env (`env` of releases) or rack/app `parameters`:
/// only these responses are buffered and masked.
const fn env(route: RouteSpec) -> RouteSpec {
    route.carries_env()
}

/// Every Convox route the gateway forwards. Anything else is refused with 404.
#[rustfmt::skip]
pub static CONVOX_ROUTES: &[RouteSpec] = &[
    // Processes.
    row(Get, "/apps/{app}/processes", "convox:process:list", NoMfa, false, "process.list"),
    row(Get, "/apps/{app}/processes/{pid}", "convox:process:read", NoMfa, false, "process.read"),
    row(Delete, "/apps/{app}/processes/{pid}", "convox:process:terminate", StepUp, true, "process.terminate"),
    runs_code(row(Socket, "/apps/{app}/processes/{pid}/exec", "convox:process:exec", StepUp, true, "process.exec")),
    runs_code(row(Get, "/apps/{app}/processes/{pid}/exec", "convox:process:exec", StepUp, true, "process.exec")),
    row(Post, "/apps/{app}/services/{service}/processes", "convox:process:start", StepUp, true, "process.start"),
    // Logs.
    row(Socket, "/apps/{app}/processes/{pid}/logs", "convox:log:read", NoMfa, false, "log.read"),
    row(Get, "/apps/{app}/processes/{pid}/logs", "convox:log:read", NoMfa, false, "log.read"),
    row(Socket, "/apps/{app}/builds/{id}/logs", "convox:log:read", NoMfa, true, "build.logs"),
    row(Get, "/apps/{app}/builds/{id}/logs", "convox:log:read", NoMfa, true, "build.logs"),
    row(Socket, "/apps/{app}/logs", "convox:log:read", NoMfa, false, "log.read"),
    row(Get, "/apps/{app}/logs", "convox:log:read", NoMfa, false, "log.read"),
    row(Socket, "/system/logs", "convox:log:read", NoMfa, false, "log.read"),
    row(Get, "/system/logs", "convox:log:read", NoMfa, false, "log.read"),
    // Builds.
    row(Get, "/apps/{app}/builds", "convox:build:list", NoMfa, false, "build.list"),
    row(Get, "/apps/{app}/builds/{id}.tgz", "convox:build:read", NoMfa, true, "build.export"),
    row(Get, "/apps/{app}/builds/{id}", "convox:build:read", NoMfa, true, "build.read"),
    row(Post, "/apps/{app}/builds", "convox:build:create", StepUp, true, "build.create"),
    row(Post, "/apps/{app}/builds/import", "convox:build:create", StepUp, true, "build.import"),
    row(Put, "/apps/{app}/builds/{id}", "convox:build:update", NoMfa, false, "build.update"),
    // Releases.
    env(row(Get, "/apps/{app}/releases", "convox:release:list", NoMfa, false, "release.list")),
    env(row(Get, "/apps/{app}/releases/{id}", "convox:release:read", NoMfa, true, "release.read")),
    env(row(Post, "/apps/{app}/releases", "convox:release:create", StepUp, false, "release.create")).merges_env(),
    env(row(Post, "/apps/{app}/releases/{id}/promote", "convox:release:promote", StepUp, true, "release.promote")),
    // Objects (build uploads).
    row(Post, "/apps/{app}/objects/tmp/{name}", "convox:object:create", NoMfa, true, "object.create"),
    // Apps.
    env(row(Get, "/apps", "convox:app:list", NoMfa, false, "app.list")),
    env(row(Get, "/apps/{name}", "convox:app:read", NoMfa, false, "app.read")),
    env(row(Post, "/apps", "convox:app:create", StepUp, false, "app.create")),
    env(row(Put, "/apps/{name}", "convox:app:update", StepUp, false, "app.update")),
    row(Post, "/apps/{app}/restart", "convox:app:restart", StepUp, false, "app.restart"),
    destructive(row(Delete, "/apps/{name}", "convox:app:delete", Always, false, "app.delete")),
    // Services.
    row(Put, "/apps/{app}/services/{name}", "convox:app:update", StepUp, false, "service.update"),
    row(Get, "/apps/{app}/services", "convox:app:read", NoMfa, false, "service.list"),
    row(Post, "/apps/{app}/services/{service}/restart", "convox:process:start", StepUp, true, "service.restart"),
    // Instances and the rack.
    row(Get, "/instances", "convox:instance:list", NoMfa, false, "instance.list"),
    row(Get, "/instances/{id}", "convox:instance:read", NoMfa, false, "instance.read"),
    env(row(Get, "/system", "convox:rack:read", NoMfa, false, "rack.read")),
    env(row(Put, "/system", "convox:rack:update", StepUp, false, "rack.update")),
    row(Get, "/system/capacity", "convox:rack:read", NoMfa, false, "rack.capacity"),
    row(Get, "/system/metrics", "convox:rack:read", NoMfa, false, "rack.metrics"),
    row(Get, "/system/processes", "convox:rack:read", NoMfa, false, "rack.processes"),
    env(row(Get, "/system/releases", "convox:rack:read", NoMfa, false, "rack.releases")),
];

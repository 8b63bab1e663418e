//! Walks every row of the Convox route allow-list against every role.
//!
//! The expectations below are written out by hand from the reference (§2.2 role matrix and §2.5
//! route table) and the spec (auditor = viewer's read-only Convox permissions +
//! `gateway:audit_log:read`; destructive routes blocked by policy). They are deliberately NOT
//! computed from `Role::permissions()`.

use std::collections::HashSet;

use rack_gateway_core::rbac::{explain, Access, Outcome, Policy, Role};
use rack_gateway_core::routes::{MfaLevel, RouteMethod, RouteTable, CONVOX_ROUTES};

/// Expected outcome per role, one character each, in the order
/// viewer, ops, deployer, cicd, admin, auditor:
/// `Y` allowed, `-` denied (403), `P` denied by the destructive-action policy (403, allowed
/// once `allow_destructive_actions` is on).
const ROLE_ORDER: [Role; 6] = [
    Role::Viewer,
    Role::Ops,
    Role::Deployer,
    Role::Cicd,
    Role::Admin,
    Role::Auditor,
];

use MfaLevel::{Always as A, None as N, StepUp as S};
use RouteMethod::{Delete as DELETE, Get as GET, Post as POST, Put as PUT, Socket as SOCKET};

/// One hand-written row: method, example path, the pattern it must match, permission, MFA,
/// approval-gated, mutating, destructive, expected outcomes (viewer ops deployer cicd admin auditor).
type Row = (
    RouteMethod,
    &'static str,
    &'static str,
    &'static str,
    MfaLevel,
    bool,
    bool,
    bool,
    &'static str,
);

#[rustfmt::skip]
const EXPECTED: &[Row] = &[
    // method  example path                                 pattern                                       permission                 mfa DA     mut    destr  V O D C A Au
    (GET,    "/apps/web/processes",                       "/apps/{app}/processes",                       "convox:process:list",      N, false, false, false, "YYYYYY"),
    (GET,    "/apps/web/processes/web-1a2b",              "/apps/{app}/processes/{pid}",                 "convox:process:read",      N, false, false, false, "YYYYYY"),
    (DELETE, "/apps/web/processes/web-1a2b",              "/apps/{app}/processes/{pid}",                 "convox:process:terminate", S, true,  true,  false, "-YY-Y-"),
    (SOCKET, "/apps/web/processes/p-1/exec",              "/apps/{app}/processes/{pid}/exec",            "convox:process:exec",      S, true,  true,  false, "-YY-Y-"),
    (GET,    "/apps/web/processes/p-1/exec",              "/apps/{app}/processes/{pid}/exec",            "convox:process:exec",      S, true,  true,  false, "-YY-Y-"),
    (POST,   "/apps/web/services/worker/processes",       "/apps/{app}/services/{service}/processes",    "convox:process:start",     S, true,  true,  false, "-YY-Y-"),
    (SOCKET, "/apps/web/processes/p-1/logs",              "/apps/{app}/processes/{pid}/logs",            "convox:log:read",          N, false, false, false, "YYY-YY"),
    (GET,    "/apps/web/processes/p-1/logs",              "/apps/{app}/processes/{pid}/logs",            "convox:log:read",          N, false, false, false, "YYY-YY"),
    (SOCKET, "/apps/web/builds/BABCDEF/logs",             "/apps/{app}/builds/{id}/logs",                "convox:log:read",          N, true,  false, false, "YYY-YY"),
    (GET,    "/apps/web/builds/BABCDEF/logs",             "/apps/{app}/builds/{id}/logs",                "convox:log:read",          N, true,  false, false, "YYY-YY"),
    (SOCKET, "/apps/web/logs",                            "/apps/{app}/logs",                            "convox:log:read",          N, false, false, false, "YYY-YY"),
    (GET,    "/apps/web/logs",                            "/apps/{app}/logs",                            "convox:log:read",          N, false, false, false, "YYY-YY"),
    (SOCKET, "/system/logs",                              "/system/logs",                                "convox:log:read",          N, false, false, false, "YYY-YY"),
    (GET,    "/system/logs",                              "/system/logs",                                "convox:log:read",          N, false, false, false, "YYY-YY"),
    (GET,    "/apps/web/builds",                          "/apps/{app}/builds",                          "convox:build:list",        N, false, false, false, "YYY-YY"),
    (GET,    "/apps/web/builds/BABCDEF.tgz",              "/apps/{app}/builds/{id}.tgz",                 "convox:build:read",        N, true,  false, false, "YYY-YY"),
    (GET,    "/apps/web/builds/BABCDEF",                  "/apps/{app}/builds/{id}",                     "convox:build:read",        N, true,  false, false, "YYY-YY"),
    (POST,   "/apps/web/builds",                          "/apps/{app}/builds",                          "convox:build:create",      S, true,  true,  false, "--Y-Y-"),
    (POST,   "/apps/web/builds/import",                   "/apps/{app}/builds/import",                   "convox:build:create",      S, true,  true,  false, "--Y-Y-"),
    (PUT,    "/apps/web/builds/BABCDEF",                  "/apps/{app}/builds/{id}",                     "convox:build:update",      N, false, true,  false, "----Y-"),
    (GET,    "/apps/web/releases",                        "/apps/{app}/releases",                        "convox:release:list",      N, false, false, false, "-YY-Y-"),
    (GET,    "/apps/web/releases/RABCDEF",                "/apps/{app}/releases/{id}",                   "convox:release:read",      N, true,  false, false, "--Y-Y-"),
    (POST,   "/apps/web/releases",                        "/apps/{app}/releases",                        "convox:release:create",    S, false, true,  false, "--Y-Y-"),
    (POST,   "/apps/web/releases/RABCDEF/promote",        "/apps/{app}/releases/{id}/promote",           "convox:release:promote",   S, true,  true,  false, "--Y-Y-"),
    (POST,   "/apps/web/objects/tmp/upload-1.tgz",        "/apps/{app}/objects/tmp/{name}",              "convox:object:create",     N, true,  true,  false, "--Y-Y-"),
    (GET,    "/apps",                                     "/apps",                                       "convox:app:list",          N, false, false, false, "YYYYYY"),
    (GET,    "/apps/web",                                 "/apps/{name}",                                "convox:app:read",          N, false, false, false, "YYYYYY"),
    (POST,   "/apps",                                     "/apps",                                       "convox:app:create",        S, false, true,  false, "----Y-"),
    (PUT,    "/apps/web",                                 "/apps/{name}",                                "convox:app:update",        S, false, true,  false, "--Y-Y-"),
    (POST,   "/apps/web/restart",                         "/apps/{app}/restart",                         "convox:app:restart",       S, false, true,  false, "-YY-Y-"),
    (DELETE, "/apps/web",                                 "/apps/{name}",                                "convox:app:delete",        A, false, true,  true,  "----P-"),
    (PUT,    "/apps/web/services/worker",                 "/apps/{app}/services/{name}",                 "convox:app:update",        S, false, true,  false, "--Y-Y-"),
    (GET,    "/apps/web/services",                        "/apps/{app}/services",                        "convox:app:read",          N, false, false, false, "YYYYYY"),
    (POST,   "/apps/web/services/worker/restart",         "/apps/{app}/services/{service}/restart",      "convox:process:start",     S, true,  true,  false, "-YY-Y-"),
    (GET,    "/instances",                                "/instances",                                  "convox:instance:list",     N, false, false, false, "YYYYYY"),
    (GET,    "/instances/i-0abc123",                      "/instances/{id}",                             "convox:instance:read",     N, false, false, false, "YYYYYY"),
    (GET,    "/system",                                   "/system",                                     "convox:rack:read",         N, false, false, false, "YYYYYY"),
    (PUT,    "/system",                                   "/system",                                     "convox:rack:update",       S, false, true,  false, "----Y-"),
    (GET,    "/system/capacity",                          "/system/capacity",                            "convox:rack:read",         N, false, false, false, "YYYYYY"),
    (GET,    "/system/metrics",                           "/system/metrics",                             "convox:rack:read",         N, false, false, false, "YYYYYY"),
    (GET,    "/system/processes",                         "/system/processes",                           "convox:rack:read",         N, false, false, false, "YYYYYY"),
    (GET,    "/system/releases",                          "/system/releases",                            "convox:rack:read",         N, false, false, false, "YYYYYY"),
];

/// The HTTP method and websocket flag that produce `method`.
fn request_of(method: RouteMethod) -> (&'static str, bool) {
    match method {
        RouteMethod::Socket => ("GET", true),
        other => (other.as_str(), false),
    }
}

#[test]
fn expectation_table_covers_every_route_exactly_once() {
    assert_eq!(
        EXPECTED.len(),
        CONVOX_ROUTES.len(),
        "the expectation table must have one row per CONVOX_ROUTES row"
    );
    assert_eq!(
        CONVOX_ROUTES.len(),
        42,
        "row count changed: update EXPECTED by hand"
    );
    let mut seen = HashSet::new();
    for (method, path, pattern, ..) in EXPECTED {
        let (http, websocket) = request_of(*method);
        let matched = RouteTable::global()
            .classify(http, websocket, path)
            .unwrap_or_else(|e| panic!("{http} {path}: {e}"));
        assert_eq!(matched.route.method, *method, "{path}");
        assert_eq!(
            matched.route.pattern,
            *pattern,
            "{} {path}",
            method.as_str()
        );
        let index = CONVOX_ROUTES
            .iter()
            .position(|r| *matched.route == r.into())
            .unwrap_or_else(|| panic!("{path} matched a row outside CONVOX_ROUTES"));
        assert!(seen.insert(index), "row {index} ({pattern}) covered twice");
    }
    assert_eq!(seen.len(), CONVOX_ROUTES.len(), "some rows are not covered");
}

#[test]
fn every_row_has_the_reference_permission_mfa_and_flags() {
    for (method, path, pattern, permission, mfa, gated, mutating, destructive, _) in EXPECTED {
        let (http, websocket) = request_of(*method);
        let route = RouteTable::global()
            .classify(http, websocket, path)
            .unwrap_or_else(|e| panic!("{http} {path}: {e}"))
            .route;
        let what = format!("{} {pattern}", method.as_str());
        assert_eq!(route.permission, *permission, "{what}: permission");
        assert_eq!(route.mfa, *mfa, "{what}: MFA level");
        assert_eq!(route.approval_gated, *gated, "{what}: approval gating (DA)");
        assert_eq!(route.mutating, *mutating, "{what}: mutating");
        assert_eq!(route.destructive, *destructive, "{what}: destructive");
    }
}

#[test]
fn every_route_against_every_role() {
    let default_policy = Policy::default();
    let permissive = Policy {
        allow_destructive_actions: true,
    };
    let mut checked = 0;
    for (method, path, _, permission, _, gated, _, _, outcomes) in EXPECTED {
        assert_eq!(
            outcomes.len(),
            ROLE_ORDER.len(),
            "{path}: outcome column count"
        );
        let (http, websocket) = request_of(*method);
        for (role, expected) in ROLE_ORDER.iter().zip(outcomes.chars()) {
            let roles = [*role];
            let access = Access::Roles(&roles);
            let verdict = explain(&access, &default_policy, http, websocket, path);
            let what = format!("{role} {} {path}", method.as_str());
            assert!(!verdict.reason.contains('\n'), "{what}: reason is one line");
            match expected {
                'Y' => {
                    assert_eq!(
                        verdict.outcome,
                        Outcome::Allow,
                        "{what}: {}",
                        verdict.reason
                    );
                    assert_eq!(verdict.status, 200, "{what}");
                    assert!(
                        verdict.reason.contains(permission),
                        "{what}: {}",
                        verdict.reason
                    );
                }
                '-' => {
                    assert_eq!(verdict.outcome, Outcome::Deny, "{what}: {}", verdict.reason);
                    assert_eq!(verdict.status, 403, "{what}");
                    assert!(
                        verdict.reason.contains(permission),
                        "{what}: {}",
                        verdict.reason
                    );
                    // The cicd role holds deploy_with_approval: gated routes say so.
                    let mentions_approval = verdict.reason.contains("approv");
                    assert_eq!(
                        mentions_approval,
                        *role == Role::Cicd && *gated,
                        "{what}: {}",
                        verdict.reason
                    );
                    // A policy switch never grants a missing permission.
                    assert!(!explain(&access, &permissive, http, websocket, path).is_allowed());
                }
                'P' => {
                    assert_eq!(verdict.outcome, Outcome::Deny, "{what}: {}", verdict.reason);
                    assert_eq!(verdict.status, 403, "{what}");
                    assert!(
                        verdict.reason.contains("disabled by policy"),
                        "{what}: {}",
                        verdict.reason
                    );
                    let allowed = explain(&access, &permissive, http, websocket, path);
                    assert!(
                        allowed.is_allowed(),
                        "{what} with allow_destructive_actions"
                    );
                }
                other => panic!("bad expectation {other:?} for {what}"),
            }
            let matched = verdict.route.unwrap_or_else(|| panic!("{what}: no route"));
            assert_eq!(matched.route.permission, *permission, "{what}");
            checked += 1;
        }
    }
    assert_eq!(checked, CONVOX_ROUTES.len() * ROLE_ORDER.len());
}

#[test]
fn tokens_holding_a_role_list_decide_like_the_role() {
    // The same walk for API tokens carrying the permission strings written out for two roles
    // (hand-written here, not taken from Role::permissions()).
    let viewer_token: Vec<_> = [
        "convox:app:list",
        "convox:app:read",
        "convox:process:list",
        "convox:process:read",
        "convox:instance:list",
        "convox:instance:read",
        "convox:log:read",
        "convox:build:list",
        "convox:build:read",
        "convox:rack:read",
    ]
    .iter()
    .map(|p| p.parse().unwrap())
    .collect();
    let cicd_token: Vec<_> = [
        "convox:app:list",
        "convox:app:read",
        "convox:process:list",
        "convox:process:read",
        "convox:instance:list",
        "convox:instance:read",
        "convox:rack:read",
        "gateway:deploy_approval_request:create",
        "gateway:deploy_approval_request:read",
        "convox:deploy:deploy_with_approval",
    ]
    .iter()
    .map(|p| p.parse().unwrap())
    .collect();
    for (method, path, _, _, _, gated, _, _, outcomes) in EXPECTED {
        let (http, websocket) = request_of(*method);
        let bytes = outcomes.as_bytes();
        for (token, column, is_cicd) in [(&viewer_token, 0, false), (&cicd_token, 3, true)] {
            let access = Access::Permissions(token);
            let verdict = explain(&access, &Policy::default(), http, websocket, path);
            let what = format!("token column {column} {} {path}", method.as_str());
            assert_eq!(
                verdict.is_allowed(),
                bytes[column] == b'Y',
                "{what}: {}",
                verdict.reason
            );
            if !verdict.is_allowed() {
                assert_eq!(
                    verdict.reason.contains("approv"),
                    is_cicd && *gated,
                    "{what}: {}",
                    verdict.reason
                );
                assert_eq!(
                    verdict.approval_may_allow(&access),
                    is_cicd && *gated,
                    "{what}"
                );
            }
        }
    }
}

//! `explain`: 404 outside the allow-list, 400 for ambiguous paths, policy, tokens and reasons.

use rack_gateway_core::rbac::{
    explain, Access, Outcome, Permission, Policy, Role, Verdict, DEPLOY_WITH_APPROVAL,
};

fn as_role(role: Role, method: &str, websocket: bool, path: &str) -> Verdict {
    let roles = [role];
    explain(
        &Access::Roles(&roles),
        &Policy::default(),
        method,
        websocket,
        path,
    )
}

fn perms(list: &[&str]) -> Vec<Permission> {
    list.iter().map(|p| Permission::parse(p).unwrap()).collect()
}

fn assert_one_line(verdict: &Verdict) {
    assert!(!verdict.reason.is_empty());
    assert!(
        !verdict.reason.contains(['\n', '\r']),
        "reason must be one line: {:?}",
        verdict.reason
    );
}

#[test]
fn routes_outside_the_allow_list_are_404_even_for_admin() {
    let cases: &[(&str, bool, &str)] = &[
        ("GET", false, "/racks"),
        ("GET", false, "/apps/web/environment"),
        ("POST", false, "/apps/web/environment"),
        ("GET", false, "/apps/web/resources"),
        ("GET", false, "/resources"),
        ("GET", false, "/certificates"),
        ("GET", false, "/registries"),
        ("GET", false, "/apps/web/objects/tmp/x.tgz"),
        ("POST", false, "/apps/web/cancel"),
        ("POST", false, "/instances/i-1/keyroll"),
        ("DELETE", false, "/instances/i-1"),
        ("SOCKET", false, "/instances/i-1/shell"),
        ("GET", true, "/instances/i-1/shell"),
        ("OPTIONS", false, "/apps"),
        ("HEAD", false, "/apps"),
        ("PATCH", false, "/apps/web"),
        ("TRACE", false, "/apps"),
        ("get", false, "/apps"),
        ("DELETE", false, "/apps"),
        ("PUT", false, "/apps/web/processes/p-1"),
        ("POST", false, "/system/logs"),
        // Websocket upgrades on routes that are not SOCKET rows.
        ("GET", true, "/apps"),
        ("GET", true, "/apps/web/processes"),
        ("GET", true, "/apps/web/builds/B1"),
        // A websocket upgrade must be a GET; CONNECT (HTTP/1.1, or HTTP/2 extended CONNECT,
        // which the gateway does not accept) never matches, with or without upgrade headers.
        ("POST", true, "/apps/web/processes/p-1/exec"),
        ("CONNECT", true, "/apps/web/processes/p-1/logs"),
        ("CONNECT", true, "/apps/web/logs"),
        ("CONNECT", false, "/apps/web/logs"),
        // Not rewritten: a trailing slash or a missing leading segment just matches nothing.
        ("GET", false, "/apps/"),
        ("GET", false, "/"),
        ("GET", false, ""),
        ("GET", false, "/apps/web/processes/p-1/exec/more"),
    ];
    for (method, websocket, path) in cases {
        let verdict = as_role(Role::Admin, method, *websocket, path);
        assert_eq!(
            verdict.outcome,
            Outcome::NotFound,
            "{method} {path}: {}",
            verdict.reason
        );
        assert_eq!(verdict.status, 404, "{method} {path}");
        assert!(verdict.route.is_none());
        assert!(verdict.reason.contains("not allowed"), "{}", verdict.reason);
        assert_one_line(&verdict);
    }
    let socket = as_role(Role::Admin, "GET", true, "/apps");
    assert!(socket.reason.contains("SOCKET"), "{}", socket.reason);
}

#[test]
fn websocket_rows_need_the_upgrade_flag() {
    let socket = as_role(Role::Ops, "GET", true, "/apps/web/processes/p-1/exec");
    assert!(socket.is_allowed(), "{}", socket.reason);
    assert_eq!(socket.route.unwrap().route.method.as_str(), "SOCKET");
    let connect = as_role(Role::Ops, "CONNECT", true, "/apps/web/logs");
    assert_eq!(connect.outcome, Outcome::NotFound, "{}", connect.reason);
    let plain = as_role(Role::Ops, "GET", false, "/apps/web/processes/p-1/exec");
    assert_eq!(plain.route.unwrap().route.method.as_str(), "GET");
}

#[test]
fn ambiguous_paths_are_400_before_anything_else() {
    let cases = [
        "/apps/../system",
        "/apps/web/../../system",
        "/apps/./web",
        "/apps/%2e%2e/x",
        "/apps/%2E%2E/system",
        "/apps/.%2e/system",
        "/apps//x",
        "//apps",
        "/apps/web/processes//exec",
        "/apps\\x",
        "/apps/%5cx",
        "/apps/%5Cx",
        "/apps/web%2Fprocesses",
        "/apps/web%2fprocesses",
        "/apps/%00",
        "/apps/web\0",
        "/apps/web\n/processes",
        "/apps/web\r\nX-Injected: 1",
        "/apps/web\t",
        "/apps/%41pp",
        "/apps/%252e%252e/system",
        "/apps/%",
        "/apps/%zz",
        "/apps/wéb",
        "/apps/web app",
        "apps",
        "/apps?x=1",
    ];
    for path in cases {
        for (role, method) in [
            (Role::Admin, "GET"),
            (Role::Viewer, "DELETE"),
            (Role::Admin, "PATCH"),
        ] {
            let verdict = as_role(role, method, false, path);
            assert_eq!(
                verdict.outcome,
                Outcome::BadRequest,
                "{path:?}: {}",
                verdict.reason
            );
            assert_eq!(verdict.status, 400, "{path:?}");
            assert!(verdict.route.is_none());
            assert!(
                verdict.reason.starts_with("bad request path"),
                "{}",
                verdict.reason
            );
            assert_one_line(&verdict);
        }
    }
}

#[test]
fn deleting_an_app_is_disabled_by_policy_even_for_admin() {
    let verdict = as_role(Role::Admin, "DELETE", false, "/apps/web");
    assert_eq!(verdict.outcome, Outcome::Deny);
    assert_eq!(verdict.status, 403);
    assert!(
        verdict.reason.contains("disabled by policy"),
        "{}",
        verdict.reason
    );
    assert_one_line(&verdict);

    let token = perms(&["convox:*:*"]);
    let verdict = explain(
        &Access::Permissions(&token),
        &Policy::default(),
        "DELETE",
        false,
        "/apps/web",
    );
    assert!(
        verdict.reason.contains("disabled by policy"),
        "{}",
        verdict.reason
    );

    let allow = Policy {
        allow_destructive_actions: true,
    };
    let roles = [Role::Admin];
    let verdict = explain(&Access::Roles(&roles), &allow, "DELETE", false, "/apps/web");
    assert!(verdict.is_allowed(), "{}", verdict.reason);
    let route = verdict.route.unwrap();
    assert!(route.route.destructive);
    assert_eq!(route.app.as_deref(), Some("web"));

    // The policy never hands the permission to someone without it: that is a plain denial.
    let roles = [Role::Deployer];
    let verdict = explain(&Access::Roles(&roles), &allow, "DELETE", false, "/apps/web");
    assert_eq!(verdict.status, 403);
    assert!(
        verdict.reason.contains("convox:app:delete"),
        "{}",
        verdict.reason
    );
    assert!(!verdict.reason.contains("policy"), "{}", verdict.reason);

    // Terminating a process is a DELETE but not destructive.
    let verdict = as_role(Role::Admin, "DELETE", false, "/apps/web/processes/p-1");
    assert!(verdict.is_allowed(), "{}", verdict.reason);
}

#[test]
fn tokens_act_with_their_own_permission_list_and_wildcards() {
    let token = perms(&["convox:app:*", "convox:process:list"]);
    let access = Access::Permissions(&token);
    let policy = Policy::default();
    let check = |method: &str, path: &str| explain(&access, &policy, method, false, path);

    for (method, path) in [
        ("GET", "/apps"),
        ("GET", "/apps/web"),
        ("POST", "/apps"),
        ("PUT", "/apps/web"),
        ("POST", "/apps/web/restart"),
        ("PUT", "/apps/web/services/worker"),
        ("GET", "/apps/web/services"),
        ("GET", "/apps/web/processes"),
    ] {
        let verdict = check(method, path);
        assert!(verdict.is_allowed(), "{method} {path}: {}", verdict.reason);
        assert!(
            verdict.reason.contains("token permission"),
            "{}",
            verdict.reason
        );
    }
    let verdict = check("GET", "/apps/web");
    assert!(
        verdict.reason.contains("convox:app:*"),
        "{}",
        verdict.reason
    );

    for (method, path) in [
        ("GET", "/apps/web/processes/p-1"),
        ("GET", "/apps/web/builds"),
        ("GET", "/system"),
        ("POST", "/apps/web/builds"),
    ] {
        let verdict = check(method, path);
        assert_eq!(verdict.status, 403, "{method} {path}");
        assert!(verdict.reason.contains("token"), "{}", verdict.reason);
        assert_one_line(&verdict);
    }
    // app:* covers app:delete, so only the policy stops it.
    assert!(check("DELETE", "/apps/web")
        .reason
        .contains("disabled by policy"));

    // Full wildcards.
    for everything in ["convox:*:*", "*:*:*"] {
        let token = perms(&[everything]);
        let verdict = explain(
            &Access::Permissions(&token),
            &policy,
            "PUT",
            false,
            "/system",
        );
        assert!(verdict.is_allowed(), "{everything}: {}", verdict.reason);
    }
    // A wildcard in another scope grants nothing here.
    let token = perms(&["gateway:*:*"]);
    let verdict = explain(&Access::Permissions(&token), &policy, "GET", false, "/apps");
    assert_eq!(verdict.status, 403);

    // The empty list and no credential grant nothing.
    let verdict = explain(&Access::Permissions(&[]), &policy, "GET", false, "/apps");
    assert_eq!(verdict.status, 403);
    let verdict = explain(&Access::None, &policy, "GET", false, "/apps");
    assert_eq!(verdict.status, 403);
    assert_one_line(&verdict);
}

#[test]
fn cicd_on_an_approval_gated_route_is_denied_with_an_approval_reason() {
    let token = perms(&[
        "convox:app:list",
        "convox:app:read",
        DEPLOY_WITH_APPROVAL,
        "gateway:deploy_approval_request:create",
    ]);
    let access = Access::Permissions(&token);
    let policy = Policy::default();
    for (method, websocket, path) in [
        ("POST", false, "/apps/web/objects/tmp/upload.tgz"),
        ("POST", false, "/apps/web/builds"),
        ("GET", false, "/apps/web/builds/BABC"),
        ("GET", true, "/apps/web/builds/BABC/logs"),
        ("POST", false, "/apps/web/releases/RABC/promote"),
        ("GET", true, "/apps/web/processes/p-1/exec"),
    ] {
        let verdict = explain(&access, &policy, method, websocket, path);
        assert_eq!(verdict.outcome, Outcome::Deny, "{method} {path}");
        assert_eq!(verdict.status, 403);
        assert!(verdict.reason.contains("approv"), "{}", verdict.reason);
        assert!(verdict.reason.contains("app web"), "{}", verdict.reason);
        assert!(verdict.approval_may_allow(&access));
        assert_one_line(&verdict);
    }
    // Not approval-gated: a plain denial, which no approval can lift.
    for (method, path) in [
        ("POST", "/apps/web/releases"),
        ("POST", "/apps/web/restart"),
    ] {
        let verdict = explain(&access, &policy, method, false, path);
        assert_eq!(verdict.status, 403);
        assert!(!verdict.reason.contains("approv"), "{}", verdict.reason);
        assert!(!verdict.approval_may_allow(&access));
    }
    // The cicd role, as `rbac explain --role cicd` shows it, gets the same reason.
    let verdict = as_role(Role::Cicd, "POST", false, "/apps/web/builds");
    assert_eq!(verdict.status, 403);
    assert!(verdict.reason.contains("approv"), "{}", verdict.reason);
    // Without deploy_with_approval a gated route is a plain denial.
    let verdict = as_role(Role::Viewer, "POST", false, "/apps/web/builds");
    assert!(!verdict.reason.contains("approv"), "{}", verdict.reason);
}

#[test]
fn auditor_reads_like_a_viewer_and_changes_nothing() {
    assert!(Role::Auditor.grants("gateway:audit_log:read"));
    assert!(!Role::Viewer.grants("gateway:audit_log:read"));
    assert!(!Role::Auditor.grants("gateway:user:update"));
    for (method, path) in [
        ("POST", "/apps/web/restart"),
        ("PUT", "/apps/web/services/web"),
        ("POST", "/apps/web/services/web/processes"),
        ("DELETE", "/apps/web/processes/p-1"),
    ] {
        assert_eq!(
            as_role(Role::Auditor, method, false, path).status,
            403,
            "{path}"
        );
    }
}

#[test]
fn multiple_roles_grant_the_union() {
    let roles = [Role::Auditor, Role::Ops];
    let verdict = explain(
        &Access::Roles(&roles),
        &Policy::default(),
        "POST",
        false,
        "/apps/web/restart",
    );
    assert!(verdict.is_allowed());
    assert!(verdict.reason.contains("role ops"), "{}", verdict.reason);
    let verdict = explain(
        &Access::Roles(&[]),
        &Policy::default(),
        "GET",
        false,
        "/apps",
    );
    assert_eq!(verdict.status, 403);
    assert!(verdict.reason.contains("no roles"), "{}", verdict.reason);
}

#[test]
fn reasons_stay_one_line_for_hostile_methods() {
    for method in [
        "GET\r\nX: y",
        "G\u{e9}T",
        "",
        "A-VERY-LONG-METHOD-NAME-INDEED",
    ] {
        let verdict = as_role(Role::Admin, method, false, "/apps");
        assert_eq!(verdict.status, 404);
        assert_one_line(&verdict);
        assert!(!verdict.reason.contains('\u{e9}'), "{}", verdict.reason);
    }
    let long = format!("/apps/web/{}", "a".repeat(5000));
    let verdict = as_role(Role::Admin, "GET", false, &long);
    assert_eq!(verdict.status, 404);
    assert!(verdict.reason.len() < 400, "reason is capped");
}

//! The allow-list as data: well-formed patterns, no shadowed rows, params and app extraction.

use std::collections::HashSet;

use rack_gateway_core::routes::{
    check_path, MfaLevel, RouteError, RouteMethod, RouteTable, CONVOX_ROUTES,
};

/// An example path for a pattern: every `{param}` becomes `x<n>`.
fn example(pattern: &str) -> String {
    let mut n = 0;
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix('{') {
            Some(rest) => {
                n += 1;
                let suffix = rest.split_once('}').map(|(_, s)| s).unwrap_or("");
                format!("x{n}{suffix}")
            }
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn request_of(method: RouteMethod) -> (&'static str, bool) {
    match method {
        RouteMethod::Socket => ("GET", true),
        other => (other.as_str(), false),
    }
}

#[test]
fn patterns_are_well_formed_and_unique() {
    let mut seen = HashSet::new();
    for route in CONVOX_ROUTES {
        assert!(route.pattern.starts_with('/'), "{}", route.pattern);
        assert!(!route.pattern.ends_with('/'), "{}", route.pattern);
        for segment in route.pattern.split('/').skip(1) {
            assert!(!segment.is_empty(), "{}", route.pattern);
            if segment.contains('{') || segment.contains('}') {
                let name = segment
                    .strip_prefix('{')
                    .and_then(|s| s.split_once('}'))
                    .map(|(name, _)| name)
                    .unwrap_or_else(|| panic!("bad parameter segment in {}", route.pattern));
                assert!(
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase()),
                    "{}",
                    route.pattern
                );
            }
        }
        assert!(
            seen.insert((route.method, route.pattern)),
            "duplicate row {} {}",
            route.method.as_str(),
            route.pattern
        );
        assert!(
            route.permission.starts_with("convox:"),
            "{}",
            route.permission
        );
        assert_eq!(
            route.permission.split(':').count(),
            3,
            "{}",
            route.permission
        );
        let (resource, action) = route.action.split_once('.').unwrap();
        assert!(
            !resource.is_empty() && !action.is_empty(),
            "{}",
            route.action
        );
        assert!(
            check_path(&example(route.pattern)).is_ok(),
            "{}",
            route.pattern
        );
    }
}

#[test]
fn no_row_is_shadowed_by_an_earlier_one() {
    for (index, route) in CONVOX_ROUTES.iter().enumerate() {
        let path = example(route.pattern);
        let (method, websocket) = request_of(route.method);
        let matched = RouteTable::global()
            .classify(method, websocket, &path)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            *matched.route == CONVOX_ROUTES[index].into(),
            "{} {} is reached as {} {}",
            route.method.as_str(),
            route.pattern,
            matched.route.method.as_str(),
            matched.route.pattern
        );
    }
}

#[test]
fn flags_follow_the_rules() {
    for route in CONVOX_ROUTES {
        let what = format!("{} {}", route.method.as_str(), route.pattern);
        let writes = matches!(
            route.method,
            RouteMethod::Post | RouteMethod::Put | RouteMethod::Delete
        );
        let exec = route.permission == "convox:process:exec";
        assert_eq!(route.mutating, writes || exec, "{what}: mutating");
        if route.permission == "convox:log:read" {
            assert!(!route.mutating, "{what}: log streams do not mutate");
        }
        let delete_app = route.method == RouteMethod::Delete && route.pattern == "/apps/{name}";
        assert_eq!(route.destructive, delete_app, "{what}: destructive");
        if delete_app {
            assert_eq!(route.mfa, MfaLevel::Always, "{what}");
        }
        if route.method == RouteMethod::Socket {
            assert!(
                route.pattern.ends_with("/exec") || route.pattern.ends_with("/logs"),
                "{what}: only exec and log streams are websockets"
            );
        }
    }
    assert_eq!(CONVOX_ROUTES.iter().filter(|r| r.destructive).count(), 1);
    assert_eq!(
        CONVOX_ROUTES
            .iter()
            .filter(|r| r.method == RouteMethod::Socket)
            .count(),
        5
    );
}

#[test]
fn tgz_export_is_matched_before_the_plain_id() {
    let table = RouteTable::global();
    let tgz = table
        .classify("GET", false, "/apps/web/builds/BABC.tgz")
        .unwrap();
    assert_eq!(tgz.route.pattern, "/apps/{app}/builds/{id}.tgz");
    assert_eq!(tgz.param("id"), Some("BABC"));
    assert_eq!(tgz.param("app"), Some("web"));

    let plain = table
        .classify("GET", false, "/apps/web/builds/BABC")
        .unwrap();
    assert_eq!(plain.route.pattern, "/apps/{app}/builds/{id}");
    assert_eq!(plain.param("id"), Some("BABC"));

    // `.tgz` alone has no id before the suffix: it is an ordinary id.
    let bare = table
        .classify("GET", false, "/apps/web/builds/.tgz")
        .unwrap();
    assert_eq!(bare.route.pattern, "/apps/{app}/builds/{id}");
    assert_eq!(bare.param("id"), Some(".tgz"));

    // PUT has no .tgz row.
    let put = table
        .classify("PUT", false, "/apps/web/builds/BABC.tgz")
        .unwrap();
    assert_eq!(put.param("id"), Some("BABC.tgz"));
}

#[test]
fn params_and_app_are_extracted() {
    let table = RouteTable::global();
    let exec = table
        .classify("GET", true, "/apps/web/processes/web-1a2b/exec")
        .unwrap();
    assert_eq!(exec.app.as_deref(), Some("web"));
    let params: Vec<(&str, &str)> = exec
        .params
        .iter()
        .map(|(name, value)| (&**name, value.as_str()))
        .collect();
    assert_eq!(params, [("app", "web"), ("pid", "web-1a2b")]);
    assert_eq!(exec.param("pid"), Some("web-1a2b"));
    assert_eq!(exec.param("nope"), None);

    for (method, path) in [
        ("GET", "/apps/web"),
        ("PUT", "/apps/web"),
        ("DELETE", "/apps/web"),
    ] {
        let matched = table.classify(method, false, path).unwrap();
        assert_eq!(matched.route.pattern, "/apps/{name}");
        assert_eq!(matched.app.as_deref(), Some("web"), "{method} {path}");
        assert_eq!(matched.param("name"), Some("web"));
    }

    let scale = table
        .classify("PUT", false, "/apps/web/services/worker")
        .unwrap();
    assert_eq!(scale.app.as_deref(), Some("web"));
    assert_eq!(scale.param("name"), Some("worker"));

    let object = table
        .classify("POST", false, "/apps/web/objects/tmp/up.tgz")
        .unwrap();
    assert_eq!(object.app.as_deref(), Some("web"));
    assert_eq!(object.param("name"), Some("up.tgz"));

    for (method, path) in [
        ("GET", "/apps"),
        ("POST", "/apps"),
        ("GET", "/system"),
        ("GET", "/instances/i-1"),
    ] {
        assert_eq!(
            table.classify(method, false, path).unwrap().app,
            None,
            "{path}"
        );
    }
}

#[test]
fn classify_errors() {
    let table = RouteTable::global();
    assert_eq!(
        table.classify("GET", false, "/racks"),
        Err(RouteError::NotFound)
    );
    assert_eq!(
        table.classify("PATCH", false, "/apps/web"),
        Err(RouteError::NotFound)
    );
    assert!(matches!(
        table.classify("GET", false, "/apps/../system"),
        Err(RouteError::BadPath(_))
    ));
    assert!(RouteError::NotFound.to_string().contains("not allowed"));
}

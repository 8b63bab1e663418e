//! Properties: normalisation, classification and `explain` never panic, and ambiguous paths
//! (`..` segments, `//`) never reach a route.

use proptest::prelude::*;
use rack_gateway_core::rbac::{explain, Access, Outcome, Permission, Policy, Role};
use rack_gateway_core::routes::{check_path, RouteError, RouteTable};

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "get", "",
];

/// Paths built from route-like pieces, so that many of them come close to real routes.
fn route_like_path() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "apps",
        "web",
        "processes",
        "p-1",
        "exec",
        "logs",
        "builds",
        "B1.tgz",
        "releases",
        "promote",
        "services",
        "restart",
        "objects",
        "tmp",
        "system",
        "instances",
        "",
        ".",
        "..",
        "%2e",
        "%2F",
        "%5c",
        "\\",
        "é",
        "%41",
        "\u{0}",
    ]);
    prop::collection::vec(piece, 0..8).prop_map(|pieces| format!("/{}", pieces.join("/")))
}

fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "/[ -~]{0,40}", route_like_path()]
}

fn roles() -> impl Strategy<Value = Vec<Role>> {
    prop::collection::vec(prop::sample::select(Role::ALL.to_vec()), 0..3)
}

proptest! {
    #[test]
    fn nothing_panics_on_arbitrary_input(
        path in any_path(),
        method in prop_oneof![prop::sample::select(METHODS).prop_map(str::to_owned), any::<String>()],
        websocket in any::<bool>(),
        roles in roles(),
        destructive in any::<bool>(),
    ) {
        if let Ok(normal) = check_path(&path) {
            // Accepted paths are returned unchanged (or `/` for the empty path).
            prop_assert!(normal == path || (path.is_empty() && normal == "/"));
            prop_assert!(normal.is_ascii());
        }
        let classified = RouteTable::global().classify(&method, websocket, &path);
        let policy = Policy { allow_destructive_actions: destructive };
        let verdict = explain(&Access::Roles(&roles), &policy, &method, websocket, &path);
        prop_assert!(!verdict.reason.contains(['\n', '\r']));
        match classified {
            Ok(matched) => {
                prop_assert!(verdict.route.is_some());
                prop_assert_eq!(verdict.route.map(|m| m.route), Some(matched.route));
            }
            Err(RouteError::NotFound) => prop_assert_eq!(verdict.status, 404),
            Err(RouteError::BadPath(_)) => prop_assert_eq!(verdict.status, 400),
        }
        let token = [Permission::parse("convox:*:*").unwrap()];
        let _ = explain(&Access::Permissions(&token), &policy, &method, websocket, &path);
        let _ = explain(&Access::None, &policy, &method, websocket, &path);
    }

    #[test]
    fn dot_dot_segments_and_double_slashes_never_match(
        before in route_like_path(),
        after in route_like_path(),
        separator in prop::sample::select(vec!["/..", "/../", "/.", "/./", "//", "/%2e%2e/", "/%2E./"]),
        method in prop::sample::select(METHODS),
        websocket in any::<bool>(),
    ) {
        let path = format!("{before}{separator}{after}");
        prop_assert!(
            matches!(RouteTable::global().classify(method, websocket, &path), Err(RouteError::BadPath(_))),
            "{:?} was not refused", path
        );
        let roles = [Role::Admin];
        let verdict = explain(&Access::Roles(&roles), &Policy::default(), method, websocket, &path);
        prop_assert_eq!(verdict.outcome, Outcome::BadRequest);
        prop_assert_eq!(verdict.status, 400);
    }

    #[test]
    fn classified_paths_are_plain(path in any_path(), method in prop::sample::select(METHODS)) {
        if RouteTable::global().classify(method, false, &path).is_ok() {
            prop_assert!(!path.contains("//"));
            prop_assert!(!path.contains('%'));
            prop_assert!(!path.contains('\\'));
            prop_assert!(path.split('/').all(|s| s != ".." && s != "."));
        }
    }
}

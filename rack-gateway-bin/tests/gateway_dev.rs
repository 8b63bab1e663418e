//! `rack-gateway dev` end to end, over real sockets: the Convox API through the gateway to the
//! in-process mock rack, with the refusals a caller can run into.

mod common;

use bytes::Bytes;
use common::http::{basic, get, send};
use common::process::DevGateway;
use http::{Method, StatusCode};

async fn first_app(gateway: &DevGateway) -> String {
    let reply = get(&gateway.proxy("/apps"), Some(&gateway.admin_token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let apps: serde_json::Value = serde_json::from_str(&reply.body).expect("json");
    apps[0]["name"].as_str().expect("app name").to_owned()
}

#[tokio::test]
async fn tokens_roles_and_the_allow_list_decide() {
    let gateway = DevGateway::start().await;
    let app = first_app(&gateway).await;

    let reply = get(&gateway.proxy("/apps"), Some(&gateway.viewer_token)).await;
    assert_eq!(reply.status, StatusCode::OK);

    let viewer = basic(&gateway.viewer_token);
    let restart = gateway.proxy(&format!("/apps/{app}/restart"));
    let reply = send(
        Method::POST,
        &restart,
        &[("authorization", &viewer)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("convox:app:restart"), "{}", reply.body);
    assert_eq!(reply.body.trim().lines().count(), 1);

    let admin = basic(&gateway.admin_token);
    let reply = send(
        Method::POST,
        &restart,
        &[("authorization", &admin)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let reply = get(&gateway.proxy("/racks"), Some(&gateway.admin_token)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body.contains("/racks"), "{}", reply.body);

    let reply = get(&gateway.proxy("/apps"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.body.contains("missing authorization"),
        "{}",
        reply.body
    );

    // Deleting an app is disabled by policy by default, even for admins.
    let reply = send(
        Method::DELETE,
        &gateway.proxy(&format!("/apps/{app}")),
        &[("authorization", &admin)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("disabled by policy"), "{}", reply.body);
}

#[tokio::test]
async fn bad_credentials_paths_and_headers_get_clear_4xx() {
    let gateway = DevGateway::start().await;
    let unknown_token = format!("rgw_{}", "A".repeat(43));
    let bad_basic = basic(&unknown_token);
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "/apps",
            vec![("authorization", bad_basic.clone())],
            StatusCode::UNAUTHORIZED,
            "invalid API token",
        ),
        (
            "/apps",
            vec![("authorization", "Basic !!!".into())],
            StatusCode::UNAUTHORIZED,
            "invalid authorization header",
        ),
        (
            "/apps",
            vec![("authorization", "Digest x".into())],
            StatusCode::UNAUTHORIZED,
            "unsupported authorization type",
        ),
        (
            "/apps",
            vec![("authorization", "Bearer".into())],
            StatusCode::UNAUTHORIZED,
            "invalid authorization header",
        ),
        (
            "/apps",
            vec![("authorization", "Bearer not-a-token".into())],
            StatusCode::UNAUTHORIZED,
            "session",
        ),
        (
            "/apps",
            vec![("cookie", "session_token=abc".into())],
            StatusCode::UNAUTHORIZED,
            "cookies",
        ),
    ];
    for (path, headers, status, needle) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = send(Method::GET, &gateway.proxy(path), &headers, Bytes::new()).await;
        assert_eq!(reply.status, status, "{headers:?}: {}", reply.body);
        assert!(reply.body.contains(needle), "{headers:?}: {}", reply.body);
        assert!(reply.headers.contains_key("x-error-reason"));
    }

    let admin = basic(&gateway.admin_token);
    for path in [
        "/apps/../system",
        "/apps/%2e%2e/system",
        "/apps//processes",
        "/apps/web%2Fprocesses",
        "/apps/web\\processes",
        "/apps/./x",
    ] {
        let reply = send(
            Method::GET,
            &gateway.proxy(path),
            &[("authorization", &admin)],
            Bytes::new(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
    }
    for (method, path) in [
        (Method::GET, "/racks"),
        (Method::PATCH, "/apps"),
        (Method::OPTIONS, "/apps"),
        (Method::GET, "/apps/web/environment"),
    ] {
        let reply = send(
            method.clone(),
            &gateway.proxy(path),
            &[("authorization", &admin)],
            Bytes::new(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
    }

    let huge = "x".repeat(100 * 1024);
    let reply = send(
        Method::GET,
        &gateway.proxy("/apps"),
        &[("authorization", &admin), ("x-padding", &huge)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // The gateway is still healthy after all of that.
    assert_eq!(
        get(&format!("{}/api/v1/health", gateway.base), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn convox_style_form_requests_round_trip() {
    let gateway = DevGateway::start().await;
    let app = first_app(&gateway).await;
    let admin = basic(&gateway.admin_token);
    let convox_headers = [
        ("authorization", admin.as_str()),
        ("version", "3.21.3"),
        ("user-agent", "convox.go/3.21.3"),
        ("accept", "*/*"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let form = "description=from+test&env=GREETING%3Dhello%3Dworld%0ANODE_ENV%3Dproduction%0A";
    let reply = send(
        Method::POST,
        &gateway.proxy(&format!("/apps/{app}/releases")),
        &convox_headers,
        form,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let release: serde_json::Value = serde_json::from_str(&reply.body).expect("json");
    let id = release["id"].as_str().expect("release id");

    let reply = get(
        &gateway.proxy(&format!("/apps/{app}/releases/{id}?")),
        Some(&gateway.admin_token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let release: serde_json::Value = serde_json::from_str(&reply.body).expect("json");
    assert!(
        release["env"]
            .as_str()
            .expect("env")
            .contains("GREETING=hello=world"),
        "{release}"
    );

    let reply = get(
        &gateway.proxy(&format!("/apps/{app}/processes?service=web")),
        Some(&gateway.admin_token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let ready = get(&format!("{}/api/v1/health/ready", gateway.base), None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let ready: serde_json::Value = serde_json::from_str(&ready.body).expect("json");
    assert_eq!(ready["checks"]["store"]["ok"], true);
    assert_eq!(ready["checks"]["rack"]["ok"], true);
}

//! API tokens made from the operator's shell work at once and stop working within a second of
//! revocation, on every gateway process sharing one PostgreSQL database.

mod common;

use std::time::Duration;

use common::deploy::{fresh_database, gateway_env, start_gateway, start_mock_rack};
use common::http::get;
use common::process::run_command;
use http::StatusCode;
use tokio::time::Instant;

#[tokio::test]
async fn revocation_reaches_every_gateway_within_a_second() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_first, first_url) = start_gateway(&env).await;
    let (_second, second_url) = start_gateway(&env).await;

    let (code, stdout, stderr) =
        run_command(&["token", "create", "--name", "ci", "--role", "cicd"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "token create must print only the token: {stdout:?}"
    );
    let token = lines[0].trim().to_owned();
    assert!(token.starts_with("rgw_"));

    for base in [&first_url, &second_url] {
        let reply = get(&format!("{base}/api/v1/rack-proxy/apps"), Some(&token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{base}: {}", reply.body);
        // cicd may not restart apps.
        let reply = get(&format!("{base}/api/v1/rack-proxy/system"), Some(&token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{base}: {}", reply.body);
    }

    let (code, _, stderr) = run_command(&["token", "revoke", "ci"], &env).await;
    assert_eq!(code, 0, "{stderr}");
    let revoked_at = Instant::now();
    for base in [&first_url, &second_url] {
        loop {
            let reply = get(&format!("{base}/api/v1/rack-proxy/apps"), Some(&token)).await;
            if reply.status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(reply.status, StatusCode::OK);
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "{base} still accepted the token {:?} after revocation",
                revoked_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "took {:?}",
        revoked_at.elapsed()
    );

    let (code, _, stderr) = run_command(&["token", "revoke", "ci"], &env).await;
    assert_eq!(code, 1, "revoking twice must fail: {stderr}");
}

#[tokio::test]
async fn serve_refuses_bad_configuration_with_one_line() {
    let database_url = fresh_database().await;
    let mut env = gateway_env(&database_url, "http://127.0.0.1:9");
    env.insert("APP_SECRET_KEY".into(), "c2hvcnQ=".into());
    let (code, stdout, stderr) = run_command(&["serve"], &env).await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("APP_SECRET_KEY"), "{stderr}");

    env.remove("RACK_TOKEN");
    env.insert(
        "APP_SECRET_KEY".into(),
        "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M=".into(),
    );
    let (code, _, stderr) = run_command(&["serve"], &env).await;
    assert_eq!(code, 2);
    assert!(stderr.trim().starts_with("error: RACK_TOKEN"), "{stderr}");
}

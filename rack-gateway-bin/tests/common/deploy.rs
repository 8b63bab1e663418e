//! A deployment made of processes: a mock rack and `rack-gateway serve` instances on PostgreSQL.

use std::collections::HashMap;

use super::process::{last_word, run_command, Running};

/// The rack token the mock rack accepts in these tests.
pub const RACK_TOKEN: &str = "rack-secret-for-tests";

/// The audit key the gateways in these tests use.
pub const AUDIT_SECRET: &str = "an-audit-secret-for-tests-0123456789";

/// A fresh database on the server of DATABASE_URL (set by scripts/test).
pub async fn fresh_database() -> String {
    let server = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run scripts/test, which starts a throwaway PostgreSQL");
    create_database(&server).await
}

/// Creates a database on the server at `server_url` and returns its URL.
pub async fn create_database(server_url: &str) -> String {
    let (client, connection) = tokio_postgres::connect(server_url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let name = format!("rgw_e2e_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("database URL has a path");
    format!("{base}/{name}")
}

/// Starts a mock rack process; returns it and its URL.
pub async fn start_mock_rack() -> (Running, String) {
    let mut rack = Running::start(
        &[
            "mock-rack",
            "--listen",
            "127.0.0.1:0",
            "--token",
            RACK_TOKEN,
        ],
        &HashMap::from([("RUST_LOG".to_owned(), "info,mock_rack=debug".to_owned())]),
    );
    let url = last_word(&rack.wait_for_line("mock rack listening on").await);
    (rack, url)
}

/// The environment of `serve` (and of the operator commands) for this database and rack.
pub fn gateway_env(database_url: &str, rack: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("DOMAIN", "gateway.test"),
        (
            "APP_SECRET_KEY",
            "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M=",
        ),
        ("AUDIT_HMAC_SECRET", AUDIT_SECRET),
        ("RACK_HOST", rack),
        ("RACK_TOKEN", RACK_TOKEN),
        ("BIND", "127.0.0.1"),
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Starts `rack-gateway serve`; returns it and its base URL.
pub async fn start_gateway(env: &HashMap<String, String>) -> (Running, String) {
    let mut process = Running::start(&["serve"], env);
    let line = process.wait_for_line("rack-gateway serving").await;
    let log: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    let address = log["address"].as_str().expect("address field").to_owned();
    (process, format!("http://{address}"))
}

/// `rack-gateway token create --name NAME --role ROLE`; returns the token.
pub async fn create_token(env: &HashMap<String, String>, name: &str, role: &str) -> String {
    let (code, stdout, stderr) =
        run_command(&["token", "create", "--name", name, "--role", role], env).await;
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_owned()
}

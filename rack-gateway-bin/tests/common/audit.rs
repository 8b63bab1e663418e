//! Reading the audit trail in end-to-end tests: the CLI export and verify, the audit API, and
//! requests tagged with an X-Request-ID.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::http::{basic, Reply};
use super::process::run_command;

/// A pooled plain-HTTP client.
pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A new pooled client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `method url` with an API token (if any) and an X-Request-ID; reads the whole answer.
pub async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    token: Option<&str>,
    request_id: &str,
) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(url)
        .header("x-request-id", request_id);
    if let Some(token) = token {
        builder = builder.header("authorization", basic(token));
    }
    let response = client
        .request(builder.body(Full::new(Bytes::new())).expect("request"))
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The body as JSON, or a panic naming the status and body.
pub fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", reply.status, reply.body))
}

/// Asserts a 400 with a JSON `{"error": "..."}` body.
pub fn assert_json_error(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.body
    );
    let body = json_of(reply);
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: no error message in {body}"
    );
}

/// Parses JSON Lines.
pub fn parse_jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line ({e}): {line}")))
        .collect()
}

/// `rack-gateway audit export --format FORMAT [ARGS]`: its stdout.
pub async fn export_text(env: &HashMap<String, String>, format: &str, extra: &[&str]) -> String {
    let mut args = vec!["audit", "export", "--format", format];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run_command(&args, env).await;
    assert_eq!(code, 0, "audit export: {stderr}");
    stdout
}

/// Every record of the chain, oldest first, from `rack-gateway audit export`.
pub async fn exported(env: &HashMap<String, String>) -> Vec<Value> {
    parse_jsonl(&export_text(env, "jsonl", &[]).await)
}

/// Polls the export until `predicate` holds (the writer commits reads asynchronously); returns
/// the last export either way.
pub async fn exported_when(
    env: &HashMap<String, String>,
    predicate: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = exported(env).await;
        if predicate(&rows) || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The records of one request id, in chain order.
pub fn of_request<'a>(rows: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["request_id"] == request_id)
        .collect()
}

/// `rack-gateway audit verify --json`: exit code and report.
pub async fn verify_cli(env: &HashMap<String, String>) -> (i32, Value) {
    let (code, stdout, stderr) = run_command(&["audit", "verify", "--json"], env).await;
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("no JSON report (exit {code}): {stdout}{stderr}"));
    (code, report)
}

/// Asserts that the seqs of `rows` are 1, 2, 3, … in order.
pub fn assert_contiguous_from_one(rows: &[Value]) {
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row["seq"].as_u64(),
            Some(i as u64 + 1),
            "seq at position {i}: {row}"
        );
    }
}

//! The audit trail end to end, with real processes on PostgreSQL: every request leaves exactly
//! its records, two gateways keep one chain, writes are refused while the database is down,
//! and a killed gateway has lost no intent it acknowledged.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use common::deploy::{
    create_database, create_token, fresh_database, gateway_env, start_gateway, start_mock_rack,
};
use common::http::basic;
use common::postgres::TempPostgres;
use common::process::run_command;
use futures_util::StreamExt as _;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    auth: Option<&str>,
    request_id: &str,
) -> StatusCode {
    let mut builder = Request::builder()
        .method(method)
        .uri(url)
        .header("x-request-id", request_id);
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    let response = client
        .request(builder.body(Full::new(Bytes::new())).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

/// Every record of the chain, from `rack-gateway audit export`.
async fn exported(env: &HashMap<String, String>) -> Vec<serde_json::Value> {
    let (code, stdout, stderr) = run_command(&["audit", "export", "--format", "jsonl"], env).await;
    assert_eq!(code, 0, "{stderr}");
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect()
}

/// Polls the export until `predicate` holds (the writer commits reads asynchronously).
async fn exported_when(
    env: &HashMap<String, String>,
    predicate: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = exported(env).await;
        if predicate(&rows) || tokio::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn verify(env: &HashMap<String, String>) -> (i32, serde_json::Value) {
    let (code, stdout, stderr) = run_command(&["audit", "verify", "--json"], env).await;
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {stdout}{stderr}"));
    (code, report)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Denied,
    UnknownRoute,
    BadToken,
}

#[tokio::test]
async fn a_mixed_run_through_two_gateways_leaves_exactly_its_records_in_one_chain() {
    const REQUESTS: usize = 10_000;
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_first, first) = start_gateway(&env).await;
    let (_second, second) = start_gateway(&env).await;
    let admin = basic(&create_token(&env, "admin", "admin").await);
    let viewer = basic(&create_token(&env, "viewer", "viewer").await);
    let bad = basic(&format!("rgw_{}", "B".repeat(43)));

    let client = client();
    let plan: Vec<(usize, Kind)> = (0..REQUESTS)
        .map(|i| {
            let kind = match i % 10 {
                0..=5 => Kind::Read,
                6 => Kind::Write,
                7 => Kind::Denied,
                8 => Kind::UnknownRoute,
                _ => Kind::BadToken,
            };
            (i, kind)
        })
        .collect();
    let results: Vec<(usize, Kind, StatusCode)> = futures_util::stream::iter(plan.clone())
        .map(|(i, kind)| {
            let client = client.clone();
            let base = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let (admin, viewer, bad) = (admin.clone(), viewer.clone(), bad.clone());
            async move {
                let id = format!("mix-{i}");
                let proxy = |path: &str| format!("{base}/api/v1/rack-proxy{path}");
                let status = match kind {
                    Kind::Read => {
                        call(&client, Method::GET, &proxy("/apps"), Some(&admin), &id).await
                    }
                    Kind::Write => {
                        call(
                            &client,
                            Method::POST,
                            &proxy("/apps/web/restart"),
                            Some(&admin),
                            &id,
                        )
                        .await
                    }
                    Kind::Denied => {
                        call(
                            &client,
                            Method::POST,
                            &proxy("/apps/web/restart"),
                            Some(&viewer),
                            &id,
                        )
                        .await
                    }
                    Kind::UnknownRoute => {
                        call(&client, Method::GET, &proxy("/racks"), Some(&admin), &id).await
                    }
                    Kind::BadToken => {
                        call(&client, Method::GET, &proxy("/apps"), Some(&bad), &id).await
                    }
                };
                (i, kind, status)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for (i, kind, status) in &results {
        let expected = match kind {
            Kind::Read | Kind::Write => StatusCode::OK,
            Kind::Denied => StatusCode::FORBIDDEN,
            Kind::UnknownRoute => StatusCode::NOT_FOUND,
            Kind::BadToken => StatusCode::UNAUTHORIZED,
        };
        assert_eq!(*status, expected, "request {i} ({kind:?})");
    }

    let writes = plan.iter().filter(|(_, k)| *k == Kind::Write).count();
    let expected_records = REQUESTS + writes;
    let rows = exported_when(&env, |rows| {
        rows.iter()
            .filter(|r| {
                r["request_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("mix-"))
            })
            .count()
            >= expected_records
    })
    .await;
    let mut by_request: HashMap<String, Vec<&serde_json::Value>> = HashMap::new();
    for row in &rows {
        if let Some(id) = row["request_id"]
            .as_str()
            .filter(|id| id.starts_with("mix-"))
        {
            by_request.entry(id.to_owned()).or_default().push(row);
        }
    }
    assert_eq!(by_request.len(), REQUESTS, "every request has records");
    for (i, kind) in &plan {
        let records = &by_request[&format!("mix-{i}")];
        let phases: Vec<&str> = records
            .iter()
            .map(|r| r["phase"].as_str().unwrap_or_default())
            .collect();
        let decision = records
            .last()
            .map(|r| r["decision"].as_str().unwrap_or_default())
            .unwrap_or_default();
        match kind {
            Kind::Write => assert_eq!(phases, ["intent", "complete"], "mix-{i}"),
            _ => assert_eq!(phases, ["complete"], "mix-{i} ({kind:?})"),
        }
        let expected_decision = match kind {
            Kind::Read | Kind::Write => "allow",
            _ => "deny",
        };
        assert_eq!(decision, expected_decision, "mix-{i} ({kind:?})");
    }
    let seqs: Vec<u64> = rows
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seqs are contiguous"
    );

    let (code, report) = verify(&env).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["intact"], true);
    assert_eq!(report["checked"].as_u64(), Some(rows.len() as u64));
}

#[tokio::test]
async fn with_the_database_down_writes_are_refused_and_reads_keep_their_records() {
    let cluster = TempPostgres::start();
    let database_url = create_database(&cluster.url()).await;
    let (mut rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_gateway, base) = start_gateway(&env).await;
    let admin = basic(&create_token(&env, "admin", "admin").await);
    let client = client();
    let proxy = |path: &str| format!("{base}/api/v1/rack-proxy{path}");
    // Warm the identity cache while the database is up.
    assert_eq!(
        call(
            &client,
            Method::GET,
            &proxy("/apps"),
            Some(&admin),
            "warm-1"
        )
        .await,
        StatusCode::OK
    );

    cluster.stop();
    let write = call(
        &client,
        Method::POST,
        &proxy("/apps/api/restart"),
        Some(&admin),
        "down-write",
    )
    .await;
    assert_eq!(write, StatusCode::SERVICE_UNAVAILABLE);
    for i in 0..5 {
        let read = call(
            &client,
            Method::GET,
            &proxy("/apps"),
            Some(&admin),
            &format!("down-read-{i}"),
        )
        .await;
        assert_eq!(
            read,
            StatusCode::OK,
            "reads keep working from the identity cache"
        );
    }

    cluster.resume();
    let rows = exported_when(&env, |rows| {
        let ids: HashSet<&str> = rows
            .iter()
            .filter_map(|r| r["request_id"].as_str())
            .collect();
        (0..5).all(|i| ids.contains(format!("down-read-{i}").as_str()))
            && ids.contains("down-write")
    })
    .await;
    let of = |id: &str| {
        rows.iter()
            .filter(|r| r["request_id"] == id)
            .collect::<Vec<_>>()
    };
    for i in 0..5 {
        assert_eq!(
            of(&format!("down-read-{i}")).len(),
            1,
            "read {i} kept its record"
        );
    }
    let write_records = of("down-write");
    assert_eq!(
        write_records.len(),
        1,
        "only the refusal is recorded: {write_records:?}"
    );
    assert_eq!(write_records[0]["phase"], "complete");
    assert_eq!(write_records[0]["decision"], "error");
    assert_eq!(write_records[0]["http_status"], 503);

    // The write never reached the rack, neither then nor later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = rack.drain();
    assert!(
        seen.iter()
            .any(|l| l.contains("mock rack request") && l.contains("down-read-0")),
        "reads reached the rack"
    );
    assert!(
        !seen.iter().any(|l| l.contains("down-write")),
        "the refused write reached the rack"
    );
    let (code, report) = verify(&env).await;
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn a_gateway_killed_under_load_lost_no_intent_it_acknowledged() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (mut gateway, base) = start_gateway(&env).await;
    let admin = basic(&create_token(&env, "admin", "admin").await);
    let client = client();
    let url = format!("{base}/api/v1/rack-proxy/apps/web/restart");

    let load = tokio::spawn({
        let client = client.clone();
        async move {
            futures_util::stream::iter(0..100_000)
                .map(|i| {
                    let (client, url, admin) = (client.clone(), url.clone(), admin.clone());
                    async move {
                        let id = format!("kill-{i}");
                        let request = Request::post(&url)
                            .header("authorization", admin.as_str())
                            .header("x-request-id", id.as_str())
                            .body(Full::new(Bytes::new()))
                            .expect("request");
                        match client.request(request).await {
                            Ok(response) if response.status() == StatusCode::OK => Some(id),
                            _ => None,
                        }
                    }
                })
                .buffer_unordered(32)
                .filter_map(|id| async move { id })
                .collect::<Vec<_>>()
                .await
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = gateway.child.id().expect("running") as i32;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = gateway.child.wait().await;
    let acknowledged = load.await.expect("load task");
    assert!(
        acknowledged.len() > 100,
        "the load ran: {} acknowledged",
        acknowledged.len()
    );

    let rows = exported(&env).await;
    let intents: HashSet<&str> = rows
        .iter()
        .filter(|r| r["phase"] == "intent")
        .filter_map(|r| r["request_id"].as_str())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !intents.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes have no intent record, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let (code, report) = verify(&env).await;
    assert_eq!(code, 0, "{report}");
}

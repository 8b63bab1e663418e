//! The audit API end to end, with real processes on PostgreSQL: `GET /api/v1/audit-logs`
//! (filters, keyset pagination), `/api/v1/audit-logs/export` (JSON Lines and CSV) and
//! `/api/v1/audit/verify`; who may call them, that every call is itself audited, and that bad
//! input is a 400 with a JSON error, never a 500.

mod common;

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use common::audit::{
    assert_contiguous_from_one, assert_json_error, call, client, exported, exported_when, json_of,
    of_request, parse_jsonl, HttpClient,
};
use common::deploy::{create_token, fresh_database, gateway_env, start_gateway, start_mock_rack};
use common::http::Reply;
use http::{Method, StatusCode};
use serde_json::Value;

const ADMIN: &str = "api-admin";
const AUDITOR: &str = "api-auditor";
const VIEWER: &str = "api-viewer";

const CSV_HEADER: &str = "seq,recorded_at,request_id,actor_kind,actor_email,actor_name,token_id,\
token_name,client_ip,user_agent,action,phase,resource,method,path,decision,reason,http_status,\
latency_ms,details,key_id,prev_mac,mac";

struct Api {
    client: HttpClient,
    base: String,
}

impl Api {
    async fn get(&self, path_and_query: &str, token: &str, request_id: &str) -> Reply {
        call(
            &self.client,
            Method::GET,
            &format!("{}{path_and_query}", self.base),
            Some(token),
            request_id,
        )
        .await
    }

    /// One page of the listing: (logs, next_cursor).
    async fn list(&self, query: &str, token: &str, request_id: &str) -> (Vec<Value>, Value) {
        let reply = self
            .get(&format!("/api/v1/audit-logs?{query}"), token, request_id)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "?{query}: {}", reply.body);
        let body = json_of(&reply);
        let logs = body["logs"]
            .as_array()
            .unwrap_or_else(|| panic!("?{query}: no logs array in {body}"))
            .clone();
        assert!(
            body.get("next_cursor").is_some(),
            "?{query}: no next_cursor in {body}"
        );
        for pair in logs.windows(2) {
            assert!(
                pair[0]["seq"].as_u64() > pair[1]["seq"].as_u64(),
                "?{query}: not newest first"
            );
        }
        (logs, body["next_cursor"].clone())
    }
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn seqs(rows: &[Value]) -> Vec<u64> {
    rows.iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect()
}

fn seq_set<'a>(rows: impl IntoIterator<Item = &'a Value>) -> BTreeSet<u64> {
    rows.into_iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect()
}

fn ids(rows: &[Value]) -> HashSet<String> {
    rows.iter()
        .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
        .collect()
}

fn recorded_at(row: &Value) -> DateTime<Utc> {
    row["recorded_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("recorded_at of {row}"))
}

/// A small CSV reader (RFC 4180 quoting, newlines allowed inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(!quoted, "unterminated quote in the CSV");
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

fn assert_attachment(reply: &Reply, extension: &str) {
    let disposition = reply
        .headers
        .get(http::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Content-Disposition: {:?}", reply.headers));
    assert!(
        disposition.starts_with("attachment") && disposition.contains("filename="),
        "{disposition}"
    );
    assert!(
        disposition
            .trim_end_matches('"')
            .ends_with(&format!(".{extension}")),
        "{disposition}"
    );
}

fn content_type(reply: &Reply) -> &str {
    reply
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_audit_api_lists_filters_pages_exports_and_verifies_and_is_itself_audited() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_gateway, base) = start_gateway(&env).await;
    let admin = create_token(&env, ADMIN, "admin").await;
    let auditor = create_token(&env, AUDITOR, "auditor").await;
    let viewer = create_token(&env, VIEWER, "viewer").await;
    let api = Api {
        client: client(),
        base: base.clone(),
    };

    // Proxied traffic, each request with its own X-Request-ID.
    let mut traffic: Vec<(String, Method, &str, &str, StatusCode)> = Vec::new();
    for i in 0..4 {
        let id = format!("t-admin-list-{i}");
        traffic.push((id, Method::GET, "/apps", &admin, StatusCode::OK));
    }
    for i in 0..2 {
        let id = format!("t-viewer-list-{i}");
        traffic.push((id, Method::GET, "/apps", &viewer, StatusCode::OK));
        let id = format!("t-viewer-restart-{i}");
        traffic.push((
            id,
            Method::POST,
            "/apps/web/restart",
            &viewer,
            StatusCode::FORBIDDEN,
        ));
    }
    traffic.extend([
        (
            "t-auditor-restart".to_owned(),
            Method::POST,
            "/apps/web/restart",
            auditor.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            "t-admin-unknown-route".to_owned(),
            Method::GET,
            "/racks",
            admin.as_str(),
            StatusCode::NOT_FOUND,
        ),
        (
            "t-admin-missing-app".to_owned(),
            Method::GET,
            "/apps/no-such-app",
            admin.as_str(),
            StatusCode::NOT_FOUND,
        ),
        (
            "t-admin-restart".to_owned(),
            Method::POST,
            "/apps/web/restart",
            admin.as_str(),
            StatusCode::OK,
        ),
    ]);
    for (id, method, path, token, expected) in &traffic {
        let reply = call(
            &api.client,
            method.clone(),
            &format!("{base}/api/v1/rack-proxy{path}"),
            Some(token),
            id,
        )
        .await;
        assert_eq!(reply.status, *expected, "{id}: {}", reply.body);
    }
    let traffic_ids: Vec<&str> = traffic.iter().map(|(id, ..)| id.as_str()).collect();
    let snapshot = exported_when(&env, |rows| {
        let present: HashSet<String> = rows
            .iter()
            .filter(|r| r["phase"] == "complete")
            .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
            .collect();
        traffic_ids.iter().all(|id| present.contains(*id))
    })
    .await;
    assert_contiguous_from_one(&snapshot);
    for id in &traffic_ids {
        let records = of_request(&snapshot, id);
        let expected = if *id == "t-admin-restart" { 2 } else { 1 };
        assert_eq!(records.len(), expected, "{id}: {records:?}");
    }
    let snapshot_max = snapshot.len() as u64;

    // A viewer may call none of the three endpoints, and each refusal is recorded.
    let refused = [
        ("v-list", "/api/v1/audit-logs", "audit.list"),
        (
            "v-export",
            "/api/v1/audit-logs/export?format=jsonl",
            "audit.export",
        ),
        ("v-verify", "/api/v1/audit/verify", "audit.verify"),
    ];
    for (id, path, _) in refused {
        let reply = api.get(path, &viewer, id).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
        assert!(
            json_of(&reply)["error"].as_str().is_some(),
            "{path}: {}",
            reply.body
        );
        assert!(
            !reply.body.contains("\"logs\"") && !reply.body.contains("\"intact\""),
            "{path} leaked data to a viewer: {}",
            reply.body
        );
    }
    // Nor may a caller without credentials.
    let anonymous = call(
        &api.client,
        Method::GET,
        &format!("{base}/api/v1/audit-logs"),
        None,
        "anon-list",
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // The auditor lists.
    let (logs, _) = api.list("", &auditor, "a-list-0").await;
    assert!(!logs.is_empty());
    assert!(logs[0]["seq"].as_u64() >= Some(snapshot_max));
    // Every column is there, MACs in hex.
    for column in CSV_HEADER.split(',') {
        assert!(logs[0].get(column).is_some(), "no {column} in {}", logs[0]);
    }
    assert_eq!(logs[0]["mac"].as_str().map(str::len), Some(64));

    // Filters.
    let (by_action, _) = api
        .list("action=app.list&limit=1000", &auditor, "a-f-action")
        .await;
    assert!(by_action.iter().all(|r| r["action"] == "app.list"));
    assert_eq!(
        seq_set(&by_action),
        seq_set(snapshot.iter().filter(|r| r["action"] == "app.list")),
        "action=app.list"
    );
    let (denied, _) = api
        .list("decision=deny&limit=1000", &auditor, "a-f-deny")
        .await;
    assert!(denied.iter().all(|r| r["decision"] == "deny"));
    let denied_ids = ids(&denied);
    for id in [
        "t-viewer-restart-0",
        "t-viewer-restart-1",
        "t-auditor-restart",
        "t-admin-unknown-route",
    ] {
        assert!(denied_ids.contains(id), "decision=deny lacks {id}");
    }
    assert!(seq_set(&denied).is_superset(&seq_set(
        snapshot.iter().filter(|r| r["decision"] == "deny")
    )));
    let (not_found, _) = api
        .list("status=404&limit=1000", &auditor, "a-f-status")
        .await;
    assert!(not_found.iter().all(|r| r["http_status"] == 404));
    assert_eq!(
        seq_set(&not_found),
        seq_set(snapshot.iter().filter(|r| r["http_status"] == 404)),
        "status=404"
    );
    let not_found_ids = ids(&not_found);
    assert!(not_found_ids.contains("t-admin-unknown-route"));
    assert!(not_found_ids.contains("t-admin-missing-app"));
    let (by_viewer, _) = api
        .list(&format!("actor={VIEWER}&limit=1000"), &auditor, "a-f-actor")
        .await;
    assert!(by_viewer.iter().all(|r| r["token_name"] == VIEWER));
    let viewer_ids = ids(&by_viewer);
    for id in [
        "t-viewer-list-0",
        "t-viewer-list-1",
        "t-viewer-restart-0",
        "t-viewer-restart-1",
    ] {
        assert!(viewer_ids.contains(id), "actor={VIEWER} lacks {id}");
    }
    assert!(!viewer_ids.contains("t-admin-list-0"));
    let (admin_lists, _) = api
        .list(
            &format!("actor={ADMIN}&action=app.list&limit=1000"),
            &auditor,
            "a-f-combined",
        )
        .await;
    assert_eq!(
        ids(&admin_lists),
        (0..4).map(|i| format!("t-admin-list-{i}")).collect(),
        "actor and action together"
    );
    let (nobody, cursor) = api
        .list("actor=nobody@example.com", &auditor, "a-f-nobody")
        .await;
    assert!(nobody.is_empty());
    assert!(cursor.is_null());

    // since (inclusive) and until (exclusive), RFC 3339 with microseconds, and plain dates.
    let since = recorded_at(&snapshot[2]);
    let until = recorded_at(&snapshot[snapshot.len() - 2]);
    let window = |row: &&Value| {
        let at = recorded_at(row);
        since <= at && at < until
    };
    let expected_window = seq_set(snapshot.iter().filter(window));
    assert!(!expected_window.is_empty());
    let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let until_text = until.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (windowed, _) = api
        .list(
            &format!(
                "since={}&until={}&limit=1000",
                encode(&since_text),
                encode(&until_text)
            ),
            &auditor,
            "a-f-window",
        )
        .await;
    assert_eq!(seq_set(&windowed), expected_window, "since/until window");
    let (after, _) = api
        .list(
            &format!("since={}&limit=1000", encode(&since_text)),
            &auditor,
            "a-f-since",
        )
        .await;
    assert!(after.iter().all(|r| recorded_at(r) >= since));
    assert!(seq_set(&after).is_superset(&expected_window));
    let (before, _) = api
        .list(
            &format!("until={}&limit=1000", encode(&until_text)),
            &auditor,
            "a-f-until",
        )
        .await;
    assert_eq!(
        seq_set(&before),
        seq_set(snapshot.iter().filter(|r| recorded_at(r) < until)),
        "until"
    );
    let (all_since_2000, _) = api
        .list("since=2000-01-01&limit=1000", &auditor, "a-f-date")
        .await;
    assert!(all_since_2000.len() >= snapshot.len());
    let (none_before_2000, cursor) = api.list("until=2000-01-01", &auditor, "a-f-old").await;
    assert!(none_before_2000.is_empty());
    assert!(cursor.is_null());

    // Keyset pagination, 3 at a time, newest first: no duplicates, no gaps, down to seq 1.
    let mut walked: Vec<u64> = Vec::new();
    let mut cursor: Option<u64> = None;
    let mut pages = 0;
    loop {
        let query = match cursor {
            None => "limit=3".to_owned(),
            Some(c) => format!("limit=3&cursor={c}"),
        };
        let (page, next) = api.list(&query, &auditor, &format!("a-page-{pages}")).await;
        pages += 1;
        assert!(page.len() <= 3, "{query}: {} rows", page.len());
        walked.extend(seqs(&page));
        match next.as_u64() {
            Some(next) => {
                assert_eq!(page.len(), 3, "{query}: a short page has no next_cursor");
                assert_eq!(Some(next), walked.last().copied(), "{query}");
                cursor = Some(next);
            }
            None => {
                assert!(next.is_null(), "{query}: next_cursor {next}");
                break;
            }
        }
        assert!(pages < 1_000, "pagination does not end");
    }
    assert!(
        walked[0] >= snapshot_max,
        "the walk starts at the newest row"
    );
    assert_eq!(walked.last(), Some(&1), "the walk ends at the oldest row");
    for pair in walked.windows(2) {
        assert_eq!(pair[1] + 1, pair[0], "gap or duplicate in {walked:?}");
    }
    assert!(pages > 3);
    // With a filter too.
    let mut filtered: Vec<u64> = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let query = match cursor {
            None => "action=app.list&limit=3".to_owned(),
            Some(c) => format!("action=app.list&limit=3&cursor={c}"),
        };
        let (page, next) = api.list(&query, &auditor, "a-page-filtered").await;
        assert!(page.iter().all(|r| r["action"] == "app.list"));
        filtered.extend(seqs(&page));
        match next.as_u64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<u64> = snapshot
        .iter()
        .rev()
        .filter(|r| r["action"] == "app.list")
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(filtered, expected, "filtered pagination");

    // Export, JSON Lines: every record, oldest first, as the CLI prints them.
    let reply = api
        .get(
            "/api/v1/audit-logs/export?format=jsonl",
            &auditor,
            "a-export-jsonl",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(content_type(&reply).starts_with("application/x-ndjson"));
    assert_attachment(&reply, "jsonl");
    let all = parse_jsonl(&reply.body);
    assert_contiguous_from_one(&all);
    assert!(all.len() as u64 >= walked[0], "the export has every record");
    assert_eq!(
        &all[..snapshot.len()],
        &snapshot[..],
        "API and CLI exports agree"
    );
    let all_ids = ids(&all);
    for id in &traffic_ids {
        assert!(all_ids.contains(*id), "export lacks {id}");
    }
    // The default format is JSON Lines.
    let reply = api
        .get("/api/v1/audit-logs/export", &auditor, "a-export-default")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(parse_jsonl(&reply.body).len() >= all.len());

    // Export, CSV: the header and one row per record; the same window in both formats.
    let window_query = format!(
        "since={}&until={}",
        encode(&since_text),
        encode(&until_text)
    );
    let reply = api
        .get(
            &format!("/api/v1/audit-logs/export?format=jsonl&{window_query}"),
            &auditor,
            "a-export-window-jsonl",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let window_rows = parse_jsonl(&reply.body);
    assert_eq!(
        seqs(&window_rows),
        expected_window.iter().copied().collect::<Vec<_>>()
    );
    let reply = api
        .get(
            &format!("/api/v1/audit-logs/export?format=csv&{window_query}"),
            &auditor,
            "a-export-window-csv",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(content_type(&reply).starts_with("text/csv"));
    assert_attachment(&reply, "csv");
    let table = parse_csv(&reply.body);
    assert_eq!(table[0].join(","), CSV_HEADER);
    assert_eq!(table.len() - 1, window_rows.len(), "one CSV row per record");
    for (row, record) in table[1..].iter().zip(&window_rows) {
        assert_eq!(row.len(), table[0].len(), "{row:?}");
        assert_eq!(row[0], record["seq"].to_string());
        assert_eq!(row[2], record["request_id"].as_str().unwrap_or_default());
        assert_eq!(row[10], record["action"].as_str().unwrap_or_default());
        assert_eq!(row[22], record["mac"].as_str().unwrap_or_default());
    }
    let reply = api
        .get(
            "/api/v1/audit-logs/export?format=csv",
            &auditor,
            "a-export-csv",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let table = parse_csv(&reply.body);
    assert_eq!(table[0].join(","), CSV_HEADER);
    assert!(table.len() > all.len(), "the full CSV has every record");
    for (i, row) in table[1..].iter().enumerate() {
        assert_eq!(row[0], (i + 1).to_string(), "CSV rows oldest first");
    }

    // Verify.
    let reply = api.get("/api/v1/audit/verify", &auditor, "a-verify").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let report = json_of(&reply);
    assert_eq!(report["intact"], true, "{report}");
    // An admin may read the audit log too.
    let reply = api
        .get("/api/v1/audit/verify", &admin, "admin-verify")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    // Every call above is itself in the trail: allowed ones and the viewer's refusals.
    let allowed = [
        ("a-list-0", "audit.list", AUDITOR),
        ("a-f-window", "audit.list", AUDITOR),
        ("a-page-0", "audit.list", AUDITOR),
        ("a-export-jsonl", "audit.export", AUDITOR),
        ("a-export-csv", "audit.export", AUDITOR),
        ("a-verify", "audit.verify", AUDITOR),
        ("admin-verify", "audit.verify", ADMIN),
    ];
    let rows = exported_when(&env, |rows| {
        let present = ids(rows);
        allowed.iter().all(|(id, ..)| present.contains(*id))
            && refused.iter().all(|(id, ..)| present.contains(*id))
    })
    .await;
    for (id, action, token) in allowed {
        let records = of_request(&rows, id);
        assert_eq!(records.len(), 1, "{id}: {records:?}");
        let record = records[0];
        assert_eq!(record["action"], action, "{id}");
        assert_eq!(record["decision"], "allow", "{id}");
        assert_eq!(record["http_status"], 200, "{id}");
        assert_eq!(record["phase"], "complete", "{id}");
        assert_eq!(record["token_name"], token, "{id}");
        assert_eq!(record["method"], "GET", "{id}");
    }
    for (id, _, action) in refused {
        let records = of_request(&rows, id);
        assert_eq!(records.len(), 1, "{id}: {records:?}");
        let record = records[0];
        assert_eq!(record["action"], action, "{id}");
        assert_eq!(record["decision"], "deny", "{id}");
        assert_eq!(record["http_status"], 403, "{id}");
        assert_eq!(record["token_name"], VIEWER, "{id}");
        assert!(
            record["reason"]
                .as_str()
                .is_some_and(|r| r.contains("gateway:audit_log:read")),
            "{id}: {record}"
        );
    }
    let anonymous = of_request(&rows, "anon-list");
    assert_eq!(anonymous.len(), 1, "{anonymous:?}");
    assert_eq!(anonymous[0]["decision"], "deny");
    assert_eq!(anonymous[0]["http_status"], 401);
    // The filters of a listing are in its record's details; the query is not in its path.
    let window_record = of_request(&rows, "a-f-window")[0];
    assert_eq!(window_record["path"], "/api/v1/audit-logs");
    let details: Value =
        serde_json::from_str(window_record["details"].as_str().expect("details")).expect("json");
    assert_eq!(details["since"], since_text.as_str(), "{details}");
    assert_eq!(details["until"], until_text.as_str(), "{details}");

    // The chain is still intact after all of that.
    let reply = api
        .get("/api/v1/audit/verify", &auditor, "a-verify-2")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(json_of(&reply)["intact"], true);
}

#[tokio::test]
async fn bad_input_is_a_400_with_a_json_error_never_a_500() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let (_gateway, base) = start_gateway(&env).await;
    let auditor = create_token(&env, AUDITOR, "auditor").await;
    let admin = create_token(&env, ADMIN, "admin").await;
    let api = Api {
        client: client(),
        base: base.clone(),
    };
    for i in 0..5 {
        let reply = call(
            &api.client,
            Method::GET,
            &format!("{base}/api/v1/rack-proxy/apps"),
            Some(&admin),
            &format!("bad-traffic-{i}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    exported_when(&env, |rows| ids(rows).contains("bad-traffic-4")).await;

    for query in [
        "decision=maybe",
        "decision=ALLOW",
        "since=yesterday",
        "until=tomorrow",
        "since=2026-13-45",
        "since=%ZZ",
        "cursor=abc",
        "cursor=-1",
        "cursor=1.5",
        "limit=-1",
        "limit=abc",
        "limit=99999999999999999999999",
        "status=abc",
        "status=70000",
    ] {
        let reply = api
            .get(&format!("/api/v1/audit-logs?{query}"), &auditor, "bad-list")
            .await;
        assert_json_error(&reply, &format!("list ?{query}"));
    }
    for query in [
        "format=xml",
        "format=jsonl&since=yesterday",
        "format=csv&until=noon",
        "format=jsonl&decision=maybe",
        "format=jsonl&limit=abc",
    ] {
        let reply = api
            .get(
                &format!("/api/v1/audit-logs/export?{query}"),
                &auditor,
                "bad-export",
            )
            .await;
        assert_json_error(&reply, &format!("export ?{query}"));
    }

    // limit=0 is clamped to 1, a huge limit to the maximum.
    let (one, next) = api.list("limit=0", &auditor, "limit-zero").await;
    assert_eq!(one.len(), 1, "limit=0 is clamped to 1");
    assert_eq!(next.as_u64(), one[0]["seq"].as_u64());
    let (many, _) = api.list("limit=5000", &auditor, "limit-huge").await;
    assert!(!many.is_empty() && many.len() <= 1_000);

    // Odd but well-formed input: any answer but a server error.
    for query in [
        "cursor=0",
        "cursor=18446744073709551615",
        "cursor=9223372036854775808",
        "status=0",
        "status=65535",
        "action=%FF%FE",
        "actor=&action=&decision=",
        "since=9999-12-31T23:59:59Z",
        "until=0001-01-01",
        "since=2026-01-02T03:04:05%2B02:00",
        "limit=1000&limit=2",
        "unknown=1",
    ] {
        let reply = api
            .get(&format!("/api/v1/audit-logs?{query}"), &auditor, "odd-list")
            .await;
        assert!(
            reply.status.is_success() || reply.status.is_client_error(),
            "list ?{query}: {} {}",
            reply.status,
            reply.body
        );
        assert!(
            serde_json::from_str::<Value>(&reply.body).is_ok(),
            "list ?{query}: not JSON: {}",
            reply.body
        );
    }

    // A NUL in a text filter (PostgreSQL text cannot hold one) is refused as bad input.
    let reply = api
        .get("/api/v1/audit-logs?actor=%00", &auditor, "odd-nul")
        .await;
    assert_json_error(&reply, "list ?actor=%00");

    // Refused calls leave a record too: every bad list above is an audit.list deny with 400.
    let rows = exported_when(&env, |rows| {
        rows.iter().any(|r| r["request_id"] == "odd-nul")
    })
    .await;
    let refused: Vec<&Value> = rows
        .iter()
        .filter(|r| r["request_id"] == "bad-list" || r["request_id"] == "odd-nul")
        .collect();
    assert_eq!(refused.len(), 15, "each refused list call is recorded");
    for record in refused {
        assert_eq!(record["action"], "audit.list");
        assert_eq!(record["decision"], "deny");
        assert_eq!(record["http_status"], 400);
    }

    // The gateway is still healthy and the chain intact.
    let reply = api
        .get("/api/v1/audit/verify", &auditor, "bad-verify")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(json_of(&reply)["intact"], true);
    let rows = exported(&env).await;
    assert_contiguous_from_one(&rows);
}

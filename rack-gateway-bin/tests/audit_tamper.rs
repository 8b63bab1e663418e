//! Each tampering case makes `audit verify` exit 1 naming the right seq.
//!
//! Every case runs the real CLI (`rack-gateway audit verify --json`, a child process) against
//! its own fresh PostgreSQL database holding a 50-row chain. Tampering is done the way a database
//! superuser could do it: the append-only triggers refuse the statement, so it is repeated with
//! `SET session_replication_role = replica` (which skips triggers) in the same session.
//!
//! Needs DATABASE_URL (a PostgreSQL server URL, superuser) and, for the anchor cases,
//! AWS_ENDPOINT_URL_S3 (an S3-compatible server with Object Lock):
//! `scripts/with-postgres scripts/with-s3 cargo test -p rack-gateway-bin --test audit_tamper`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use common::process::run_command;
use rack_gateway_bin::anchors::{s3_client, write_anchor_once, AnchorConfig, AnchorOutcome};
use rack_gateway_bin::audit::prune_once;
use rack_gateway_bin::config::Env;
use rack_gateway_core::audit::encode::{hex, mac_input};
use rack_gateway_core::audit::{
    ActorKind, AuditDecision, AuditEvent, AuditRecord, AuditSink, ChainKey, Phase,
};
use rack_gateway_core::store::{AuditStore, PostgresStore, Store};
use serde_json::Value;

const SECRET: &str = "an-audit-secret-for-the-tamper-tests-0123456789";
const CHAIN: &str = "tamper-chain";
/// Rows in every chain.
const ROWS: u64 = 50;

fn server_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run `scripts/with-postgres scripts/with-s3 cargo test -p \
         rack-gateway-bin --test audit_tamper` (or scripts/test), which starts a throwaway \
         PostgreSQL server",
    )
}

fn s3_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_S3").expect(
        "AWS_ENDPOINT_URL_S3 is not set: run `scripts/with-postgres scripts/with-s3 cargo test -p \
         rack-gateway-bin --test audit_tamper` (or scripts/test), which starts an S3-compatible \
         server with Object Lock (moto)",
    )
}

/// A fresh database on the server of DATABASE_URL; returns its URL.
async fn fresh_database() -> String {
    let server = server_url();
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to DATABASE_URL {server}: {e}"));
    tokio::spawn(connection);
    let name = format!("rgw_tamper_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let (base, _) = server.rsplit_once('/').expect("DATABASE_URL has a path");
    format!("{base}/{name}")
}

/// A fresh database holding a chain of [`ROWS`] records, appended in batches.
struct Chain {
    url: String,
    store: Arc<PostgresStore>,
    key: ChainKey,
}

impl Chain {
    async fn new() -> Chain {
        Chain::with_rows(ROWS).await
    }

    async fn with_rows(rows: u64) -> Chain {
        Chain::with_rows_in_batches(rows, 10).await
    }

    async fn with_rows_in_batches(rows: u64, batch: usize) -> Chain {
        let url = fresh_database().await;
        let store = PostgresStore::connect(&url, 4)
            .await
            .expect("connect the store");
        store.migrate().await.expect("migrate");
        let chain = Chain {
            url,
            store: Arc::new(store),
            key: ChainKey::new(SECRET.as_bytes()),
        };
        chain.append_in_batches(rows, batch).await;
        chain
    }

    /// Appends `n` request-shaped records in batches of 10 (the last may be shorter).
    async fn append(&self, n: u64) {
        self.append_in_batches(n, 10).await;
    }

    async fn append_in_batches(&self, n: u64, size: usize) {
        let first = self.head_seq().await + 1;
        let seqs: Vec<u64> = (first..first + n).collect();
        for batch in seqs.chunks(size) {
            let events = batch.iter().map(|&seq| event(seq)).collect();
            let records = self
                .store
                .append_audit(&self.key, events)
                .await
                .expect("append audit records");
            let got: Vec<u64> = records.iter().map(|r| r.seq).collect();
            assert_eq!(got, batch, "appended seqs");
        }
    }

    async fn head_seq(&self) -> u64 {
        self.store
            .audit_head()
            .await
            .expect("audit head")
            .map_or(0, |r| r.seq)
    }

    async fn row(&self, seq: u64) -> AuditRecord {
        let rows = self.store.audit_range(seq, 1).await.expect("audit range");
        let row = rows.into_iter().next().expect("a row");
        assert_eq!(row.seq, seq, "row {seq} is present");
        row
    }

    /// DATABASE_URL and AUDIT_HMAC_SECRET for the CLI.
    fn env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("DATABASE_URL".to_owned(), self.url.clone()),
            ("AUDIT_HMAC_SECRET".to_owned(), SECRET.to_owned()),
        ])
    }

    /// Runs `sql` as a superuser: first checks that the append-only triggers refuse it, then
    /// runs it with `session_replication_role = replica` (triggers skipped) in one session.
    async fn tamper(&self, sql: &str) {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect as superuser");
        tokio::spawn(connection);
        let refused = client
            .batch_execute(sql)
            .await
            .expect_err("the append-only trigger let this through");
        let message = refused
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_else(|| refused.to_string());
        assert!(
            message.contains("is append-only"),
            "refused, but not by the append-only trigger: {message}"
        );
        client
            .batch_execute(&format!("SET session_replication_role = replica; {sql}"))
            .await
            .unwrap_or_else(|e| {
                panic!("tampering as superuser failed (is DATABASE_URL a superuser?): {e}: {sql}")
            });
    }
}

/// A request-shaped record, different for every seq.
fn event(seq: u64) -> AuditEvent {
    let mut event = AuditEvent::system("app.list", &format!("granted by role admin ({seq})"));
    event.actor_kind = ActorKind::User;
    event.actor_email = format!("user{}@example.com", seq % 7);
    event.actor_name = "Test User".into();
    event.client_ip = Some("127.0.0.1".into());
    event.user_agent = Some("convox/3.19".into());
    event.phase = Phase::Complete;
    event.resource = Some(format!("app-{}", seq % 5));
    event.method = Some("GET".into());
    event.path = Some("/apps".into());
    event.decision = AuditDecision::Allow;
    event.http_status = 200;
    event.latency_ms = seq % 13;
    event.details = format!("{{\"n\":{seq}}}");
    event
}

/// What `audit verify --json` did.
struct Verified {
    code: i32,
    report: Option<Value>,
    stdout: String,
    stderr: String,
}

impl Verified {
    fn field(&self, name: &str) -> &Value {
        let report = self.report.as_ref().unwrap_or_else(|| {
            panic!(
                "no JSON report (exit {}); stdout: {}; stderr: {}",
                self.code, self.stdout, self.stderr
            )
        });
        &report[name]
    }

    fn seq(&self, name: &str) -> Option<u64> {
        self.field(name).as_u64()
    }

    fn problem(&self) -> String {
        self.field("problem")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Exit 0, intact, covering `start+1..=head`.
    fn assert_intact(&self, start: u64, head: u64) {
        assert_eq!(
            self.code, 0,
            "verify must pass; stdout: {}; stderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(self.field("intact"), &Value::Bool(true), "{}", self.stdout);
        assert_eq!(self.seq("start_seq"), Some(start), "{}", self.stdout);
        assert_eq!(self.seq("head_seq"), Some(head), "{}", self.stdout);
        assert_eq!(self.seq("checked"), Some(head - start), "{}", self.stdout);
        assert_eq!(self.field("first_bad_seq"), &Value::Null, "{}", self.stdout);
    }

    /// Exit 1 and the first bad seq; returns the problem text.
    fn assert_tampered_at(&self, seq: u64) -> String {
        assert_eq!(
            self.code, 1,
            "verify must report tampering at seq {seq}; stdout: {}; stderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(self.field("intact"), &Value::Bool(false), "{}", self.stdout);
        assert_eq!(
            self.seq("first_bad_seq"),
            Some(seq),
            "wrong first bad seq: {}",
            self.stdout
        );
        self.problem()
    }
}

async fn verify(env: &HashMap<String, String>) -> Verified {
    let (code, stdout, stderr) = run_command(&["audit", "verify", "--json"], env).await;
    let report = serde_json::from_str(&stdout).ok();
    Verified {
        code,
        report,
        stdout,
        stderr,
    }
}

/// A fresh Object Lock bucket in the S3-compatible server, and the settings to anchor in it.
struct Bucket {
    s3: aws_sdk_s3::Client,
    config: AnchorConfig,
    env: Vec<(String, String)>,
}

impl Bucket {
    async fn new() -> Bucket {
        let endpoint = s3_endpoint();
        let bucket = format!("rgw-tamper-{}", uuid::Uuid::new_v4().simple());
        let env: Vec<(String, String)> = [
            ("AUDIT_ANCHOR_BUCKET", bucket.as_str()),
            ("AUDIT_ANCHOR_CHAIN_ID", CHAIN),
            ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(
            [
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
            ]
            .into_iter()
            .map(|(k, default)| {
                (
                    k.to_owned(),
                    std::env::var(k).unwrap_or_else(|_| default.to_owned()),
                )
            }),
        )
        .collect();
        let config = AnchorConfig::from_env(&Env::from_pairs(
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
        .expect("valid anchor config")
        .expect("anchoring enabled");
        let s3 = s3_client(&config).await;
        s3.create_bucket()
            .bucket(&config.bucket)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .expect("create an Object Lock bucket");
        Bucket { s3, config, env }
    }

    /// Anchors the chain head now; returns the anchored seq.
    async fn anchor(&self, chain: &Chain) -> u64 {
        match write_anchor_once(&*chain.store, &self.s3, &self.config, Utc::now())
            .await
            .expect("write an anchor")
        {
            AnchorOutcome::Written { anchor, .. } => anchor.seq,
            other => panic!("expected an anchor to be written, got {other:?}"),
        }
    }

    /// The chain's CLI environment plus the anchoring variables.
    fn env(&self, chain: &Chain) -> HashMap<String, String> {
        let mut env = chain.env();
        env.extend(self.env.iter().cloned());
        env
    }
}

/// The untouched chain verifies with head 50.
async fn intact_chain() -> Chain {
    let chain = Chain::new().await;
    verify(&chain.env()).await.assert_intact(0, ROWS);
    chain
}

#[tokio::test]
async fn an_edited_column_is_caught_at_its_seq() {
    let chain = intact_chain().await;
    chain
        .tamper("UPDATE audit_events SET reason = 'nothing to see here' WHERE seq = 17")
        .await;
    let problem = verify(&chain.env()).await.assert_tampered_at(17);
    assert!(problem.contains("MAC does not match"), "{problem}");

    // Another column of another row, on a fresh chain: the status code.
    let chain = intact_chain().await;
    chain
        .tamper("UPDATE audit_events SET http_status = 403 WHERE seq = 17")
        .await;
    let problem = verify(&chain.env()).await.assert_tampered_at(17);
    assert!(problem.contains("MAC does not match"), "{problem}");

    // A value the gateway could never have written is tampering too, not "cannot verify".
    let chain = intact_chain().await;
    chain
        .tamper("UPDATE audit_events SET phase = 'bogus' WHERE seq = 29")
        .await;
    let problem = verify(&chain.env()).await.assert_tampered_at(29);
    assert!(problem.contains("cannot be read back"), "{problem}");
}

#[tokio::test]
async fn a_deleted_middle_row_is_caught_at_its_seq() {
    let chain = intact_chain().await;
    chain
        .tamper("DELETE FROM audit_events WHERE seq = 23")
        .await;
    let problem = verify(&chain.env()).await.assert_tampered_at(23);
    assert!(problem.contains("missing"), "{problem}");
}

#[tokio::test]
async fn two_swapped_rows_are_caught_at_the_first() {
    let chain = intact_chain().await;
    let (ten, eleven) = (chain.row(10).await, chain.row(11).await);
    // Exchange the rows' seqs (through a temporary one): each now holds the other's contents.
    chain
        .tamper(
            "UPDATE audit_events SET seq = 1000000 WHERE seq = 10; \
             UPDATE audit_events SET seq = 10 WHERE seq = 11; \
             UPDATE audit_events SET seq = 11 WHERE seq = 1000000",
        )
        .await;
    assert_eq!(chain.row(10).await.mac, eleven.mac, "swapped");
    assert_eq!(chain.row(11).await.mac, ten.mac, "swapped");
    let problem = verify(&chain.env()).await.assert_tampered_at(10);
    assert!(problem.contains("MAC does not match"), "{problem}");
}

#[tokio::test]
async fn a_row_re_maced_with_a_wrong_key_is_caught_at_its_seq() {
    let wrong = ChainKey::new(b"a key that is not AUDIT_HMAC_SECRET, 32+ bytes");

    // Kept key_id: the row still names the real key, but its MAC was made with another one.
    let chain = intact_chain().await;
    let row = chain.row(30).await;
    assert_eq!(row.key_id, chain.key.id());
    let mac = wrong.mac(&mac_input(&row));
    chain
        .tamper(&format!(
            "UPDATE audit_events SET mac = decode('{}', 'hex') WHERE seq = 30",
            hex(&mac)
        ))
        .await;
    let problem = verify(&chain.env()).await.assert_tampered_at(30);
    assert!(problem.contains("MAC does not match"), "{problem}");

    // key_id set to the wrong key's id (and the MAC made with it): an unknown key.
    let chain = intact_chain().await;
    let mut row = chain.row(30).await;
    row.key_id = wrong.id().to_owned();
    let mac = wrong.mac(&mac_input(&row));
    chain
        .tamper(&format!(
            "UPDATE audit_events SET key_id = '{}', mac = decode('{}', 'hex') WHERE seq = 30",
            wrong.id(),
            hex(&mac)
        ))
        .await;
    let problem = verify(&chain.env()).await.assert_tampered_at(30);
    assert!(problem.contains("unknown key"), "{problem}");
}

#[tokio::test]
async fn newest_rows_deleted_after_an_anchor_are_caught_by_the_anchor() {
    let bucket = Bucket::new().await;
    let chain = intact_chain().await;
    assert_eq!(bucket.anchor(&chain).await, ROWS);
    let anchored = verify(&bucket.env(&chain)).await;
    anchored.assert_intact(0, ROWS);
    assert_eq!(
        anchored.seq("anchors_checked"),
        Some(1),
        "{}",
        anchored.stdout
    );

    chain
        .tamper("DELETE FROM audit_events WHERE seq BETWEEN 45 AND 50")
        .await;
    // The rows alone still form an intact (shorter) chain: only the anchor shows the loss.
    verify(&chain.env()).await.assert_intact(0, 44);
    let problem = verify(&bucket.env(&chain)).await.assert_tampered_at(45);
    assert!(problem.contains("missing"), "{problem}");
}

#[tokio::test]
async fn verification_starts_at_the_retention_checkpoint_and_still_catches_deletions() {
    let bucket = Bucket::new().await;
    let chain = Chain::with_rows(30).await;
    assert_eq!(bucket.anchor(&chain).await, 30);
    chain.append(ROWS - 30).await;

    // Retention of 0 days may prune everything, but only up to the newest anchor (seq 30).
    let outcome = prune_once(chain.store.as_ref(), &chain.key, 0)
        .await
        .expect("prune")
        .expect("an anchor bounds the pruning");
    assert_eq!(outcome.deleted, 30);
    assert_eq!(outcome.checkpoint.map(|c| c.seq), Some(30));
    // The pruning itself is recorded: seq 51, `audit.prune`.
    let pruned = chain.row(ROWS + 1).await;
    assert_eq!(pruned.event.action, "audit.prune");

    let env = bucket.env(&chain);
    let report = verify(&env).await;
    report.assert_intact(30, ROWS + 1);
    assert_eq!(report.seq("anchors_checked"), Some(1), "{}", report.stdout);

    // Deleting the first row after the checkpoint is caught there.
    chain
        .tamper("DELETE FROM audit_events WHERE seq = 31")
        .await;
    let problem = verify(&env).await.assert_tampered_at(31);
    assert!(problem.contains("missing"), "{problem}");
}

#[tokio::test]
async fn a_gap_in_a_later_page_of_a_long_chain_is_caught() {
    // Verification reads pages of 10,000 rows ahead of checking them: 20,000 rows end exactly
    // on a page boundary, and the gap is in the second page.
    let chain = Chain::with_rows_in_batches(20_000, 5_000).await;
    verify(&chain.env()).await.assert_intact(0, 20_000);
    chain
        .tamper(
            "DELETE FROM audit_events WHERE seq = 12345; \
             UPDATE audit_events SET reason = 'later edit' WHERE seq = 19999",
        )
        .await;
    let problem = verify(&chain.env()).await.assert_tampered_at(12_345);
    assert!(problem.contains("missing"), "{problem}");
}

#[tokio::test]
async fn verify_exits_2_when_it_cannot_verify() {
    let chain = Chain::with_rows(3).await;

    // No key.
    let mut env = chain.env();
    env.remove("AUDIT_HMAC_SECRET");
    let result = verify(&env).await;
    assert_eq!(
        result.code, 2,
        "missing AUDIT_HMAC_SECRET: stdout: {}; stderr: {}",
        result.stdout, result.stderr
    );
    assert!(
        result.stderr.contains("AUDIT_HMAC_SECRET"),
        "{}",
        result.stderr
    );

    // The database unreachable: a port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let mut env = chain.env();
    env.insert(
        "DATABASE_URL".into(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    );
    let result = verify(&env).await;
    assert_eq!(
        result.code, 2,
        "unreachable database: stdout: {}; stderr: {}",
        result.stdout, result.stderr
    );
    assert!(result.stderr.contains("cannot verify"), "{}", result.stderr);
    assert!(result.report.is_none(), "no report: {}", result.stdout);

    // And the chain itself is fine.
    verify(&chain.env()).await.assert_intact(0, 3);
}

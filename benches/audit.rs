//! Audit trail throughput on PostgreSQL, measured in one run (`benches/audit.sh`):
//!
//! 1. durable appends per second through [`AuditWriter`] (group commit): `AUDIT_BENCH_CLIENTS`
//!    (64) tasks each call `record_durable` in a loop for `AUDIT_BENCH_SECONDS` (10) seconds;
//!    only acknowledged records count;
//! 2. the baseline: plain single-row INSERTs of audit-shaped rows into a scratch table with the
//!    same columns and indexes (no triggers, no chain), autocommit with synchronous_commit on,
//!    from the same number of concurrent tasks over a deadpool pool of 16 connections;
//! 3. records verified per second: `verify_chain` over the chain from step 1, topped up with
//!    large batches to at least `AUDIT_BENCH_VERIFY_ROWS` (200,000) rows; only the verification
//!    is timed, and then its two halves separately (reading the pages with `audit_range`, and
//!    `Verifier::check` over rows already in memory).
//!
//! Needs DATABASE_URL (a server URL; a fresh database is created and dropped). Prints a table,
//! the writer/plain ratio and PASS/FAIL against the targets (≥ 10,000 durable appends/s,
//! ≥ 200,000 verified records/s). Exits 1 when a target is missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use rack_gateway_bin::audit::verify_chain;
use rack_gateway_core::audit::{
    ActorKind, AuditDecision, AuditEvent, AuditRecord, AuditSink, ChainKey, Keyring, Phase,
    Verifier,
};
use rack_gateway_core::store::{AuditStore, PostgresStore, Store, StoreError};
use rack_gateway_layers::audit::{AuditWriter, WriterConfig};

const SECRET: &[u8] = b"the audit benchmark's HMAC key, 32+ bytes long";
const TARGET_APPENDS: f64 = 10_000.0;
const TARGET_VERIFIED: f64 = 200_000.0;
const BASELINE_POOL: usize = 16;
const TOP_UP_BATCH: usize = 5_000;
/// Rows per page in the split timing (the page size of `verify_chain`).
const PAGE: usize = 10_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A request-shaped event (what the proxy records for `GET /apps`).
fn event(n: u64) -> AuditEvent {
    let mut event = AuditEvent::system(
        "app.list",
        "convox:app:list granted by role deployer (user permission)",
    );
    event.actor_kind = ActorKind::User;
    event.actor_email = format!("user{}@example.com", n % 50);
    event.actor_name = format!("User {}", n % 50);
    event.client_ip = Some("10.1.2.3".into());
    event.user_agent = Some("convox/3.19.4 (linux; amd64) go1.22".into());
    event.phase = Phase::Complete;
    event.resource = Some(format!("app-{}", n % 20));
    event.method = Some("GET".into());
    event.path = Some("/apps".into());
    event.decision = AuditDecision::Allow;
    event.http_status = 200;
    event.latency_ms = n % 40;
    event.details = format!("{{\"query\":{{}},\"rack\":\"production\",\"n\":{n}}}");
    event
}

/// The writer's sink, counting append transactions (to show the writer's batch sizes).
struct Counting {
    inner: Arc<PostgresStore>,
    appends: AtomicU64,
}

#[async_trait]
impl AuditSink for Counting {
    async fn append_audit(
        &self,
        key: &ChainKey,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.inner.append_audit(key, events).await
    }
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        self.inner.audit_head().await
    }
}

struct WriterResult {
    acked: u64,
    failed: u64,
    transactions: u64,
    elapsed: Duration,
}

/// (a) Durable appends through the group-commit writer.
async fn bench_writer(
    store: Arc<PostgresStore>,
    clients: usize,
    duration: Duration,
) -> WriterResult {
    let counting = Arc::new(Counting {
        inner: store,
        appends: AtomicU64::new(0),
    });
    let (writer, task) = AuditWriter::spawn(
        counting.clone(),
        ChainKey::new(SECRET),
        WriterConfig::default(),
    );
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients as u64)
        .map(|client| {
            let (writer, acked, failed) = (writer.clone(), acked.clone(), failed.clone());
            tokio::spawn(async move {
                let mut n = client << 32;
                while Instant::now() < deadline {
                    n += 1;
                    match writer.record_durable(event(n)).await {
                        Ok(_) => acked.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for handle in tasks {
        handle.await.expect("writer client task");
    }
    let elapsed = start.elapsed();
    drop(writer);
    task.finished().await;
    WriterResult {
        acked: acked.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        transactions: counting.appends.load(Ordering::Relaxed),
        elapsed,
    }
}

/// (b) Plain single-row INSERTs, autocommit, into a copy of the table without triggers.
async fn bench_plain(
    database_url: &str,
    clients: usize,
    duration: Duration,
) -> Result<(u64, Duration, String), BoxError> {
    let config: tokio_postgres::Config = database_url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(BASELINE_POOL)
        .build()?;
    let client = pool.get().await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS audit_baseline;
             CREATE TABLE audit_baseline (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);",
        )
        .await?;
    let synchronous_commit: String = client
        .query_one("SHOW synchronous_commit", &[])
        .await?
        .get(0);
    drop(client);

    let key = ChainKey::new(SECRET);
    let next = Arc::new(AtomicU64::new(0));
    let inserted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (pool, next, inserted, key) =
                (pool.clone(), next.clone(), inserted.clone(), key.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let seq = next.fetch_add(1, Ordering::Relaxed) + 1;
                    // An audit-shaped row with real MAC-sized values (not chained).
                    let record = AuditRecord {
                        seq,
                        recorded_at: Utc::now(),
                        event: event(seq),
                        key_id: key.id().to_owned(),
                        prev_mac: [0; 32],
                        mac: [0; 32],
                    };
                    let client = pool.get().await?;
                    let statement = client
                        .prepare_cached(
                            "INSERT INTO audit_baseline (seq, recorded_at, request_id, actor_kind, \
                             actor_email, actor_name, token_id, token_name, client_ip, user_agent, \
                             action, phase, resource, method, path, decision, reason, http_status, \
                             latency_ms, details, key_id, prev_mac, mac) VALUES ($1, $2, $3, $4, \
                             $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                             $20, $21, $22, $23)",
                        )
                        .await?;
                    let e = &record.event;
                    let seq = i64::try_from(record.seq)?;
                    let status = i32::from(e.http_status);
                    let latency = i64::try_from(e.latency_ms)?;
                    client
                        .execute(
                            &statement,
                            &[
                                &seq,
                                &record.recorded_at,
                                &e.request_id,
                                &e.actor_kind.as_str(),
                                &e.actor_email,
                                &e.actor_name,
                                &e.token_id,
                                &e.token_name,
                                &e.client_ip,
                                &e.user_agent,
                                &e.action,
                                &e.phase.as_str(),
                                &e.resource,
                                &e.method,
                                &e.path,
                                &e.decision.as_str(),
                                &e.reason,
                                &status,
                                &latency,
                                &e.details,
                                &record.key_id,
                                &record.prev_mac.as_slice(),
                                &record.mac.as_slice(),
                            ],
                        )
                        .await?;
                    inserted.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), BoxError>(())
            })
        })
        .collect();
    for handle in tasks {
        handle.await??;
    }
    let elapsed = start.elapsed();
    Ok((
        inserted.load(Ordering::Relaxed),
        elapsed,
        synchronous_commit,
    ))
}

/// CPU seconds used so far by this process and by the whole machine (Linux `/proc`), to tell
/// whether reading is bound by this process or by the server.
fn cpu_seconds() -> Option<(f64, f64)> {
    // Clock ticks per second: 100 on every Linux platform this runs on.
    const TICKS: f64 = 100.0;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
    let own_ticks: f64 =
        fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let all = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> = all
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user, nice, system, (idle, iowait excluded), irq, softirq, steal.
    let busy: f64 = cpu
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some((own_ticks / TICKS, busy / TICKS))
}

/// Splits verification in two: reading the pages, and checking rows already in memory.
async fn split_verify(
    store: &PostgresStore,
    keyring: &Keyring,
) -> Result<(Duration, Duration, u64), BoxError> {
    let start = store.audit_start().await?;
    let mut pages = Vec::new();
    let read_started = Instant::now();
    let cpu_before = cpu_seconds();
    let mut from = start.seq + 1;
    loop {
        let rows = store.audit_range(from, PAGE).await?;
        let Some(last) = rows.last() else { break };
        from = last.seq + 1;
        let short = rows.len() < PAGE;
        pages.push(rows);
        if short {
            break;
        }
    }
    let read = read_started.elapsed();
    if let (Some((own0, all0)), Some((own1, all1))) = (cpu_before, cpu_seconds()) {
        println!(
            "reading {} rows one page at a time: {:.2}s wall; CPU: this process {:.2}s, everything else (PostgreSQL) {:.2}s",
            pages.iter().map(Vec::len).sum::<usize>(),
            read.as_secs_f64(),
            own1 - own0,
            (all1 - all0) - (own1 - own0)
        );
    }
    let check_started = Instant::now();
    let mut verifier = Verifier::new(keyring.clone(), start);
    for row in pages.iter().flatten() {
        verifier.check(row)?;
    }
    Ok((read, check_started.elapsed(), verifier.checked()))
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

async fn run() -> Result<bool, BoxError> {
    let server = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL is not set: run benches/audit.sh, which starts a throwaway PostgreSQL"
    })?;
    let clients: usize = setting("AUDIT_BENCH_CLIENTS", 64);
    let duration = Duration::from_secs(setting("AUDIT_BENCH_SECONDS", 10));
    let verify_rows: u64 = setting("AUDIT_BENCH_VERIFY_ROWS", 200_000);

    // A fresh database, dropped at the end.
    let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let name = format!("rgw_audit_bench_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let (base, _) = server
        .rsplit_once('/')
        .ok_or("DATABASE_URL has no database path")?;
    let url = format!("{base}/{name}");

    let result = async {
        let store = Arc::new(PostgresStore::connect(&url, 16).await?);
        store.migrate().await?;
        let (fsync, version): (String, String) = {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let fsync = c.query_one("SHOW fsync", &[]).await?.get(0);
            let version = c.query_one("SHOW server_version", &[]).await?.get(0);
            (fsync, version)
        };
        eprintln!(
            "audit-bench: PostgreSQL {version} (fsync={fsync}), {clients} clients, {}s per write phase, >= {verify_rows} rows to verify",
            duration.as_secs()
        );

        eprintln!("audit-bench: (a) durable appends through AuditWriter …");
        let writer = bench_writer(store.clone(), clients, duration).await;
        eprintln!("audit-bench: (b) plain single-row INSERTs …");
        let (plain, plain_elapsed, synchronous_commit) =
            bench_plain(&url, clients, duration).await?;

        let head = store.audit_head().await?.map_or(0, |r| r.seq);
        if head < verify_rows {
            eprintln!("audit-bench: (c) topping the chain up from {head} to {verify_rows} rows …");
        }
        eprintln!("audit-bench: (c) verifying …");
        let mut n = head;
        while n < verify_rows {
            let batch = (verify_rows - n).min(TOP_UP_BATCH as u64);
            let events = (n..n + batch).map(event).collect();
            n += store
                .append_audit(&ChainKey::new(SECRET), events)
                .await?
                .len() as u64;
        }
        let keyring = Keyring::new(ChainKey::new(SECRET), vec![]);
        // One untimed pass warms the buffer cache, as a routine verification would find it.
        let warm = verify_chain(store.as_ref(), &keyring, None).await?;
        if !warm.intact {
            return Err(format!("the benchmark chain does not verify: {warm:?}").into());
        }
        let started = Instant::now();
        let report = verify_chain(store.as_ref(), &keyring, None).await?;
        let verify_elapsed = started.elapsed();
        if !report.intact {
            return Err(format!("the benchmark chain does not verify: {report:?}").into());
        }
        let (read, check, split_rows) = split_verify(&store, &keyring).await?;

        let writer_rate = rate(writer.acked, writer.elapsed);
        let plain_rate = rate(plain, plain_elapsed);
        let verify_rate = rate(report.checked, verify_elapsed);
        println!();
        let table = [
            (
                format!("(a) durable appends, AuditWriter, {clients} clients"),
                writer.acked,
                writer.elapsed,
                writer_rate,
            ),
            (
                format!("(b) plain INSERTs, autocommit, pool of {BASELINE_POOL}"),
                plain,
                plain_elapsed,
                plain_rate,
            ),
            (
                "(c) records verified, verify_chain".to_owned(),
                report.checked,
                verify_elapsed,
                verify_rate,
            ),
        ];
        println!("| {:<46} | {:>8} | {:>7} | {:>10} |", "measurement", "count", "seconds", "per second");
        println!("|{:-<48}|{:->10}|{:->9}|{:->12}|", "", "", "", "");
        for (label, count, elapsed, per_second) in table {
            println!(
                "| {label:<46} | {count:>8} | {:>7.2} | {per_second:>10.0} |",
                elapsed.as_secs_f64()
            );
        }
        println!();
        println!(
            "writer/plain ratio: {:.1}x   (writer: {} transactions, {:.1} records each; {} failed; plain: synchronous_commit={synchronous_commit})",
            writer_rate / plain_rate,
            writer.transactions,
            writer.acked as f64 / writer.transactions.max(1) as f64,
            writer.failed,
        );
        println!(
            "verification split over {split_rows} rows: audit_range {:.2}s ({:.0} rows/s), Verifier::check {:.2}s ({:.0} rows/s)",
            read.as_secs_f64(),
            rate(split_rows, read),
            check.as_secs_f64(),
            rate(split_rows, check),
        );
        let appends_ok = writer_rate >= TARGET_APPENDS;
        let verify_ok = verify_rate >= TARGET_VERIFIED;
        println!(
            "{}: durable appends {:.0}/s (target >= {TARGET_APPENDS:.0}/s)",
            verdict(appends_ok),
            writer_rate
        );
        println!(
            "{}: verified records {:.0}/s (target >= {TARGET_VERIFIED:.0}/s)",
            verdict(verify_ok),
            verify_rate
        );
        Ok::<bool, BoxError>(appends_ok && verify_ok)
    }
    .await;

    // Other sessions (the pools) are gone with the stores; drop the database whatever happened.
    if let Err(error) = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
    {
        eprintln!("audit-bench: could not drop database {name}: {error}");
    }
    result
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("audit-bench: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

//! Audit storage conformance: every behaviour below runs against the embedded store (in a
//! temporary directory) and against PostgreSQL (in a fresh database per test, on the server
//! named by `DATABASE_URL`; run through `scripts/with-postgres` to get a throwaway one).
//!
//! Tampering is attempted through a raw connection of its own (tokio-postgres or rusqlite), as
//! someone with database access but without the gateway would.
#![cfg(all(feature = "postgres", feature = "sqlite"))]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rack_gateway_core::audit::{
    seal, ActorKind, Anchor, AnchorRef, AuditDecision, AuditEvent, AuditRecord, ChainHead,
    ChainKey, Keyring, Phase, Verifier,
};
use rack_gateway_core::store::{AuditFilter, PruneOutcome, Store, StoreError};

#[macro_use]
mod common;

use common::{admin, Opener};

/// Raw access to the data behind a store, bypassing it, as someone with database access would.
trait RawAccess {
    /// Runs `sql` through a raw connection of its own; the database's error text on failure.
    async fn raw(&self, sql: &str) -> Result<(), String>;
    /// Inserts a sealed record through a raw connection, bypassing the store.
    async fn raw_insert(&self, record: &AuditRecord);
}

impl RawAccess for Opener {
    async fn raw(&self, sql: &str) -> Result<(), String> {
        match self {
            Opener::Embedded(dir) => {
                let conn = sqlite(dir);
                conn.execute_batch(sql).map_err(|e| e.to_string())
            }
            Opener::Postgres(url) => admin(url)
                .await
                .batch_execute(sql)
                .await
                .map_err(|e| format!("{:?}", e.as_db_error().map(|db| db.message()))),
        }
    }

    async fn raw_insert(&self, record: &AuditRecord) {
        let event = &record.event;
        let seq = i64::try_from(record.seq).unwrap();
        let latency = i64::try_from(event.latency_ms).unwrap();
        let sql = "INSERT INTO audit_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                   $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)";
        match self {
            Opener::Embedded(dir) => {
                sqlite(dir)
                    .execute(
                        sql,
                        rusqlite::params![
                            seq,
                            record.recorded_at.timestamp_micros(),
                            event.request_id,
                            event.actor_kind.as_str(),
                            event.actor_email,
                            event.actor_name,
                            event.token_id,
                            event.token_name,
                            event.client_ip,
                            event.user_agent,
                            event.action,
                            event.phase.as_str(),
                            event.resource,
                            event.method,
                            event.path,
                            event.decision.as_str(),
                            event.reason,
                            i64::from(event.http_status),
                            latency,
                            event.details,
                            record.key_id,
                            record.prev_mac.as_slice(),
                            record.mac.as_slice(),
                        ],
                    )
                    .unwrap();
            }
            Opener::Postgres(url) => {
                let status = i32::from(event.http_status);
                admin(url)
                    .await
                    .execute(
                        sql,
                        &[
                            &seq,
                            &record.recorded_at,
                            &event.request_id,
                            &event.actor_kind.as_str(),
                            &event.actor_email,
                            &event.actor_name,
                            &event.token_id,
                            &event.token_name,
                            &event.client_ip,
                            &event.user_agent,
                            &event.action,
                            &event.phase.as_str(),
                            &event.resource,
                            &event.method,
                            &event.path,
                            &event.decision.as_str(),
                            &event.reason,
                            &status,
                            &latency,
                            &event.details,
                            &record.key_id,
                            &record.prev_mac.as_slice(),
                            &record.mac.as_slice(),
                        ],
                    )
                    .await
                    .unwrap();
            }
        }
    }
}

fn sqlite(dir: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("rack-gateway.sqlite3")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

conformance!(
    appends_read_back_exactly_and_verify,
    concurrent_appends_from_two_instances_form_one_chain,
    a_failed_append_leaves_no_trace,
    the_database_refuses_to_change_audit_rows,
    pruning_keeps_a_contiguous_suffix_and_moves_the_checkpoint,
    pruning_everything_keeps_the_chain_linked,
    anchors_round_trip,
    leases_exclude_other_holders_until_expiry,
    queries_filter_and_paginate_without_gaps,
);

// ---------------------------------------------------------------------------------------------
// Helpers

fn key() -> ChainKey {
    ChainKey::new(b"store-conformance-audit-key-0123456789")
}

async fn migrated(store: &Arc<dyn Store>) {
    store.migrate().await.unwrap();
}

/// A varied event: every actor kind, absent and present optional fields, non-ASCII text.
fn event(i: usize) -> AuditEvent {
    let (kind, email, name, token) = match i % 4 {
        0 => (ActorKind::User, "ann@example.com", "Ann Ø", None),
        1 => (ActorKind::User, "bob@example.com", "Bob", None),
        2 => (ActorKind::ApiToken, "ann@example.com", "Ann Ø", Some("ci")),
        _ => (ActorKind::Anonymous, "", "", None),
    };
    let action = ["app.list", "env.set", "auth.login"][i % 3];
    let (decision, status) = match i % 5 {
        0..=2 => (AuditDecision::Allow, 200),
        3 => (AuditDecision::Deny, 403),
        _ => (AuditDecision::Error, 502),
    };
    AuditEvent {
        request_id: format!("req-{i}"),
        actor_kind: kind,
        actor_email: email.into(),
        actor_name: name.into(),
        token_id: token.map(|_| format!("tok-{i}")),
        token_name: token.map(str::to_owned),
        client_ip: i.is_multiple_of(2).then(|| "2001:db8::1".to_owned()),
        user_agent: (i % 3 != 1).then(|| format!("convox/3.{i} (linux) ✓")),
        action: action.into(),
        phase: if i.is_multiple_of(7) {
            Phase::Intent
        } else {
            Phase::Complete
        },
        resource: (i % 2 == 1).then(|| format!("app-{}/SECRET_KEY", i % 3)),
        method: Some(if action == "env.set" { "POST" } else { "GET" }.into()),
        path: Some(format!("/apps/app-{}/environment?token=[REDACTED]", i % 3)),
        decision,
        reason: format!("reason {i}: granted by role ops – “quoted”"),
        http_status: status,
        latency_ms: (i as u64) * 3,
        details: format!(r#"{{"a":{i},"b":"x y","z":[1,2.50,null]}}"#),
    }
}

fn events(from: usize, n: usize) -> Vec<AuditEvent> {
    (from..from + n).map(event).collect()
}

/// Every stored row, read in pages of `page` rows.
async fn rows_in_pages(store: &Arc<dyn Store>, page: usize) -> Vec<AuditRecord> {
    let mut rows = Vec::new();
    let mut from = 1;
    loop {
        let page = store.audit_range(from, page).await.unwrap();
        let Some(last) = page.last() else {
            return rows;
        };
        from = last.seq + 1;
        rows.extend(page);
    }
}

async fn all_rows(store: &Arc<dyn Store>) -> Vec<AuditRecord> {
    rows_in_pages(store, 1000).await
}

/// Verifies every stored row from the store's own starting point; returns the rows checked.
async fn verify_all(store: &Arc<dyn Store>) -> u64 {
    let start = store.audit_start().await.unwrap();
    let mut verifier = Verifier::new(Keyring::new(key(), vec![]), start);
    for record in all_rows(store).await {
        if let Err(tamper) = verifier.check(&record) {
            panic!("{}: chain broken: {tamper}", store.backend());
        }
    }
    verifier.checked()
}

fn head_of(record: &AuditRecord) -> ChainHead {
    ChainHead {
        seq: record.seq,
        mac: record.mac,
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviours

async fn appends_read_back_exactly_and_verify(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let key = key();
    assert_eq!(store.audit_head().await.unwrap(), None);
    assert_eq!(store.audit_start().await.unwrap(), ChainHead::genesis());
    assert!(store.append_audit(&key, vec![]).await.unwrap().is_empty());

    let mut unusual = event(1);
    unusual.user_agent = Some("ü".repeat(600));
    unusual.reason = "NUL\0inside".into();
    unusual.details = r#"{"k":"\u0000 \"q\" é"}"#.into();
    unusual.path = Some("/apps?t=rgw_abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE".into());
    unusual.request_id = "rgs%5Fabcdefghijklmnopqrstuvwxyz0123456789-_ABCDE".into();
    let mut appended = Vec::new();
    for (i, size) in [1, 3, 100, 7].into_iter().enumerate() {
        let mut batch = events(i * 1000, size);
        if i == 1 {
            batch.push(unusual.clone());
        }
        let sealed = store.append_audit(&key, batch).await.unwrap();
        assert_eq!(sealed.len(), size + usize::from(i == 1));
        appended.extend(sealed);
    }
    for (i, record) in appended.iter().enumerate() {
        assert_eq!(record.seq, i as u64 + 1, "seqs run on across batches");
        let prev = if i == 0 { [0; 32] } else { appended[i - 1].mac };
        assert_eq!(record.prev_mac, prev);
        assert_eq!(record.recorded_at.timestamp_subsec_nanos() % 1000, 0);
    }
    let stored_unusual = &appended[4].event;
    assert_eq!(
        stored_unusual.user_agent.as_ref().unwrap().chars().count(),
        512
    );
    assert_eq!(stored_unusual.reason, "NUL\u{fffd}inside");
    assert_eq!(stored_unusual.details, unusual.details);
    // Tokens are redacted before sealing: what is stored (and verifies) holds none.
    assert_eq!(
        stored_unusual.path.as_deref(),
        Some("/apps?t=rgw_[REDACTED]")
    );
    assert_eq!(stored_unusual.request_id, "rgs%5F[REDACTED]");

    // Read back exactly as sealed, by another instance too, whole and in pages.
    assert_eq!(all_rows(&store).await, appended);
    let other = opener.open().await;
    assert_eq!(all_rows(&other).await, appended);
    assert_eq!(rows_in_pages(&other, 4).await, appended);
    assert_eq!(other.audit_range(50, 5).await.unwrap(), appended[49..54]);
    assert!(other.audit_range(u64::MAX, 5).await.unwrap().is_empty());
    assert!(other.audit_range(1, 0).await.unwrap().is_empty());
    assert_eq!(store.audit_head().await.unwrap().as_ref(), appended.last());
    assert_eq!(verify_all(&other).await, appended.len() as u64);
}

async fn concurrent_appends_from_two_instances_form_one_chain(
    store: Arc<dyn Store>,
    opener: Opener,
) {
    const TASKS: usize = 20;
    const BATCHES: usize = 50;
    const BATCH: usize = 2;
    migrated(&store).await;
    let other = opener.open().await;
    let mut tasks = tokio::task::JoinSet::new();
    for instance in [&store, &other] {
        for task in 0..TASKS {
            let instance = Arc::clone(instance);
            tasks.spawn(async move {
                let key = key();
                let mut mine = Vec::new();
                for batch in 0..BATCHES {
                    let records = instance
                        .append_audit(&key, events(task * 1000 + batch * BATCH, BATCH))
                        .await
                        .unwrap();
                    assert_eq!(records.len(), BATCH);
                    assert_eq!(records[1].seq, records[0].seq + 1, "a batch is contiguous");
                    mine.extend(records);
                }
                mine
            });
        }
    }
    let mut acknowledged = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acknowledged.extend(done.unwrap());
    }
    acknowledged.sort_by_key(|r| r.seq);
    let stored = all_rows(&store).await;
    assert_eq!(stored.len(), 2 * TASKS * BATCHES * BATCH);
    assert_eq!(
        stored, acknowledged,
        "every acknowledged record is stored as returned"
    );
    assert_eq!(verify_all(&other).await, stored.len() as u64);
}

async fn a_failed_append_leaves_no_trace(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let key = key();
    let first = store.append_audit(&key, events(0, 2)).await.unwrap();
    // A trigger of the test's own makes the row with seq 5 fail, in the middle of a batch.
    let trap = match opener {
        Opener::Embedded(_) => {
            "CREATE TRIGGER trap BEFORE INSERT ON audit_events WHEN NEW.seq = 5 \
             BEGIN SELECT RAISE(ABORT, 'trapped'); END"
        }
        Opener::Postgres(_) => {
            "CREATE FUNCTION trap() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.seq = 5 THEN RAISE EXCEPTION 'trapped'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER trap BEFORE INSERT ON audit_events \
                 FOR EACH ROW EXECUTE FUNCTION trap()"
        }
    };
    opener.raw(trap).await.unwrap();
    assert!(store.append_audit(&key, events(2, 4)).await.is_err());
    assert_eq!(
        all_rows(&store).await,
        first,
        "rows 3 and 4 of the batch were not kept"
    );
    assert_eq!(store.audit_head().await.unwrap().as_ref(), first.last());
    let untrap = match opener {
        Opener::Embedded(_) => "DROP TRIGGER trap",
        Opener::Postgres(_) => "DROP TRIGGER trap ON audit_events",
    };
    opener.raw(untrap).await.unwrap();

    // The retry starts from the same head.
    let retried = store.append_audit(&key, events(2, 4)).await.unwrap();
    assert_eq!(retried[0].seq, 3);
    assert_eq!(retried[0].prev_mac, first[1].mac);
    assert_eq!(verify_all(&store).await, 6);
}

async fn the_database_refuses_to_change_audit_rows(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let before = store.append_audit(&key(), events(0, 3)).await.unwrap();
    let mut attempts = vec![
        "UPDATE audit_events SET reason = 'edited' WHERE seq = 2",
        "UPDATE audit_events SET seq = seq + 100",
        "DELETE FROM audit_events WHERE seq = 3",
        "DELETE FROM audit_events",
        "INSERT INTO audit_checkpoint (seq, mac, pruned_at) SELECT seq, mac, 0 FROM audit_events WHERE seq = 1",
    ];
    if let Opener::Postgres(_) = opener {
        attempts.pop();
        attempts.extend([
            "TRUNCATE audit_events",
            "TRUNCATE audit_events CASCADE",
            "INSERT INTO audit_checkpoint (seq, mac, pruned_at) SELECT seq, mac, now() FROM audit_events WHERE seq = 1",
            // The retention setting only counts inside the transaction that set it.
            "BEGIN; SET LOCAL rgw.audit_prune = 'on'; COMMIT; DELETE FROM audit_events",
            "SET rgw.audit_prune = 'off'; DELETE FROM audit_events",
        ]);
    }
    for sql in attempts {
        let refused = opener.raw(sql).await;
        assert!(refused.is_err(), "{sql}: accepted");
        let message = refused.unwrap_err();
        assert!(
            message.contains("append-only") || message.contains("retention only"),
            "{sql}: refused for another reason: {message}"
        );
    }
    assert_eq!(all_rows(&store).await, before);
    assert_eq!(store.audit_start().await.unwrap(), ChainHead::genesis());
    assert_eq!(verify_all(&store).await, 3);
}

async fn pruning_keeps_a_contiguous_suffix_and_moves_the_checkpoint(
    store: Arc<dyn Store>,
    opener: Opener,
) {
    migrated(&store).await;
    let key = key();
    let old = store.append_audit(&key, events(0, 5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cut = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let recent = store.append_audit(&key, events(5, 5)).await.unwrap();

    // Nothing is old enough, or nothing is at or below up_to_seq.
    let nothing = PruneOutcome {
        deleted: 0,
        checkpoint: None,
    };
    assert_eq!(
        store.prune_audit(10, old[0].recorded_at).await.unwrap(),
        nothing
    );
    assert_eq!(store.prune_audit(0, cut).await.unwrap(), nothing);

    // up_to_seq bounds the run, then the age does.
    let first = store.prune_audit(3, cut).await.unwrap();
    assert_eq!(first.deleted, 3);
    assert_eq!(first.checkpoint, Some(head_of(&old[2])));
    let second = store.prune_audit(u64::MAX, cut).await.unwrap();
    assert_eq!(second.deleted, 2);
    assert_eq!(second.checkpoint, Some(head_of(&old[4])));
    let again = store.prune_audit(u64::MAX, cut).await.unwrap();
    assert_eq!((again.deleted, again.checkpoint), (0, second.checkpoint));
    assert_eq!(store.audit_start().await.unwrap(), head_of(&old[4]));
    assert_eq!(all_rows(&store).await, recent);
    assert_eq!(verify_all(&store).await, 5);

    // A row stamped later than its successors (another instance's clock) stops the run there:
    // rows after it are old enough but stay, so no hole opens.
    let long_ago = cut - chrono::Duration::days(30);
    let future = Utc::now() + chrono::Duration::days(1);
    let mut head = head_of(recent.last().unwrap());
    let mut skewed = Vec::new();
    for at in [long_ago, future, long_ago] {
        let record = seal(head, &key, at, events(20 + skewed.len(), 1)).remove(0);
        opener.raw_insert(&record).await;
        head = head_of(&record);
        skewed.push(record);
    }
    let third = store.prune_audit(u64::MAX, Utc::now()).await.unwrap();
    assert_eq!(
        third.deleted, 6,
        "rows 6..=11 go; 12 is too recent, so 13 stays too"
    );
    assert_eq!(third.checkpoint, Some(head_of(&skewed[0])));
    assert_eq!(all_rows(&store).await, skewed[1..]);

    // Appends continue the chain; the checkpoint and the rows survive reopening.
    let later = store.append_audit(&key, events(30, 2)).await.unwrap();
    assert_eq!(later[0].seq, 14);
    assert_eq!(later[0].prev_mac, skewed[2].mac);
    drop(store);
    let reopened = opener.open().await;
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.audit_start().await.unwrap(), head_of(&skewed[0]));
    assert_eq!(verify_all(&reopened).await, 4);
    assert_eq!(all_rows(&reopened).await[2..], later);
}

async fn pruning_everything_keeps_the_chain_linked(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let key = key();
    let first = store.append_audit(&key, events(0, 4)).await.unwrap();
    let after = Utc::now() + chrono::Duration::seconds(1);
    let outcome = store.prune_audit(u64::MAX, after).await.unwrap();
    assert_eq!(outcome.deleted, 4);
    assert_eq!(outcome.checkpoint, Some(head_of(&first[3])));
    assert_eq!(store.audit_head().await.unwrap(), None);

    // With no rows left, the next append links to the checkpoint, from any instance.
    let other = opener.open().await;
    let next = other.append_audit(&key, events(4, 2)).await.unwrap();
    assert_eq!(next[0].seq, 5);
    assert_eq!(next[0].prev_mac, first[3].mac);
    assert_eq!(verify_all(&store).await, 2);
    assert_eq!(store.prune_audit(4, after).await.unwrap().deleted, 0);
}

fn anchor(seq: u64, prev: Option<AnchorRef>) -> Anchor {
    let at = DateTime::from_timestamp_micros(1_767_323_045_000_006).unwrap();
    Anchor::new(
        "prod",
        seq,
        &[seq as u8; 32],
        "0123456789abcdef",
        &at,
        &at,
        prev,
    )
}

async fn anchors_round_trip(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    assert_eq!(store.latest_anchor().await.unwrap(), None);
    assert!(store.list_anchors().await.unwrap().is_empty());
    let first = anchor(2, None);
    let second = anchor(
        5,
        Some(AnchorRef {
            key: "prod/2026/01/02/00000000000000000002.json".into(),
            seq: 2,
            mac: first.mac.clone(),
        }),
    );
    let third = anchor(9, None);
    let keyed = |a: &Anchor| (format!("prod/2026/01/02/{:020}.json", a.seq), a.clone());
    // Recorded out of order: reading orders by seq.
    for a in [&second, &first, &third] {
        let (object_key, a) = keyed(a);
        store.record_anchor(&object_key, &a).await.unwrap();
    }
    // The same anchor again is fine; another body under the same key is not.
    let (object_key, a) = keyed(&third);
    store.record_anchor(&object_key, &a).await.unwrap();
    assert!(matches!(
        store.record_anchor(&object_key, &anchor(10, None)).await,
        Err(StoreError::Conflict(_))
    ));
    drop(store);
    let reopened = opener.open().await;
    assert_eq!(reopened.latest_anchor().await.unwrap(), Some(keyed(&third)));
    assert_eq!(
        reopened.list_anchors().await.unwrap(),
        [keyed(&first), keyed(&second), keyed(&third)]
    );
}

async fn leases_exclude_other_holders_until_expiry(store: Arc<dyn Store>, opener: Opener) {
    migrated(&store).await;
    let other = opener.open().await;
    let ttl = Duration::from_millis(1000);
    assert!(store.try_lease("anchor", "a", ttl).await.unwrap());
    assert!(!other.try_lease("anchor", "b", ttl).await.unwrap());
    assert!(
        other.try_lease("retention", "b", ttl).await.unwrap(),
        "names are independent"
    );
    // Renewing keeps it past the first expiry.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(store.try_lease("anchor", "a", ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!other.try_lease("anchor", "b", ttl).await.unwrap());
    // Expired: the other holder takes it.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(other.try_lease("anchor", "b", ttl).await.unwrap());
    assert!(!store.try_lease("anchor", "a", ttl).await.unwrap());
    // Only the holder can release it.
    store.release_lease("anchor", "a").await.unwrap();
    assert!(!store.try_lease("anchor", "a", ttl).await.unwrap());
    other.release_lease("anchor", "b").await.unwrap();
    assert!(store.try_lease("anchor", "a", ttl).await.unwrap());

    // Many contenders at once: exactly one wins.
    let mut contenders = tokio::task::JoinSet::new();
    for i in 0..10 {
        let instance = Arc::clone(if i % 2 == 0 { &store } else { &other });
        contenders.spawn(async move {
            instance
                .try_lease("race", &format!("holder-{i}"), Duration::from_secs(60))
                .await
                .unwrap()
        });
    }
    let mut winners = 0;
    while let Some(won) = contenders.join_next().await {
        winners += usize::from(won.unwrap());
    }
    assert_eq!(winners, 1);
}

fn matches(filter: &AuditFilter, record: &AuditRecord) -> bool {
    let event = &record.event;
    filter
        .actor
        .as_ref()
        .is_none_or(|actor| event.actor_email == *actor || event.token_name.as_ref() == Some(actor))
        && filter.action.as_ref().is_none_or(|a| event.action == *a)
        && filter.decision.is_none_or(|d| event.decision == d)
        && filter.status.is_none_or(|s| event.http_status == s)
        && filter.since.is_none_or(|t| record.recorded_at >= t)
        && filter.until.is_none_or(|t| record.recorded_at < t)
}

/// Reads every page of `filter` and checks it against the rows filtered here.
async fn check_pages(
    store: &Arc<dyn Store>,
    all: &[AuditRecord],
    filter: AuditFilter,
    page: usize,
) {
    let mut expected: Vec<&AuditRecord> = all.iter().filter(|r| matches(&filter, r)).collect();
    if !filter.oldest_first {
        expected.reverse();
    }
    let mut got = Vec::new();
    let mut cursor = filter.clone();
    loop {
        let rows = store.audit_query(&cursor, page).await.unwrap();
        assert!(rows.len() <= page);
        let Some(last) = rows.last() else { break };
        cursor.cursor = Some(last.seq);
        let full = rows.len() == page;
        got.extend(rows);
        if !full {
            break;
        }
    }
    let got: Vec<&AuditRecord> = got.iter().collect();
    assert_eq!(got, expected, "{filter:?}");
}

async fn queries_filter_and_paginate_without_gaps(store: Arc<dyn Store>, _: Opener) {
    migrated(&store).await;
    let key = key();
    let mut all = Vec::new();
    let mut cuts = Vec::new();
    for batch in 0..6 {
        all.extend(
            store
                .append_audit(&key, events(batch * 10, 10))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
        cuts.push(Utc::now());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let filters = [
        AuditFilter::default(),
        AuditFilter {
            actor: Some("ann@example.com".into()),
            ..AuditFilter::default()
        },
        AuditFilter {
            actor: Some("ci".into()),
            ..AuditFilter::default()
        },
        AuditFilter {
            action: Some("env.set".into()),
            decision: Some(AuditDecision::Allow),
            ..AuditFilter::default()
        },
        AuditFilter {
            status: Some(403),
            ..AuditFilter::default()
        },
        AuditFilter {
            decision: Some(AuditDecision::Error),
            since: Some(cuts[1]),
            until: Some(cuts[4]),
            ..AuditFilter::default()
        },
        AuditFilter {
            actor: Some("nobody@example.com".into()),
            ..AuditFilter::default()
        },
    ];
    for filter in filters {
        for oldest_first in [false, true] {
            let filter = AuditFilter {
                oldest_first,
                ..filter.clone()
            };
            for page in [1, 7, 100] {
                check_pages(&store, &all, filter.clone(), page).await;
            }
        }
    }
    // A cursor starts the listing after it, in either direction; the limit caps it.
    let newest = AuditFilter {
        cursor: Some(30),
        ..AuditFilter::default()
    };
    let seqs: Vec<u64> = store
        .audit_query(&newest, 3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [29, 28, 27]);
    let oldest = AuditFilter {
        cursor: Some(30),
        oldest_first: true,
        ..AuditFilter::default()
    };
    let seqs: Vec<u64> = store
        .audit_query(&oldest, 3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [31, 32, 33]);
    assert!(store.audit_query(&oldest, 0).await.unwrap().is_empty());
}

//! Anchoring against a real S3-compatible server with Object Lock (moto, started by
//! `scripts/with-s3 cargo test -p rack-gateway-bin --test anchors_s3`).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rack_gateway_bin::anchors::{
    check_anchors, claims_for_verify, read_anchor, s3_client, write_anchor_once, AnchorCheck,
    AnchorConfig, AnchorError, AnchorOutcome, AnchorProblem, AnchorWriter,
};
use rack_gateway_bin::config::Env;
use rack_gateway_core::audit::encode::hex;
use rack_gateway_core::audit::{Anchor, AnchorRef, AuditEvent, AuditRecord, ChainKey};
use rack_gateway_core::store::{EmbeddedStore, Store};
use tempfile::TempDir;

const CHAIN: &str = "test-chain";

struct Fixture {
    _dir: TempDir,
    store: Arc<dyn Store>,
    s3: aws_sdk_s3::Client,
    config: AnchorConfig,
    key: ChainKey,
}

impl Fixture {
    /// A fresh Object Lock bucket and an empty embedded store.
    async fn new(extra: &[(&str, &str)]) -> Fixture {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").expect(
            "AWS_ENDPOINT_URL_S3 is not set: run `scripts/with-s3 cargo test -p rack-gateway-bin \
             --test anchors_s3`, which starts an S3-compatible server (moto)",
        );
        let bucket = format!("rgw-anchors-{}", uuid::Uuid::new_v4().simple());
        let mut pairs = vec![
            ("AUDIT_ANCHOR_BUCKET", bucket.as_str()),
            ("AUDIT_ANCHOR_CHAIN_ID", CHAIN),
            ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
        ];
        pairs.extend_from_slice(extra);
        let config = AnchorConfig::from_env(&Env::from_pairs(pairs))
            .expect("valid anchor config")
            .expect("anchoring enabled");
        let s3 = s3_client(&config).await;
        s3.create_bucket()
            .bucket(&config.bucket)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .expect("create an Object Lock bucket");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).await.expect("open store");
        store.migrate().await.expect("migrate");
        Fixture {
            _dir: dir,
            store: Arc::new(store),
            s3,
            config,
            key: ChainKey::new(b"an audit key for the anchor tests, 32+ bytes"),
        }
    }

    async fn append(&self, n: usize) -> Vec<AuditRecord> {
        let events = (0..n)
            .map(|i| AuditEvent::system("audit.test", &format!("event {i}")))
            .collect();
        self.store
            .append_audit(&self.key, events)
            .await
            .expect("append audit events")
    }

    async fn write(&self, now: DateTime<Utc>) -> AnchorOutcome {
        write_anchor_once(&*self.store, &self.s3, &self.config, now)
            .await
            .expect("anchor round")
    }

    async fn object_count(&self) -> usize {
        self.s3
            .list_object_versions()
            .bucket(&self.config.bucket)
            .send()
            .await
            .expect("list versions")
            .versions()
            .len()
    }

    fn writer(&self, instance: &str) -> AnchorWriter {
        AnchorWriter::new(
            self.store.clone(),
            self.s3.clone(),
            self.config.clone(),
            instance,
        )
    }
}

fn written(outcome: AnchorOutcome) -> (String, Anchor) {
    match outcome {
        AnchorOutcome::Written { key, anchor } => (key, *anchor),
        other => panic!("expected an anchor to be written, got {other:?}"),
    }
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_round_writes_one_locked_anchor_and_the_next_links_to_it() {
    let f = Fixture::new(&[]).await;
    assert_eq!(f.write(Utc::now()).await, AnchorOutcome::EmptyChain);
    let rows = f.append(3).await;
    let head = rows.last().expect("rows");

    let now = Utc::now();
    let (key, anchor) = written(f.write(now).await);
    assert_eq!(key, Anchor::object_key(CHAIN, &now, 3));
    assert_eq!(
        anchor,
        Anchor::new(
            CHAIN,
            3,
            &head.mac,
            &head.key_id,
            &head.recorded_at,
            &now,
            None
        )
    );

    // Locked in COMPLIANCE mode until now + 400 days, with the body's SHA-256.
    let object =
        f.s3.head_object()
            .bucket(&f.config.bucket)
            .key(&key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .expect("the anchor object exists");
    assert_eq!(object.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let until = object
        .object_lock_retain_until_date()
        .expect("a retain-until date")
        .secs();
    let expected = (now + chrono::Duration::days(400)).timestamp();
    assert!(
        (until - expected).abs() <= 60,
        "retain until {until}, expected about {expected}"
    );
    assert_eq!(object.content_type(), Some("application/json"));
    let sha = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        &anchor.to_json(),
    ));
    assert_eq!(object.checksum_sha256(), Some(sha.as_str()));

    // The body is the head, and the store recorded it.
    let body = read_anchor(&f.s3, &f.config.bucket, &key)
        .await
        .expect("read anchor");
    assert_eq!(body, anchor);
    assert_eq!(body.mac, hex(&head.mac));
    assert_eq!(
        body.recorded_at,
        rack_gateway_core::audit::encode::timestamp(&head.recorded_at)
    );
    assert_eq!(
        f.store.latest_anchor().await.expect("latest"),
        Some((key.clone(), anchor.clone()))
    );

    // Nothing new: nothing written.
    assert_eq!(
        f.write(Utc::now()).await,
        AnchorOutcome::Unchanged { seq: 3 }
    );
    assert_eq!(f.object_count().await, 1);

    // New rows: a second anchor linked to the first.
    let more = f.append(2).await;
    let (key2, anchor2) = written(f.write(Utc::now()).await);
    assert_eq!(anchor2.seq, 5);
    assert_eq!(anchor2.mac, hex(&more[1].mac));
    assert_eq!(
        anchor2.prev_anchor,
        Some(AnchorRef {
            key: key.clone(),
            seq: 3,
            mac: anchor.mac.clone()
        })
    );
    assert_eq!(f.object_count().await, 2);

    // The verifier's view: both claims, read from S3, and the newest seq.
    let check = check_anchors(&*f.store, &f.s3, &f.config)
        .await
        .expect("check anchors");
    assert!(check.is_intact(), "{:?}", check.problems);
    let env = Env::from_pairs([
        ("AUDIT_ANCHOR_BUCKET", f.config.bucket.as_str()),
        ("AUDIT_ANCHOR_CHAIN_ID", CHAIN),
        (
            "AWS_ENDPOINT_URL_S3",
            f.config.endpoint.as_deref().unwrap_or_default(),
        ),
    ]);
    assert_eq!(
        claims_for_verify(&env, f.store.as_ref())
            .await
            .expect("from env"),
        check
    );
    let off = claims_for_verify(&Env::from_pairs([]), f.store.as_ref()).await;
    assert_eq!(off.expect("anchoring off"), AnchorCheck::default());
    let claims: Vec<_> = check
        .claims
        .iter()
        .map(|c| (c.key.as_str(), c.seq, c.mac))
        .collect();
    assert_eq!(
        claims,
        vec![(key.as_str(), 3, head.mac), (key2.as_str(), 5, more[1].mac)]
    );
    assert_eq!(check.newest_seq, Some(5));
}

#[tokio::test]
async fn only_the_lease_holder_writes() {
    let f = Fixture::new(&[]).await;
    let (first, second) = (f.writer("instance-a"), f.writer("instance-b"));
    f.append(2).await;
    written(first.round().await.expect("round a"));
    f.append(1).await;
    assert_eq!(
        second.round().await.expect("round b"),
        AnchorOutcome::NotLeader
    );
    assert_eq!(f.object_count().await, 1);
    let (_, anchor) = written(first.round().await.expect("round a again"));
    assert_eq!(anchor.seq, 3);
    assert_eq!(f.object_count().await, 2);
}

#[tokio::test]
async fn locked_anchor_versions_cannot_be_deleted() {
    let f = Fixture::new(&[]).await;
    f.append(1).await;
    let (key, anchor) = written(f.write(Utc::now()).await);
    let version =
        f.s3.head_object()
            .bucket(&f.config.bucket)
            .key(&key)
            .send()
            .await
            .expect("head")
            .version_id()
            .expect("a versioned bucket")
            .to_owned();
    let deleted =
        f.s3.delete_object()
            .bucket(&f.config.bucket)
            .key(&key)
            .version_id(&version)
            .bypass_governance_retention(true)
            .send()
            .await;
    let err = deleted.expect_err("a COMPLIANCE-locked version was deleted");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("AccessDenied"),
        "{err:?}"
    );
    assert_eq!(
        read_anchor(&f.s3, &f.config.bucket, &key)
            .await
            .expect("still there"),
        anchor
    );
}

#[tokio::test]
async fn an_existing_object_is_never_overwritten() {
    let f = Fixture::new(&[]).await;
    f.append(2).await;
    let now = Utc::now();
    let key = Anchor::object_key(CHAIN, &now, 2);

    // Someone else's body at the key: If-None-Match refuses the put and nothing is recorded.
    let forged = Anchor::new(CHAIN, 2, &[9; 32], "forged", &now, &now, None);
    f.s3.put_object()
        .bucket(&f.config.bucket)
        .key(&key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(forged.to_json()))
        .send()
        .await
        .expect("put forged object");
    let err = write_anchor_once(&*f.store, &f.s3, &f.config, now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AnchorError::Conflict {
                existing_seq: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(f.store.latest_anchor().await.expect("latest"), None);
    assert_eq!(f.object_count().await, 1);

    // A put whose record was lost: the next round records the object already there.
    let f = Fixture::new(&[]).await;
    let rows2 = f.append(2).await;
    let earlier = now - chrono::Duration::seconds(5);
    let ours = Anchor::new(
        CHAIN,
        2,
        &rows2[1].mac,
        &rows2[1].key_id,
        &rows2[1].recorded_at,
        &earlier,
        None,
    );
    f.s3.put_object()
        .bucket(&f.config.bucket)
        .key(&key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(ours.to_json()))
        .send()
        .await
        .expect("put earlier anchor");
    let (recorded_key, recorded) = written(f.write(now).await);
    assert_eq!((recorded_key.as_str(), &recorded), (key.as_str(), &ours));
    assert_eq!(f.object_count().await, 1);
}

#[tokio::test]
async fn check_anchors_reports_an_overwritten_anchor() {
    let f = Fixture::new(&[]).await;
    let rows = f.append(2).await;
    let (key, anchor) = written(f.write(Utc::now()).await);

    // A second version over the anchor (the writer never makes one): the first version stays
    // authoritative, and the overwrite is reported.
    let mut forged = anchor.clone();
    forged.mac = hex(&[1; 32]);
    f.s3.put_object()
        .bucket(&f.config.bucket)
        .key(&key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(forged.to_json()))
        .send()
        .await
        .expect("put a second version");
    assert_eq!(
        read_anchor(&f.s3, &f.config.bucket, &key)
            .await
            .expect("latest"),
        forged
    );

    let check = check_anchors(&*f.store, &f.s3, &f.config)
        .await
        .expect("check anchors");
    assert_eq!(
        check.problems,
        vec![AnchorProblem::Overwritten {
            key: key.clone(),
            versions: 2,
            delete_markers: 0
        }]
    );
    assert_eq!(check.claims.len(), 1);
    assert_eq!(check.claims[0].mac, rows[1].mac);
    assert_eq!(check.newest_seq, Some(2));
}

#[tokio::test]
async fn the_background_writer_anchors_and_flushes_on_stop() {
    let f = Fixture::new(&[("AUDIT_ANCHOR_INTERVAL_SECONDS", "3600")]).await;
    f.append(2).await;
    let handle = f.writer("instance-a").start();
    // The first round runs at once.
    eventually("the first anchor", || handle.status().last_seq == Some(2)).await;
    let status = handle.status();
    assert!(status.leader && status.last_written.is_some() && status.last_error.is_none());
    assert_eq!(handle.status_receiver().borrow().last_seq, Some(2));
    // Spawned: the check must be a `Send + 'static` future (axum handlers need that).
    let (verifier, store) = (handle.verifier(), f.store.clone());
    let check = tokio::spawn(async move { verifier.check(store.as_ref()).await })
        .await
        .expect("join")
        .expect("check");
    assert!(
        check.is_intact() && check.newest_seq == Some(2),
        "{check:?}"
    );

    // Rows after the last round are anchored by the final flush, long before the next tick.
    f.append(3).await;
    let last = handle.flush_and_stop().await;
    assert_eq!(last.last_seq, Some(5), "{last:?}");
    let (_, newest) = f
        .store
        .latest_anchor()
        .await
        .expect("latest")
        .expect("an anchor");
    assert_eq!(newest.seq, 5);
    assert_eq!(f.object_count().await, 2);

    // The lease was released: another instance takes over at once.
    f.append(1).await;
    written(f.writer("instance-b").round().await.expect("round b"));
}

#[tokio::test]
async fn s3_failures_show_in_the_status_and_never_record() {
    let f = Fixture::new(&[]).await;
    f.append(1).await;
    let mut config = f.config.clone();
    config.bucket = format!("{}-missing", f.config.bucket);
    let writer = AnchorWriter::new(f.store.clone(), f.s3.clone(), config, "instance-a");
    let err = writer.round().await.unwrap_err();
    assert!(
        matches!(
            err,
            AnchorError::S3 {
                operation: "PutObject",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), "s3");

    let handle = writer.start();
    eventually("a retried failure", || {
        handle.status().consecutive_failures >= 2
    })
    .await;
    let status = handle.flush_and_stop().await;
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("PutObject")),
        "{status:?}"
    );
    assert_eq!(status.last_success, None);
    assert_eq!(f.store.latest_anchor().await.expect("latest"), None);
}

//! Writing anchors: one round ([`write_anchor_once`]), and the background loop
//! ([`AnchorWriter`]) that runs a round every interval while it holds the lease.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime as S3DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rack_gateway_core::audit::{encode::hex, Anchor, AnchorRef};
use rack_gateway_core::store::{AuditStore, Store};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::check::{read_anchor, AnchorVerifier};
use super::{s3_client, AnchorConfig, AnchorError};

/// The name of the lease that elects the one writing instance.
pub const LEASE_NAME: &str = "audit-anchor";
/// The metric counting failed anchor rounds (label `kind`: `store`, `s3` or `chain`).
pub const FAILURES_METRIC: &str = "rgw_audit_anchor_failures_total";

const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const FINAL_ATTEMPTS: u32 = 3;
const FINAL_DEADLINE: Duration = Duration::from_secs(30);

/// What one anchor round did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorOutcome {
    /// An anchor object was written (or found already written) and recorded.
    Written {
        /// Its object key.
        key: String,
        /// Its body.
        anchor: Box<Anchor>,
    },
    /// The head has not moved since the newest anchor (at this seq).
    Unchanged {
        /// The anchored seq.
        seq: u64,
    },
    /// The chain has no rows yet.
    EmptyChain,
    /// Another instance holds the lease; it writes the anchors.
    NotLeader,
}

/// What the writer last did, for the readiness endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnchorStatus {
    /// Whether this instance held the lease in its last round.
    pub leader: bool,
    /// When a round last completed without error (whether or not it wrote).
    pub last_success: Option<DateTime<Utc>>,
    /// When this instance last wrote an anchor.
    pub last_written: Option<DateTime<Utc>>,
    /// The last error, cleared by the next successful round.
    pub last_error: Option<String>,
    /// Failed rounds since the last success.
    pub consecutive_failures: u32,
    /// The newest anchored seq this instance has seen.
    pub last_seq: Option<u64>,
}

/// Runs one anchor round without the lease: if the chain head moved past the newest recorded
/// anchor, puts an anchor object for it (COMPLIANCE-locked, SHA-256 checksum, `If-None-Match:
/// *`) and records it in the store.
///
/// Refuses ([`AnchorError::HeadContradictsAnchor`]) when the head is behind or differs from
/// the newest anchor. If an identical head is already anchored at the key (a put whose record
/// failed), that object is recorded instead.
pub async fn write_anchor_once<S: AuditStore + ?Sized>(
    store: &S,
    s3: &aws_sdk_s3::Client,
    config: &AnchorConfig,
    now: DateTime<Utc>,
) -> Result<AnchorOutcome, AnchorError> {
    let Some(head) = store.audit_head().await? else {
        return Ok(AnchorOutcome::EmptyChain);
    };
    let latest = store.latest_anchor().await?;
    if let Some((key, anchored)) = &latest {
        let contradiction = |what| AnchorError::HeadContradictsAnchor {
            head_seq: head.seq,
            anchored_seq: anchored.seq,
            key: key.clone(),
            what,
        };
        if head.seq < anchored.seq {
            return Err(contradiction(
                "the head is behind the anchor (rows deleted?)",
            ));
        }
        if head.seq == anchored.seq {
            if hex(&head.mac) != anchored.mac {
                return Err(contradiction("the row's MAC differs from the anchored MAC"));
            }
            return Ok(AnchorOutcome::Unchanged { seq: head.seq });
        }
    }
    let prev = latest.as_ref().map(|(key, anchored)| AnchorRef {
        key: key.clone(),
        seq: anchored.seq,
        mac: anchored.mac.clone(),
    });
    let anchor = Anchor::new(
        &config.chain_id,
        head.seq,
        &head.mac,
        &head.key_id,
        &head.recorded_at,
        &now,
        prev,
    );
    let key = Anchor::object_key(&config.chain_id, &now, head.seq);
    let anchor = put_anchor(s3, config, &key, anchor, now).await?;

    // The lease makes a second writer unlikely, not impossible (an expired lease during a slow
    // put): never record an anchor that no longer follows the newest recorded one.
    let current = store.latest_anchor().await?;
    let current_key = current.as_ref().map(|(k, _)| k.as_str());
    if current_key != latest.as_ref().map(|(k, _)| k.as_str()) {
        return match current {
            Some((k, a)) if k == key => Ok(AnchorOutcome::Unchanged { seq: a.seq }),
            other => Err(AnchorError::LostRace {
                key: other.map(|(k, _)| k).unwrap_or_default(),
                orphan: key,
            }),
        };
    }
    store.record_anchor(&key, &anchor).await?;
    Ok(AnchorOutcome::Written {
        key,
        anchor: Box::new(anchor),
    })
}

/// Puts the anchor object; returns the body that is stored at `key` (ours, or an identical
/// head already there).
async fn put_anchor(
    s3: &aws_sdk_s3::Client,
    config: &AnchorConfig,
    key: &str,
    anchor: Anchor,
    now: DateTime<Utc>,
) -> Result<Anchor, AnchorError> {
    let body = anchor.to_json();
    let checksum = base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA256, &body));
    let retain_until = now + chrono::Duration::days(i64::from(config.retention_days));
    let result = s3
        .put_object()
        .bucket(&config.bucket)
        .key(key)
        .content_type("application/json")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(checksum)
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(S3DateTime::from_millis(retain_until.timestamp_millis()))
        .if_none_match("*")
        .body(ByteStream::from(body))
        .send()
        .await;
    match result {
        Ok(_) => Ok(anchor),
        Err(err) if precondition_failed(&err) => {
            let existing = read_anchor(s3, &config.bucket, key).await?;
            let same_head = existing.chain_id == anchor.chain_id
                && existing.seq == anchor.seq
                && existing.mac == anchor.mac
                && existing.key_id == anchor.key_id
                && existing.recorded_at == anchor.recorded_at
                && existing.prev_anchor == anchor.prev_anchor;
            if same_head {
                Ok(existing)
            } else {
                Err(AnchorError::Conflict {
                    key: key.to_owned(),
                    existing_seq: existing.seq,
                })
            }
        }
        Err(err) => Err(s3_error("PutObject", &config.bucket, key, &err)),
    }
}

fn precondition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "PreconditionFailed")
}

/// An [`AnchorError::S3`] with the SDK error and its sources.
pub(crate) fn s3_error<E, R>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    err: &SdkError<E, R>,
) -> AnchorError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    AnchorError::S3 {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: DisplayErrorContext(err).to_string(),
    }
}

/// Writes anchors in the background while this instance holds the `audit-anchor` lease.
pub struct AnchorWriter {
    store: Arc<dyn Store>,
    s3: aws_sdk_s3::Client,
    config: AnchorConfig,
    instance_id: String,
}

impl AnchorWriter {
    /// A writer for `instance_id` (unique per gateway process) with a ready S3 client.
    pub fn new(
        store: Arc<dyn Store>,
        s3: aws_sdk_s3::Client,
        config: AnchorConfig,
        instance_id: impl Into<String>,
    ) -> Self {
        AnchorWriter {
            store,
            s3,
            config,
            instance_id: instance_id.into(),
        }
    }

    /// Builds the S3 client from `config` and starts the loop (needs a Tokio runtime). Nothing
    /// here touches the network: S3 and the store are first used by the loop's first round.
    pub async fn spawn(
        store: Arc<dyn Store>,
        config: AnchorConfig,
        instance_id: impl Into<String>,
    ) -> AnchorHandle {
        let s3 = s3_client(&config).await;
        AnchorWriter::new(store, s3, config, instance_id).start()
    }

    /// Starts the loop (needs a Tokio runtime).
    pub fn start(self) -> AnchorHandle {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (status_tx, status_rx) = watch::channel(AnchorStatus::default());
        let verifier = Arc::new(AnchorVerifier::new(self.s3.clone(), self.config.clone()));
        AnchorHandle {
            stop: Some(stop_tx),
            task: tokio::spawn(self.run(stop_rx, status_tx)),
            status: status_rx,
            verifier,
        }
    }

    /// One round: takes or renews the lease, then [`write_anchor_once`] if this instance holds it.
    pub async fn round(&self) -> Result<AnchorOutcome, AnchorError> {
        let leader = self
            .store
            .try_lease(LEASE_NAME, &self.instance_id, self.config.lease_ttl())
            .await?;
        if !leader {
            return Ok(AnchorOutcome::NotLeader);
        }
        write_anchor_once(&*self.store, &self.s3, &self.config, Utc::now()).await
    }

    async fn run(self, mut stop: oneshot::Receiver<()>, status: watch::Sender<AnchorStatus>) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry_in: Option<Duration> = None;
        let flush = loop {
            let wait = async {
                match retry_in {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        ticker.tick().await;
                    }
                }
            };
            tokio::select! {
                biased;
                signal = &mut stop => break signal.is_ok(),
                () = wait => {}
            }
            let result = self.round().await;
            retry_in = if report(&status, &result) {
                None
            } else {
                Some(retry_in.map_or(BACKOFF_INITIAL, |d| (d * 2).min(BACKOFF_MAX)))
            };
            if let (Err(err), Some(delay)) = (&result, retry_in) {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "audit anchor round failed");
            }
        };
        if flush {
            let final_rounds = async {
                let mut delay = BACKOFF_INITIAL;
                for attempt in 1..=FINAL_ATTEMPTS {
                    let result = self.round().await;
                    if report(&status, &result) {
                        return;
                    }
                    if let Err(err) = &result {
                        tracing::warn!(error = %err, attempt, "final audit anchor failed");
                    }
                    if attempt < FINAL_ATTEMPTS {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            };
            if tokio::time::timeout(FINAL_DEADLINE, final_rounds)
                .await
                .is_err()
            {
                let message = "final audit anchor timed out".to_owned();
                tracing::warn!("{message}");
                status.send_modify(|s| s.last_error = Some(message));
            }
        }
        if let Err(err) = self
            .store
            .release_lease(LEASE_NAME, &self.instance_id)
            .await
        {
            tracing::warn!(error = %err, "could not release the audit anchor lease");
        }
    }
}

/// Updates the status and the metric after a round; true when the round succeeded.
fn report(
    status: &watch::Sender<AnchorStatus>,
    result: &Result<AnchorOutcome, AnchorError>,
) -> bool {
    let now = Utc::now();
    match result {
        Ok(outcome) => {
            if let AnchorOutcome::Written { key, anchor } = outcome {
                tracing::info!(key = %key, seq = anchor.seq, "audit anchor written");
            }
            status.send_modify(|s| {
                s.leader = !matches!(outcome, AnchorOutcome::NotLeader);
                s.last_success = Some(now);
                s.last_error = None;
                s.consecutive_failures = 0;
                match outcome {
                    AnchorOutcome::Written { anchor, .. } => {
                        s.last_written = Some(now);
                        s.last_seq = Some(anchor.seq);
                    }
                    AnchorOutcome::Unchanged { seq } => s.last_seq = Some(*seq),
                    AnchorOutcome::EmptyChain | AnchorOutcome::NotLeader => {}
                }
            });
            true
        }
        Err(err) => {
            metrics::counter!(FAILURES_METRIC, "kind" => err.kind()).increment(1);
            status.send_modify(|s| {
                s.last_error = Some(err.to_string());
                s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            });
            false
        }
    }
}

/// The running writer: its status, and how to stop it.
///
/// Dropping the handle stops the loop after its current round, without a final anchor.
pub struct AnchorHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    status: watch::Receiver<AnchorStatus>,
    verifier: Arc<AnchorVerifier>,
}

impl AnchorHandle {
    /// What the writer last did (cheap; for the readiness endpoint).
    pub fn status(&self) -> AnchorStatus {
        self.status.borrow().clone()
    }

    /// A receiver of status updates, for the readiness endpoint.
    pub fn status_receiver(&self) -> watch::Receiver<AnchorStatus> {
        self.status.clone()
    }

    /// Reads the anchors back with the writer's client and settings (for `GET /api/v1/audit/verify`).
    pub fn verifier(&self) -> Arc<AnchorVerifier> {
        Arc::clone(&self.verifier)
    }

    /// Writes one final anchor if this instance leads and the head moved, releases the lease
    /// and stops the loop; returns the final status. Bounded to about 30 seconds.
    pub async fn flush_and_stop(mut self) -> AnchorStatus {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(err) = (&mut self.task).await {
            tracing::error!(error = %err, "the audit anchor task failed");
        }
        self.status()
    }
}

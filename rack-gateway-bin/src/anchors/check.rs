//! Reading anchors back for `audit verify`: every anchor the store recorded is fetched from
//! S3 (the first, locked version of its key) and compared with the recorded copy and with
//! the anchor before it.

use aws_sdk_s3::types::ChecksumMode;
use futures_util::stream::{self, StreamExt as _};
use rack_gateway_core::audit::{encode::unhex32, Anchor, AnchorRef};
use rack_gateway_core::store::AuditStore;

use super::writer::s3_error;
use super::{AnchorConfig, AnchorError};
use crate::config::Env;

/// Anchor bodies are a few hundred bytes; anything larger is not an anchor.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// S3 reads in flight during [`check_anchors`].
const CONCURRENT_READS: usize = 8;

/// What one anchor object says: the row at `seq` must have `mac`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorClaim {
    /// The object key.
    pub key: String,
    /// The anchored seq.
    pub seq: u64,
    /// The anchored MAC.
    pub mac: [u8; 32],
}

/// A tampering finding about the anchors themselves.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnchorProblem {
    /// The store lists an anchor whose object is not in the bucket.
    #[error("anchor object {key} is missing from the bucket")]
    Missing {
        /// The object key.
        key: String,
    },
    /// The object is not a valid anchor body.
    #[error("anchor object {key} is not a valid anchor: {reason}")]
    Malformed {
        /// The object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The object differs from the store's copy of it.
    #[error("anchor object {key} (seq {object_seq}) differs from the recorded anchor (seq {recorded_seq})")]
    BodyMismatch {
        /// The object key.
        key: String,
        /// The seq the object anchors.
        object_seq: u64,
        /// The seq the store's copy anchors.
        recorded_seq: u64,
    },
    /// The key has more than one version, or delete markers: someone wrote or deleted over it
    /// (the writer never does). The first version is the one checked.
    #[error("anchor object {key} was overwritten or deleted: {versions} versions, {delete_markers} delete markers")]
    Overwritten {
        /// The object key.
        key: String,
        /// How many versions the key has.
        versions: usize,
        /// How many delete markers the key has.
        delete_markers: usize,
    },
    /// The anchor belongs to another chain.
    #[error("anchor object {key} belongs to chain {chain_id:?}")]
    WrongChain {
        /// The object key.
        key: String,
        /// The chain it names.
        chain_id: String,
    },
    /// `prev_anchor` does not point at the previous recorded anchor.
    #[error("anchor {key} (seq {seq}) links to {found:?}, expected {expected:?}")]
    BrokenLink {
        /// The object key.
        key: String,
        /// Its seq.
        seq: u64,
        /// The previous anchor, as recorded.
        expected: Option<AnchorRef>,
        /// What the object says.
        found: Option<AnchorRef>,
    },
    /// Seqs do not increase from one anchor to the next.
    #[error("anchor {key} (seq {seq}) does not follow seq {previous_seq}")]
    NotIncreasing {
        /// The object key.
        key: String,
        /// Its seq.
        seq: u64,
        /// The previous anchor's seq.
        previous_seq: u64,
    },
}

impl AnchorProblem {
    /// The object key of the anchor concerned.
    pub fn key(&self) -> &str {
        match self {
            AnchorProblem::Missing { key }
            | AnchorProblem::Malformed { key, .. }
            | AnchorProblem::BodyMismatch { key, .. }
            | AnchorProblem::Overwritten { key, .. }
            | AnchorProblem::WrongChain { key, .. }
            | AnchorProblem::BrokenLink { key, .. }
            | AnchorProblem::NotIncreasing { key, .. } => key,
        }
    }
}

/// The result of [`check_anchors`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnchorCheck {
    /// One claim per readable anchor object, oldest first (from S3, not the store's copy).
    pub claims: Vec<AnchorClaim>,
    /// The newest anchored seq: the database head must not be behind it.
    pub newest_seq: Option<u64>,
    /// Tampering found in the anchors themselves, oldest first.
    pub problems: Vec<AnchorProblem>,
}

impl AnchorCheck {
    /// True when no anchor problem was found.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads and parses the current version of the anchor object at `key`.
pub async fn read_anchor(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Anchor, AnchorError> {
    get_anchor(client, bucket, key, None).await
}

async fn get_anchor(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Anchor, AnchorError> {
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|err| {
            if err.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                AnchorError::NotFound {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }
            } else {
                s3_error("GetObject", bucket, key, &err)
            }
        })?;
    let malformed = |reason: String| AnchorError::Malformed {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        reason,
    };
    if output
        .content_length()
        .is_some_and(|len| len < 0 || len as u64 > MAX_BODY_BYTES as u64)
    {
        return Err(malformed(format!("larger than {MAX_BODY_BYTES} bytes")));
    }
    let body = output
        .body
        .collect()
        .await
        .map_err(|err| AnchorError::S3 {
            operation: "GetObject",
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            message: err.to_string(),
        })?
        .into_bytes();
    if body.len() > MAX_BODY_BYTES {
        return Err(malformed(format!("larger than {MAX_BODY_BYTES} bytes")));
    }
    Anchor::from_json(&body).map_err(|err| malformed(err.to_string()))
}

/// The versions of exactly `key`, newest first, and how many delete markers it has.
async fn versions_of(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<(Vec<Option<String>>, usize), AnchorError> {
    let mut versions = Vec::new();
    let mut delete_markers = 0;
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|err| s3_error("ListObjectVersions", bucket, key, &err))?;
        versions.extend(
            page.versions()
                .iter()
                .filter(|v| v.key() == Some(key))
                .map(|v| v.version_id().map(str::to_owned)),
        );
        delete_markers += page
            .delete_markers()
            .iter()
            .filter(|m| m.key() == Some(key))
            .count();
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
        if key_marker.is_none() && version_marker.is_none() {
            break;
        }
    }
    Ok((versions, delete_markers))
}

/// What the bucket holds for one recorded anchor.
enum Fetched {
    /// The first version's body, and the problem with later versions if any.
    Found(Anchor, Option<AnchorProblem>),
    /// A finding instead of a body.
    Problem(AnchorProblem),
}

async fn fetch(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Fetched, AnchorError> {
    let (versions, delete_markers) = versions_of(client, bucket, key).await?;
    // Versions are listed newest first; the writer puts each key once, so the first (oldest)
    // version is the authentic one even if someone wrote over it later.
    let Some(first) = versions.last() else {
        return Ok(Fetched::Problem(AnchorProblem::Missing {
            key: key.to_owned(),
        }));
    };
    let version_id = first.as_deref().filter(|v| *v != "null");
    let overwritten =
        (versions.len() > 1 || delete_markers > 0).then(|| AnchorProblem::Overwritten {
            key: key.to_owned(),
            versions: versions.len(),
            delete_markers,
        });
    match get_anchor(client, bucket, key, version_id).await {
        Ok(anchor) => Ok(Fetched::Found(anchor, overwritten)),
        Err(AnchorError::NotFound { .. }) => Ok(Fetched::Problem(AnchorProblem::Missing {
            key: key.to_owned(),
        })),
        Err(AnchorError::Malformed { reason, .. }) => {
            Ok(Fetched::Problem(AnchorProblem::Malformed {
                key: key.to_owned(),
                reason,
            }))
        }
        Err(err) => Err(err),
    }
}

/// Checks every anchor the store recorded (never an S3 listing of the chain) against its
/// object in S3 and against the anchor before it.
///
/// Returns `Err` only when the check cannot be done (store or S3 unreachable, access denied);
/// tampering is reported in [`AnchorCheck::problems`]. The caller then checks each
/// [`AnchorClaim`] against the row at its seq and that the head is not behind
/// [`AnchorCheck::newest_seq`]. Reading needs `s3:GetObject`, `s3:GetObjectVersion` and
/// `s3:ListBucketVersions`.
pub async fn check_anchors<S: AuditStore + ?Sized>(
    store: &S,
    s3: &aws_sdk_s3::Client,
    config: &AnchorConfig,
) -> Result<AnchorCheck, AnchorError> {
    let recorded = store.list_anchors().await?;
    // Owned keys: a closure over borrowed items makes the future not `Send` for every
    // lifetime, which axum handlers and `tokio::spawn` need.
    let keys: Vec<String> = recorded.iter().map(|(key, _)| key.clone()).collect();
    let fetched: Vec<Result<Fetched, AnchorError>> = stream::iter(keys)
        .map(|key| async move { fetch(s3, &config.bucket, &key).await })
        .buffered(CONCURRENT_READS)
        .collect()
        .await;

    let mut check = AnchorCheck::default();
    let mut previous: Option<AnchorRef> = None;
    for ((key, recorded), fetched) in recorded.iter().zip(fetched) {
        let anchor = match fetched? {
            Fetched::Problem(problem) => {
                check.problems.push(problem);
                // Link the next anchor to what the store says this one was.
                previous = Some(reference(key, recorded));
                continue;
            }
            Fetched::Found(anchor, overwritten) => {
                check.problems.extend(overwritten);
                anchor
            }
        };
        if anchor != *recorded {
            check.problems.push(AnchorProblem::BodyMismatch {
                key: key.clone(),
                object_seq: anchor.seq,
                recorded_seq: recorded.seq,
            });
        }
        if anchor.chain_id != config.chain_id {
            check.problems.push(AnchorProblem::WrongChain {
                key: key.clone(),
                chain_id: anchor.chain_id.clone(),
            });
        }
        if anchor.prev_anchor != previous {
            check.problems.push(AnchorProblem::BrokenLink {
                key: key.clone(),
                seq: anchor.seq,
                expected: previous.clone(),
                found: anchor.prev_anchor.clone(),
            });
        }
        if let Some(prev) = &previous {
            if anchor.seq <= prev.seq {
                check.problems.push(AnchorProblem::NotIncreasing {
                    key: key.clone(),
                    seq: anchor.seq,
                    previous_seq: prev.seq,
                });
            }
        }
        match unhex32(&anchor.mac) {
            Some(mac) => check.claims.push(AnchorClaim {
                key: key.clone(),
                seq: anchor.seq,
                mac,
            }),
            None => check.problems.push(AnchorProblem::Malformed {
                key: key.clone(),
                reason: "mac is not 64 hex digits".to_owned(),
            }),
        }
        previous = Some(reference(key, &anchor));
    }
    check.newest_seq = check.claims.iter().map(|c| c.seq).max();
    Ok(check)
}

/// Checks anchors with one S3 client and configuration; cheap to share behind an `Arc`.
#[derive(Clone, Debug)]
pub struct AnchorVerifier {
    s3: aws_sdk_s3::Client,
    config: AnchorConfig,
}

impl AnchorVerifier {
    /// A verifier using `s3` and `config`.
    pub fn new(s3: aws_sdk_s3::Client, config: AnchorConfig) -> Self {
        AnchorVerifier { s3, config }
    }

    /// A verifier with a client built by [`s3_client`](super::s3_client).
    pub async fn from_config(config: AnchorConfig) -> Self {
        AnchorVerifier::new(super::s3_client(&config).await, config)
    }

    /// [`check_anchors`] against `store`.
    pub async fn check<S: AuditStore + ?Sized>(
        &self,
        store: &S,
    ) -> Result<AnchorCheck, AnchorError> {
        check_anchors(store, &self.s3, &self.config).await
    }
}

/// For `rack-gateway audit verify`: [`check_anchors`] with the configuration in `env`, or an
/// empty check when AUDIT_ANCHOR_BUCKET is unset.
pub async fn claims_for_verify<S: AuditStore + ?Sized>(
    env: &Env,
    store: &S,
) -> Result<AnchorCheck, AnchorError> {
    match AnchorConfig::from_env(env)? {
        Some(config) => AnchorVerifier::from_config(config).await.check(store).await,
        None => Ok(AnchorCheck::default()),
    }
}

fn reference(key: &str, anchor: &Anchor) -> AnchorRef {
    AnchorRef {
        key: key.to_owned(),
        seq: anchor.seq,
        mac: anchor.mac.clone(),
    }
}

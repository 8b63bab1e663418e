//! Verifying the stored chain (and, when configured, its anchors).

use futures_util::stream::{self, StreamExt as _};
use rack_gateway_core::audit::{encode::hex, ChainHead, Keyring, Tamper, Verifier};
use rack_gateway_core::store::{AuditStore, StoreError};
use serde::Serialize;

/// Rows read per round trip.
const PAGE: usize = 10_000;
/// Pages read at once (on as many connections) while the rows before them are verified.
const PREFETCH: usize = 3;

/// Why verification could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The anchors could not be read.
    #[error("anchors unavailable: {0}")]
    Anchors(String),
}

use crate::anchors::AnchorCheck;

/// What verification found.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// No tampering found.
    pub intact: bool,
    /// Rows whose MAC and link were checked.
    pub checked: u64,
    /// The chain starts after this seq (0, or the retention checkpoint).
    pub start_seq: u64,
    /// Seq of the newest row.
    pub head_seq: u64,
    /// MAC of the newest row (hex).
    pub head_mac: String,
    /// Anchors checked against the rows.
    pub anchors_checked: usize,
    /// The first broken seq.
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    pub problem: Option<String>,
}

/// Narrows down the first row at or after `from` that does not decode, by halving the range.
async fn first_unreadable(
    store: &dyn AuditStore,
    from: u64,
    len: usize,
) -> Result<u64, VerifyError> {
    let (mut lo, mut n) = (from, len);
    while n > 1 {
        let half = n / 2;
        match store.audit_range(lo, half).await {
            Err(StoreError::Corrupt(_)) => n = half,
            Ok(rows) => {
                lo = rows.last().map_or(lo + half as u64, |r| r.seq + 1);
                n -= rows.len().clamp(1, n - 1);
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(lo)
}

/// The seq in an anchor object key (`…/<seq:020>.json`).
fn seq_of_key(key: &str) -> u64 {
    key.rsplit('/')
        .next()
        .and_then(|name| name.strip_suffix(".json"))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_default()
}

/// Recomputes every MAC from the stored columns, checks seqs and links, and, with anchors,
/// checks every anchor claim against the rows and the head.
pub async fn verify_chain(
    store: &dyn AuditStore,
    keyring: &Keyring,
    anchors: Option<&AnchorCheck>,
) -> Result<VerifyReport, VerifyError> {
    let start = store.audit_start().await?;
    let mut verifier = Verifier::new(keyring.clone(), start);
    let mut claims: Vec<_> = anchors
        .map(|a| a.claims.iter().collect())
        .unwrap_or_default();
    claims.sort_by_key(|c| c.seq);
    let mut next_claim = 0;
    // Tampering with the anchors themselves (a missing, rewritten or unlinked object).
    let mut tamper: Option<Tamper> =
        anchors
            .and_then(|a| a.problems.first())
            .map(|problem| Tamper {
                seq: seq_of_key(problem.key()),
                problem: problem.to_string(),
            });
    // A claim at or before the start can only be checked against the checkpoint itself.
    while next_claim < claims.len() && claims[next_claim].seq <= start.seq {
        let claim = claims[next_claim];
        if claim.seq == start.seq && claim.mac != start.mac {
            tamper = Some(Tamper {
                seq: claim.seq,
                problem: "retention checkpoint does not match the anchor".into(),
            });
        }
        next_claim += 1;
    }
    let mut from = start.seq + 1;
    'pages: while tamper.is_none() {
        // Read ahead while verifying: up to PREFETCH pages are in flight at once, each on its
        // own connection, on the assumption that seqs have no gaps (page i starts at
        // `base + i * PAGE`). A page that breaks the assumption (short of its range, or filled
        // from beyond it because of a gap) ends the read-ahead: the pages fetched after it
        // are dropped and reading resumes right after its last row, so the rows checked are
        // exactly those that reading one page at a time would give.
        let base = from;
        let page = PAGE as u64;
        let mut pages = stream::iter(0u64..)
            .map(move |i| store.audit_range(base.saturating_add(i.saturating_mul(page)), PAGE))
            .buffered(PREFETCH);
        let mut expected = base;
        while let Some(rows) = pages.next().await {
            let rows = match rows {
                Ok(rows) => rows,
                // A row that no longer decodes was edited outside the gateway: tampering.
                Err(StoreError::Corrupt(what)) => {
                    let seq = first_unreadable(store, expected, PAGE).await?;
                    tamper = Some(Tamper {
                        seq,
                        problem: format!("row cannot be read back as recorded ({what})"),
                    });
                    break 'pages;
                }
                Err(error) => return Err(error.into()),
            };
            let Some(last) = rows.last() else {
                break 'pages;
            };
            let contiguous = last.seq == expected.saturating_add(page - 1);
            from = last.seq + 1;
            expected = from;
            for row in &rows {
                if let Err(found) = verifier.check(row) {
                    tamper = Some(found);
                    break 'pages;
                }
                while next_claim < claims.len() && claims[next_claim].seq == row.seq {
                    if claims[next_claim].mac != row.mac {
                        tamper = Some(Tamper {
                            seq: row.seq,
                            problem: "row differs from its S3 anchor (rewritten chain)".into(),
                        });
                        break 'pages;
                    }
                    next_claim += 1;
                }
            }
            if rows.len() < PAGE {
                break 'pages;
            }
            if !contiguous {
                continue 'pages;
            }
        }
    }
    let head: ChainHead = verifier.head();
    if tamper.is_none() {
        if let Some(newest) = claims.last() {
            if newest.seq > head.seq {
                tamper = Some(Tamper {
                    seq: head.seq + 1,
                    problem: format!(
                        "rows {}..={} are missing: an anchor covers seq {} but the chain ends at {}",
                        head.seq + 1,
                        newest.seq,
                        newest.seq,
                        head.seq
                    ),
                });
            }
        }
    }
    Ok(VerifyReport {
        intact: tamper.is_none(),
        checked: verifier.checked(),
        start_seq: start.seq,
        head_seq: head.seq,
        head_mac: hex(&head.mac),
        anchors_checked: next_claim,
        first_bad_seq: tamper.as_ref().map(|t| t.seq),
        problem: tamper.map(|t| t.problem),
    })
}

//! Checking a run of rows: MACs recomputed, seqs without gaps, every prev_mac linked.

use std::fmt;

use super::encode::mac_input;
use super::{AuditRecord, ChainHead, Keyring};

/// The first thing found wrong, at a seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tamper {
    /// The first seq that does not verify.
    pub seq: u64,
    /// What is wrong there.
    pub problem: String,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.problem)
    }
}

impl std::error::Error for Tamper {}

/// Verifies rows in seq order, starting after a known head (genesis or a checkpoint).
#[derive(Debug)]
pub struct Verifier {
    keyring: Keyring,
    head: ChainHead,
    checked: u64,
}

impl Verifier {
    /// Starts after `head`.
    pub fn new(keyring: Keyring, head: ChainHead) -> Self {
        Verifier {
            keyring,
            head,
            checked: 0,
        }
    }

    /// Checks the next row.
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), Tamper> {
        let expected = self.head.seq + 1;
        let tamper = |seq, problem: String| Err(Tamper { seq, problem });
        if record.seq != expected {
            return if record.seq > expected {
                tamper(
                    expected,
                    format!("missing: the next row present is seq {}", record.seq),
                )
            } else {
                tamper(record.seq, format!("out of order: expected seq {expected}"))
            };
        }
        let Some(key) = self.keyring.by_id(&record.key_id) else {
            return tamper(
                record.seq,
                format!("made with unknown key {}", record.key_id),
            );
        };
        if !key.verify(&mac_input(record), &record.mac) {
            return tamper(
                record.seq,
                "MAC does not match the row's contents".to_owned(),
            );
        }
        if record.prev_mac != self.head.mac {
            return tamper(
                record.seq,
                "prev_mac does not link to the previous row".to_owned(),
            );
        }
        self.head = ChainHead {
            seq: record.seq,
            mac: record.mac,
        };
        self.checked += 1;
        Ok(())
    }

    /// The last verified row (or the starting head).
    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// How many rows verified.
    pub fn checked(&self) -> u64 {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::audit::{seal, AuditEvent, ChainKey};

    fn chain(n: usize) -> (Keyring, Vec<AuditRecord>) {
        let key = ChainKey::new(b"unit-test-audit-key-0123456789abcdef");
        let events = (0..n)
            .map(|i| AuditEvent::system("test.event", &format!("event {i}")))
            .collect();
        let records = seal(ChainHead::genesis(), &key, Utc::now(), events);
        (Keyring::new(key, vec![]), records)
    }

    fn first_problem(keyring: &Keyring, records: &[AuditRecord]) -> Option<Tamper> {
        let mut verifier = Verifier::new(keyring.clone(), ChainHead::genesis());
        records.iter().find_map(|r| verifier.check(r).err())
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (keyring, records) = chain(5);
        assert_eq!(first_problem(&keyring, &records), None);
    }

    #[test]
    fn each_kind_of_tampering_names_the_right_seq() {
        let (keyring, records) = chain(6);

        let mut edited = records.clone();
        edited[2].event.reason = "edited".into();
        assert_eq!(first_problem(&keyring, &edited).map(|t| t.seq), Some(3));

        let mut deleted = records.clone();
        deleted.remove(3);
        assert_eq!(first_problem(&keyring, &deleted).map(|t| t.seq), Some(4));

        let mut swapped = records.clone();
        swapped.swap(1, 2);
        assert_eq!(first_problem(&keyring, &swapped).map(|t| t.seq), Some(2));

        let mut remaced = records.clone();
        let wrong = ChainKey::new(b"another-key-that-is-long-enough-xx");
        remaced[4].key_id = keyring.current().id().to_owned();
        remaced[4].mac = wrong.mac(&mac_input(&remaced[4]));
        assert_eq!(first_problem(&keyring, &remaced).map(|t| t.seq), Some(5));
    }

    #[test]
    fn rows_made_with_a_previous_key_still_verify() {
        let old = ChainKey::new(b"old-audit-key-0123456789abcdef-xyz");
        let new = ChainKey::new(b"new-audit-key-0123456789abcdef-xyz");
        let first = seal(
            ChainHead::genesis(),
            &old,
            Utc::now(),
            vec![AuditEvent::system("a.b", "old")],
        );
        let head = ChainHead {
            seq: 1,
            mac: first[0].mac,
        };
        let second = seal(
            head,
            &new,
            Utc::now(),
            vec![AuditEvent::system("a.b", "new")],
        );
        let mut verifier = Verifier::new(Keyring::new(new, vec![old]), ChainHead::genesis());
        verifier.check(&first[0]).unwrap();
        verifier.check(&second[0]).unwrap();
        assert_eq!(verifier.checked(), 2);
    }
}

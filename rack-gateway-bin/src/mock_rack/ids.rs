//! Convox-style identifiers: `B`/`R` + 10 capital letters for builds and releases,
//! `<service>-<10>-<5>` lowercase for processes.

use uuid::Uuid;

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `n` (≤ 16) random characters drawn from `alphabet`.
fn random_from(alphabet: &[u8], n: usize) -> String {
    Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(n)
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

/// `n` (≤ 16) random capital letters.
fn upper(n: usize) -> String {
    random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", n)
}

/// A new build id such as `BQWERTYUIOP`.
pub(super) fn build_id() -> String {
    format!("B{}", upper(10))
}

/// A new release id such as `RQWERTYUIOP`.
pub(super) fn release_id() -> String {
    format!("R{}", upper(10))
}

/// A new process id such as `web-5d8c7f9b6a-x2k9q`.
pub(super) fn process_id(service: &str) -> String {
    format!(
        "{service}-{}-{}",
        random_from(LOWER, 10),
        random_from(LOWER, 5)
    )
}

/// A deterministic process id for seeded state, derived from `seed`.
pub(super) fn seeded_process_id(service: &str, seed: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut next = || {
        for b in seed.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    };
    let mut pick = |n: usize| -> String {
        let mut h = next();
        (0..n)
            .map(|_| {
                let c = char::from(LOWER[(h % LOWER.len() as u64) as usize]);
                h /= LOWER.len() as u64;
                c
            })
            .collect()
    };
    let a = pick(10);
    let b = pick(5);
    format!("{service}-{a}-{b}")
}

//! The canonical byte encoding that the MAC covers.
//!
//! ```text
//! mac = HMAC-SHA256(key, "rgw-audit-v1" || seq (u64, big-endian) || prev_mac (32 bytes) || fields)
//! ```
//!
//! `fields` are, in this order: recorded_at, request_id, actor_kind, actor_email, actor_name,
//! token_id, token_name, client_ip, user_agent, action, phase, resource, method, path, decision,
//! reason, http_status, latency_ms, details, key_id. Each is a u32 big-endian byte length
//! followed by its UTF-8 text; an absent value is the length `0xFFFFFFFF` with no text.
//! Integers are decimal text; `recorded_at` is RFC 3339 with exactly six fractional digits and
//! `Z` (for example `2026-01-02T03:04:05.000006Z`). The test below pins a vector.

use chrono::{DateTime, Utc};

use super::AuditRecord;

/// The domain-separation prefix of every MAC input.
pub const MAC_DOMAIN: &[u8] = b"rgw-audit-v1";

const ABSENT: u32 = u32::MAX;

/// `recorded_at` as hashed and stored: RFC 3339, six fractional digits, `Z`.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    use chrono::{Datelike as _, Timelike as _};
    // Hand-rolled rather than strftime: this runs for every row that is sealed or verified.
    let micros = at.timestamp_subsec_micros().min(999_999);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        micros
    )
}

/// Truncates a timestamp to whole microseconds (the precision stored and hashed).
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses 64 hex characters into 32 bytes.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

fn push(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => {
            // Lengths beyond u32 cannot occur: every field is bounded far below 4 GiB.
            let len = u32::try_from(text.len()).unwrap_or(ABSENT - 1);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        None => out.extend_from_slice(&ABSENT.to_be_bytes()),
    }
}

/// The full MAC input of a record (prefix, seq, prev_mac and fields).
pub fn mac_input(record: &AuditRecord) -> Vec<u8> {
    let event = &record.event;
    let mut out = Vec::with_capacity(256 + event.details.len() + event.reason.len());
    out.extend_from_slice(MAC_DOMAIN);
    out.extend_from_slice(&record.seq.to_be_bytes());
    out.extend_from_slice(&record.prev_mac);
    push(&mut out, Some(&timestamp(&record.recorded_at)));
    push(&mut out, Some(&event.request_id));
    push(&mut out, Some(event.actor_kind.as_str()));
    push(&mut out, Some(&event.actor_email));
    push(&mut out, Some(&event.actor_name));
    push(&mut out, event.token_id.as_deref());
    push(&mut out, event.token_name.as_deref());
    push(&mut out, event.client_ip.as_deref());
    push(&mut out, event.user_agent.as_deref());
    push(&mut out, Some(&event.action));
    push(&mut out, Some(event.phase.as_str()));
    push(&mut out, event.resource.as_deref());
    push(&mut out, event.method.as_deref());
    push(&mut out, event.path.as_deref());
    push(&mut out, Some(event.decision.as_str()));
    push(&mut out, Some(&event.reason));
    push(&mut out, Some(&event.http_status.to_string()));
    push(&mut out, Some(&event.latency_ms.to_string()));
    push(&mut out, Some(&event.details));
    push(&mut out, Some(&record.key_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ActorKind, AuditDecision, AuditEvent, ChainKey, Phase};

    fn vector_record() -> AuditRecord {
        AuditRecord {
            seq: 1,
            recorded_at: DateTime::from_timestamp_micros(1_767_323_045_000_006).unwrap(),
            event: AuditEvent {
                request_id: "req-1".into(),
                actor_kind: ActorKind::ApiToken,
                actor_email: "ci@example.com".into(),
                actor_name: "CI".into(),
                token_id: Some("tok-1".into()),
                token_name: Some("ci".into()),
                client_ip: Some("10.0.0.1".into()),
                user_agent: None,
                action: "app.list".into(),
                phase: Phase::Complete,
                resource: None,
                method: Some("GET".into()),
                path: Some("/apps".into()),
                decision: AuditDecision::Allow,
                reason: "convox:app:list granted by token permission convox:*:*".into(),
                http_status: 200,
                latency_ms: 3,
                details: "{}".into(),
            },
            key_id: "0123456789abcdef".into(),
            prev_mac: [0; 32],
            mac: [0; 32],
        }
    }

    #[test]
    fn timestamps_have_six_fractional_digits() {
        let record = vector_record();
        assert_eq!(
            timestamp(&record.recorded_at),
            "2026-01-02T03:04:05.000006Z"
        );
    }

    #[test]
    fn the_encoding_is_pinned_by_a_test_vector() {
        // Independently computed with Python's hmac/hashlib/struct from the description above.
        let key = ChainKey::new(b"test-vector-key-0123456789abcdef");
        assert_eq!(key.id(), "6b9b5d3d9125223c");
        let mut record = vector_record();
        record.key_id = key.id().to_owned();
        // Sealing normalizes events first; the vector's event is already normal.
        assert_eq!(record.event.clone().normalized(), record.event);
        let input = mac_input(&record);
        assert_eq!(input.len(), 309);
        // prefix (12) + seq (8) + prev_mac (32), then the first field: length 27 + text.
        assert_eq!(&input[..12], b"rgw-audit-v1");
        assert_eq!(&input[12..20], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&input[52..56], &27u32.to_be_bytes());
        assert_eq!(&input[56..83], b"2026-01-02T03:04:05.000006Z");
        // user_agent is absent: 0xFFFFFFFF in its place.
        let absent = input.windows(4).filter(|w| *w == [0xff; 4]).count();
        assert_eq!(absent, 2, "user_agent and resource are absent");
        assert_eq!(
            hex(&key.mac(&input)),
            "b4f62ce9832f0958118ff43ca480d94fbd9994c4fcc463e23ce7491abd9a54a3"
        );
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0xab; 32];
        assert_eq!(unhex32(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex32("zz"), None);
    }
}

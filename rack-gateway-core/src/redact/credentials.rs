//! Finding gateway credentials (API and session tokens) anywhere in a text.
//!
//! A client can put its own token where the gateway does not expect one: a query parameter under
//! any name (`?t=rgw_…`), a user agent, a request id. Field-name rules cannot catch that, so the
//! token's shape is looked for instead.

use std::borrow::Cow;

use super::REDACTED;

/// Shortest body (in characters, a `%XX` escape counting as one) that is taken for a token.
///
/// Real bodies are 43 characters; 16 still catches a token cut short by truncation or a line
/// break while leaving words such as `rgw_config` alone.
pub const MIN_BODY_CHARS: usize = 16;

/// Replaces the body of everything shaped like a gateway credential in `text` with
/// [`REDACTED`], e.g. `?t=rgw_…` becomes `?t=rgw_[REDACTED]`.
///
/// The shape:
///
/// - the prefix `rgw_` or `rgs_` ([`TOKEN_PREFIX`], [`SESSION_TOKEN_PREFIX`]), also with the `_`
///   percent-encoded (`rgw%5F`, `rgw%5f`); the stem is matched in lower case only, as tokens
///   are made;
/// - followed by a body of at least [`MIN_BODY_CHARS`] base64url characters, where `%XX`
///   escapes of base64url characters (`%2D` for `-`, `%41` for `A`, …) count as one character.
///
/// The whole body (as long as it runs, so a longer run is masked whole) is replaced; the prefix
/// is kept as written, so the text still tells which kind of credential was there. Only one
/// level of percent-encoding is understood (`rgw%255F…` is not matched). The replacement holds
/// no quote or backslash, so redacting JSON text keeps it valid JSON.
///
/// One left-to-right pass, linear time; returns `text` borrowed when nothing matched.
///
/// [`TOKEN_PREFIX`]: crate::identity::TOKEN_PREFIX
/// [`SESSION_TOKEN_PREFIX`]: crate::identity::SESSION_TOKEN_PREFIX
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    // The common case; std's substring search is about three times faster than the scan below.
    if !text.contains("rg") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = find_stem_start(bytes, from) {
        let Some(body_start) = prefix_end(bytes, found) else {
            from = found + 2;
            continue;
        };
        let (body_end, chars) = body(bytes, body_start);
        if chars < MIN_BODY_CHARS {
            from = found + 2;
            continue;
        }
        // Every boundary is next to an ASCII byte, so slicing stays on char boundaries.
        let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buffer.push_str(&text[copied..body_start]);
        buffer.push_str(REDACTED);
        copied = body_end;
        from = body_end;
    }
    match out {
        Some(mut buffer) => {
            buffer.push_str(&text[copied..]);
            Cow::Owned(buffer)
        }
        None => Cow::Borrowed(text),
    }
}

/// The next `rg` at or after `from`: every credential prefix starts with it.
fn find_stem_start(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut at = 0;
    loop {
        at += rest.get(at..)?.iter().position(|&b| b == b'r')?;
        if rest.get(at + 1) == Some(&b'g') {
            return Some(from + at);
        }
        at += 1;
    }
}

/// Where the body starts, if a whole prefix (`rgw_`, `rgs_`, `rgw%5F`, …) begins at `at`.
fn prefix_end(bytes: &[u8], at: usize) -> Option<usize> {
    let stem = bytes.get(at..at + 3)?;
    if stem != b"rgw" && stem != b"rgs" {
        return None;
    }
    let rest = bytes.get(at + 3..)?;
    if rest.first() == Some(&b'_') {
        return Some(at + 4);
    }
    let escape = rest.get(..3)?;
    (escape[0] == b'%' && escape[1] == b'5' && escape[2].eq_ignore_ascii_case(&b'f'))
        .then_some(at + 6)
}

/// Where the body starting at `start` ends, and how many characters it holds.
fn body(bytes: &[u8], start: usize) -> (usize, usize) {
    let mut at = start;
    let mut chars = 0;
    loop {
        match bytes.get(at) {
            Some(&byte) if is_base64url(byte) => at += 1,
            Some(b'%') if escaped_base64url(bytes, at + 1) => at += 3,
            _ => return (at, chars),
        }
        chars += 1;
    }
}

/// Whether the two bytes at `at` are hex digits encoding a base64url character.
fn escaped_base64url(bytes: &[u8], at: usize) -> bool {
    let Some(&[high, low]) = bytes.get(at..at + 2) else {
        return false;
    };
    match (hex_value(high), hex_value(low)) {
        (Some(high), Some(low)) => is_base64url((high << 4) | low),
        _ => false,
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{ApiTokenSecret, SESSION_TOKEN_PREFIX, TOKEN_PREFIX};

    fn redact(text: &str) -> String {
        redact_credentials(text).into_owned()
    }

    #[test]
    fn the_scanner_knows_the_prefixes() {
        // `prefix_end` spells the prefixes out; this keeps it honest if they ever change.
        assert_eq!(TOKEN_PREFIX, "rgw_");
        assert_eq!(SESSION_TOKEN_PREFIX, "rgs_");
    }

    #[test]
    fn tokens_anywhere_are_redacted() {
        let token = ApiTokenSecret::generate();
        let token = token.expose();
        assert_eq!(
            redact(&format!("/apps?t={token}&page=2")),
            "/apps?t=rgw_[REDACTED]&page=2"
        );
        assert_eq!(
            redact(&format!("curl/8.0 ({token})")),
            "curl/8.0 (rgw_[REDACTED])"
        );
        assert_eq!(redact(token), "rgw_[REDACTED]");
        assert_eq!(
            redact(&format!("{token} and {token}")),
            "rgw_[REDACTED] and rgw_[REDACTED]"
        );
        assert_eq!(
            redact("session rgs_abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEFG."),
            "session rgs_[REDACTED]."
        );
    }

    #[test]
    fn percent_encoded_tokens_are_redacted() {
        assert_eq!(
            redact("t=rgw%5FabcdefghijklmnopqrstuvwxyzABCDEFG&x=1"),
            "t=rgw%5F[REDACTED]&x=1"
        );
        assert_eq!(
            redact("t=rgs%5fabcdefghijklmnop%2Dqrstuvwxyz%5fABCD%41"),
            "t=rgs%5f[REDACTED]"
        );
        // Escapes count as one character each.
        assert_eq!(
            redact("rgw_%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"),
            "rgw_[REDACTED]"
        );
        assert_eq!(
            redact("rgw_%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"),
            "rgw_%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
        );
    }

    #[test]
    fn the_body_stops_at_other_characters() {
        // `%20` is not a base64url character, `%zz` is no escape, a lone `%` ends the body.
        assert_eq!(
            redact("rgw_abcdefghijklmnopqr%20tail"),
            "rgw_[REDACTED]%20tail"
        );
        assert_eq!(redact("rgw_abcdefghijklmnopqr%zz"), "rgw_[REDACTED]%zz");
        assert_eq!(redact("rgw_abcdefghijklmnopqr%"), "rgw_[REDACTED]%");
        assert_eq!(
            redact("\"rgw_abcdefghijklmnopqr\":\"é\""),
            "\"rgw_[REDACTED]\":\"é\""
        );
    }

    #[test]
    fn short_or_other_words_are_kept() {
        for text in [
            "",
            "r",
            "rg",
            "rgw",
            "rgw_",
            "rgw_config and rgs_settings",
            "rgw_abcdefghijklmno",
            "RGW_abcdefghijklmnopqrstuvwxyz",
            "rgx_abcdefghijklmnopqrstuvwxyz",
            "rgw-abcdefghijklmnopqrstuvwxyz",
            "rgw%5abcdefghijklmnopqrstuvwxyz",
            "rgw%2Fabcdefghijklmnopqrstuvwxyz",
            "rgw.abcdefghijklmnopqrstuvwxyz",
            "rgw_[REDACTED]",
            "rgw%5F[REDACTED]",
            "rgw-audit-v1",
            "storage-rg-1 rgrgrg",
            "ünïcödé rg 日本",
        ] {
            assert!(
                matches!(redact_credentials(text), Cow::Borrowed(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn overlapping_prefixes_are_masked_whole() {
        assert_eq!(
            redact("xrgw_rgw_abcdefghijklmnopqrstuvwxyz"),
            "xrgw_[REDACTED]"
        );
        assert_eq!(
            redact("rgrgw_abcdefghijklmnop rgw_short"),
            "rgrgw_[REDACTED] rgw_short"
        );
        assert_eq!(
            redact("rgw_short.rgs_abcdefghijklmnop"),
            "rgw_short.rgs_[REDACTED]"
        );
    }

    #[test]
    fn redaction_is_idempotent() {
        let once = redact("a=rgw_abcdefghijklmnopq&b=rgs%5Fabcdefghijklmnopq");
        assert_eq!(once, "a=rgw_[REDACTED]&b=rgs%5F[REDACTED]");
        assert!(matches!(redact_credentials(&once), Cow::Borrowed(_)));
    }

    #[test]
    fn long_inputs_are_linear() {
        let many_stems = "rgw_".repeat(200_000);
        assert_eq!(redact(&many_stems), "rgw_[REDACTED]");
        let many_short = "rgw_abc ".repeat(100_000);
        assert_eq!(redact(&many_short), many_short);
        let many_escapes = format!("rgw_{}", "%4".repeat(200_000));
        assert_eq!(redact(&many_escapes), many_escapes);
    }
}

//! Properties of credential redaction: a gateway token (API or session) embedded in arbitrary
//! text, raw or percent-encoded, never survives [`redact_credentials`] or [`redact_command`];
//! redaction is idempotent, keeps JSON valid and never panics.

use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::prelude::*;
use rack_gateway_core::identity::{ApiTokenSecret, SESSION_TOKEN_PREFIX, TOKEN_PREFIX};
use rack_gateway_core::redact::{
    canonical_json, redact_command, redact_credentials, SecretRules, REDACTED,
};

/// A token: a prefix and 43 base64url characters; yields it and its body.
fn token() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec![TOKEN_PREFIX, SESSION_TOKEN_PREFIX]),
        "[A-Za-z0-9_-]{43}",
    )
        .prop_map(|(prefix, body)| (format!("{prefix}{body}"), body))
}

/// Every byte as `%XX`, upper- or lower-case hex.
fn encode_all(text: &str, lower: bool) -> String {
    text.bytes()
        .map(|b| {
            if lower {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The token as a client might send it: raw, with `_` escaped, or with its body escaped.
fn written(token: &str, body: &str, style: u8) -> String {
    let stem = &token[..3];
    match style {
        0 => token.to_owned(),
        1 => format!("{stem}%5F{body}"),
        2 => format!("{stem}%5f{}", utf8_percent_encode(body, NON_ALPHANUMERIC)),
        3 => format!("{stem}_{}", encode_all(body, false)),
        _ => format!("{stem}%5f{}", encode_all(body, true)),
    }
}

/// No part of the body long enough to matter (12 characters) is left, raw or once decoded.
fn assert_gone(output: &str, body: &str) -> Result<(), TestCaseError> {
    let decoded = percent_decode_str(output).decode_utf8_lossy();
    for start in 0..=body.len() - 12 {
        let fragment = &body[start..start + 12];
        prop_assert!(!output.contains(fragment), "{fragment:?} in {output:?}");
        prop_assert!(!decoded.contains(fragment), "{fragment:?} in {decoded:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tokens_in_arbitrary_text_never_survive(
        (token, body) in token(),
        style in 0..5u8,
        before in any::<String>(),
        after in any::<String>(),
    ) {
        let text = format!("{before}{}{after}", written(&token, &body, style));
        let redacted = redact_credentials(&text);
        assert_gone(&redacted, &body)?;
        prop_assert!(redacted.contains(REDACTED));
    }

    #[test]
    fn tokens_in_query_strings_never_survive(
        (token, body) in token(),
        style in 0..5u8,
        name in "[a-z_]{1,8}",
        others in prop::collection::vec(("[a-z]{1,6}", "[a-zA-Z0-9%._-]{0,12}"), 0..4),
        position in 0..4usize,
    ) {
        let mut pairs: Vec<String> = others.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let at = position.min(pairs.len());
        pairs.insert(at, format!("{name}={}", written(&token, &body, style)));
        let query = pairs.join("&");
        let redacted = redact_credentials(&query);
        assert_gone(&redacted, &body)?;
        prop_assert_eq!(redacted.split('&').count(), query.split('&').count());
    }

    #[test]
    fn tokens_in_commands_never_survive(
        (token, body) in token(),
        name in "[A-Z]{1,8}",
        quote in prop::sample::select(vec!["", "'", "\""]),
        tail in "[a-z /.-]{0,16}",
    ) {
        let command = format!("env {name}={quote}{token}{quote} {tail}");
        let redacted = redact_command(&command, &SecretRules::default());
        assert_gone(&redacted, &body)?;
    }

    #[test]
    fn redacted_json_stays_valid(
        (token, _) in token(),
        key in "\\PC{0,8}",
        other in "\\PC{0,16}",
    ) {
        let details = serde_json::json!({ key.clone(): token, "other": other, "list": [token.clone()] });
        let text = canonical_json(&details);
        let redacted = redact_credentials(&text);
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&redacted);
        prop_assert!(parsed.is_ok(), "{redacted}");
        prop_assert!(!redacted.contains(token.as_str()));
    }

    #[test]
    fn redaction_is_idempotent_and_never_panics(
        text in "([rgws_%5Ff]|rgw_|rgs%5F|%4[0-9a-fA-F]|[A-Za-z0-9]{1,20}|\\PC){0,40}",
    ) {
        let once = redact_credentials(&text).into_owned();
        prop_assert_eq!(redact_credentials(&once).into_owned(), once);
        let _ = redact_command(&text, &SecretRules::default());
    }

    #[test]
    fn arbitrary_input_never_panics(text in any::<String>()) {
        let _ = redact_credentials(&text);
        let _ = redact_command(&text, &SecretRules::default());
    }
}

#[test]
fn generated_tokens_never_survive() {
    for _ in 0..256 {
        let token = ApiTokenSecret::generate();
        let text = format!("GET /apps?x={}&y=1 ua: curl", token.expose());
        let redacted = redact_credentials(&text);
        assert_eq!(redacted, "GET /apps?x=rgw_[REDACTED]&y=1 ua: curl");
    }
}

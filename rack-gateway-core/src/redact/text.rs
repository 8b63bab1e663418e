//! The last line of defence for free text (an exec command, an error message).

use std::borrow::Cow;

use super::{mask_url_credentials, REDACTED};

/// Known secret values shorter than this (in characters) are not searched for.
const MIN_SECRET_CHARS: usize = 4;

/// Replaces every occurrence of a known secret value (at least 4 characters) with `[REDACTED]`,
/// then masks URL credentials ([`mask_url_credentials`]).
///
/// One left-to-right pass; where several secrets match at one place the longest wins.
pub fn redact_text<'a>(text: &'a str, known_secrets: &[&str]) -> Cow<'a, str> {
    let mut secrets: Vec<&str> = known_secrets
        .iter()
        .copied()
        .filter(|secret| secret.chars().count() >= MIN_SECRET_CHARS)
        .collect();
    secrets.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();

    let replaced = replace_secrets(text, &secrets);
    match replaced {
        Cow::Borrowed(text) => mask_url_credentials(text),
        Cow::Owned(text) => Cow::Owned(mask_url_credentials(&text).into_owned()),
    }
}

/// Replaces the `secrets` (longest first) in one pass.
fn replace_secrets<'a>(text: &'a str, secrets: &[&str]) -> Cow<'a, str> {
    if secrets.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut first_bytes = [false; 256];
    for secret in secrets {
        if let Some(&byte) = secret.as_bytes().first() {
            first_bytes[usize::from(byte)] = true;
        }
    }
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        let byte = text.as_bytes()[at];
        let matched = if first_bytes[usize::from(byte)] && text.is_char_boundary(at) {
            secrets
                .iter()
                .find(|secret| text[at..].starts_with(**secret))
        } else {
            None
        };
        match matched {
            Some(secret) => {
                let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
                buffer.push_str(&text[copied..at]);
                buffer.push_str(REDACTED);
                at += secret.len();
                copied = at;
            }
            None => at += 1,
        }
    }
    match out {
        Some(mut buffer) => {
            buffer.push_str(&text[copied..]);
            Cow::Owned(buffer)
        }
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::MASK;

    #[test]
    fn replaces_known_secrets() {
        assert_eq!(
            redact_text(
                "curl -H 'X-Token: abcd1234' && echo abcd1234",
                &["abcd1234"]
            ),
            "curl -H 'X-Token: [REDACTED]' && echo [REDACTED]"
        );
    }

    #[test]
    fn short_and_empty_secrets_are_ignored() {
        assert_eq!(redact_text("a abc abcd", &["", "a", "abc"]), "a abc abcd");
        assert_eq!(redact_text("", &["abcd"]), "");
        assert!(matches!(
            redact_text("nothing here", &["abcd"]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn longest_secret_wins_and_overlaps() {
        assert_eq!(
            redact_text("xsecret-longx", &["secret", "secret-long"]),
            "x[REDACTED]x"
        );
        assert_eq!(redact_text("aaaaa", &["aaaa"]), "[REDACTED]a");
    }

    #[test]
    fn unicode_secrets_and_text() {
        assert_eq!(
            redact_text("日本語パス and ü", &["日本語パス"]),
            "[REDACTED] and ü"
        );
        assert_eq!(redact_text("ééé", &["éé"]), "ééé");
        assert_eq!(redact_text("x€€yz", &["€€yz!", "€€yz"]), "x[REDACTED]");
    }

    #[test]
    fn masks_url_credentials_too() {
        assert_eq!(
            redact_text(
                "psql postgres://u:pw@db/app failed: bad token zzzz9999",
                &["zzzz9999"]
            ),
            format!("psql postgres://u:{MASK}@db/app failed: bad token [REDACTED]")
        );
        assert_eq!(
            redact_text("redis://:pw@h", &[]),
            format!("redis://:{MASK}@h")
        );
    }
}

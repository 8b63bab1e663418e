//! Redacting query strings and form fields for audit details.
//!
//! Encoding decisions:
//!
//! - A sensitive field's value becomes the literal `[REDACTED]` (not `%5BREDACTED%5D`): it reads
//!   well in the audit trail and percent-decodes to itself.
//! - Names are percent-decoded (lossily, `+` left as is) only to check them; they are written back
//!   byte for byte.
//! - Other values are checked for URL credentials raw and once percent-decoded; a value whose
//!   decoded form carried a password is written back decoded-and-masked, re-encoded with only
//!   `%`, `&`, `=`, `#`, space, quotes, `<`, `>`, `\`, `^`, backtick, `{`, `|`, `}`, controls
//!   and non-ASCII escaped (so `:`, `/`, `@`, `*` stay readable). Values without credentials
//!   are written back unchanged. Malformed escapes (`%zz`, a lone `%`) are kept as they are.
//!   Only one level of encoding is undone, and `+` is not read as a space (a space ends a URL
//!   candidate, see [`mask_url_credentials`]).
//! - Pairs are split on `&` and at the first `=`; order, empty pairs and pair count are kept. A
//!   bare name (no `=`) has no value to redact and is kept.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use super::{mask_url_credentials, SecretRules, REDACTED};

/// What a re-encoded (masked) value escapes.
const VALUE_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Redacts a raw query string (without the leading `?`) for audit details.
///
/// Sensitive fields ([`SecretRules::is_sensitive_name`]) get the value `[REDACTED]`; URL
/// passwords in other values are masked, whether written raw or percent-encoded.
pub fn redact_query(raw_query: &str, rules: &SecretRules) -> String {
    let mut out = String::with_capacity(raw_query.len());
    for (position, pair) in raw_query.split('&').enumerate() {
        if position > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            None => out.push_str(pair),
            Some((name, value)) => {
                out.push_str(name);
                out.push('=');
                if rules.is_sensitive_name(&percent_decode_str(name).decode_utf8_lossy()) {
                    out.push_str(REDACTED);
                } else {
                    out.push_str(&mask_encoded_value(value));
                }
            }
        }
    }
    out
}

/// Redacts decoded form fields for audit details: sensitive names get `[REDACTED]`, URL
/// passwords in other values are masked. Names, order and count are kept.
pub fn redact_form_pairs(pairs: &[(String, String)], rules: &SecretRules) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| {
            let value = if rules.is_sensitive_name(name) {
                REDACTED.to_owned()
            } else {
                mask_url_credentials(value).into_owned()
            };
            (name.clone(), value)
        })
        .collect()
}

/// Masks URL credentials in a raw query value, raw and once percent-decoded.
fn mask_encoded_value(raw: &str) -> Cow<'_, str> {
    let masked = mask_url_credentials(raw);
    let decoded = percent_decode_str(&masked).decode_utf8_lossy().into_owned();
    match mask_url_credentials(&decoded) {
        Cow::Owned(decoded_masked) => {
            Cow::Owned(utf8_percent_encode(&decoded_masked, VALUE_ESCAPES).to_string())
        }
        Cow::Borrowed(_) => masked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::MASK;

    fn redact(query: &str) -> String {
        redact_query(query, &SecretRules::from_list("otp"))
    }

    #[test]
    fn sensitive_fields_are_redacted() {
        assert_eq!(
            redact("app=web&access_token=abc&Password=x&X-Amz-Signature=s&session=q&otp=1&limit=5"),
            "app=web&access_token=[REDACTED]&Password=[REDACTED]&X-Amz-Signature=[REDACTED]\
             &session=[REDACTED]&otp=[REDACTED]&limit=5"
        );
    }

    #[test]
    fn empty_and_odd_shapes() {
        assert_eq!(redact(""), "");
        assert_eq!(redact("&&"), "&&");
        assert_eq!(redact("token"), "token");
        assert_eq!(redact("token="), "token=[REDACTED]");
        assert_eq!(redact("=x"), "=x");
        assert_eq!(redact("a=b=c&token=d=e"), "a=b=c&token=[REDACTED]");
    }

    #[test]
    fn encoded_names_are_decoded_for_the_check() {
        assert_eq!(
            redact("%74oken=abc&api%5Fkey=k"),
            "%74oken=[REDACTED]&api%5Fkey=[REDACTED]"
        );
    }

    #[test]
    fn malformed_escapes_do_not_panic() {
        assert_eq!(redact("a=%&b=%zz&%=1&c=%e9%ff"), "a=%&b=%zz&%=1&c=%e9%ff");
        assert_eq!(redact("%E6%97%A5%E6%9C%AC=%"), "%E6%97%A5%E6%9C%AC=%");
        assert_eq!(redact("t%6Fken%=x"), "t%6Fken%=[REDACTED]");
    }

    #[test]
    fn url_credentials_raw_and_encoded() {
        assert_eq!(
            redact("db=postgres://u:pw@h/db&x=1"),
            format!("db=postgres://u:{MASK}@h/db&x=1")
        );
        assert_eq!(
            redact("db=postgres%3A%2F%2Fu%3Apw%40h%2Fdb&x=1"),
            format!("db=postgres://u:{MASK}@h/db&x=1")
        );
        assert_eq!(
            redact("db=postgres%3A%2F%2Fu%3Ap%26w%23x%40h%3Fa%3Db"),
            format!("db=postgres://u:{MASK}@h?a%3Db")
        );
        assert_eq!(
            redact("next=https%3A%2F%2Fexample.com%2F"),
            "next=https%3A%2F%2Fexample.com%2F"
        );
    }

    #[test]
    fn unicode_values() {
        assert_eq!(
            redact("n=%C3%BC&db=x%3A%2F%2F%C3%BC%3Ap%C3%A4ss%40h%C3%B6st"),
            format!("n=%C3%BC&db=x://%C3%BC:{MASK}@h%C3%B6st")
        );
    }

    #[test]
    fn form_pairs() {
        let pairs = vec![
            ("env".to_owned(), "A=1".to_owned()),
            ("Cookie".to_owned(), "c".to_owned()),
            ("url".to_owned(), "redis://:pw@h".to_owned()),
            (String::new(), String::new()),
        ];
        assert_eq!(
            redact_form_pairs(&pairs, &SecretRules::default()),
            vec![
                ("env".to_owned(), REDACTED.to_owned()),
                ("Cookie".to_owned(), REDACTED.to_owned()),
                ("url".to_owned(), format!("redis://:{MASK}@h")),
                (String::new(), String::new()),
            ]
        );
    }
}

//! Redacting a command line (the exec `Command` header) before it is recorded.
//!
//! People pass secrets on the command line: `env SECRET_KEY=abc bin/rails c`,
//! `export API_TOKEN=…; ./deploy`, `docker run --env DB_PASSWORD=… img`. The text is read the way
//! a shell would read it, closely enough to find `NAME=value` assignments.

use std::borrow::Cow;

use super::{mask_url_credentials, redact_credentials, SecretRules, REDACTED};

/// Redacts a command line: secret `NAME=value` assignments, URL passwords and gateway tokens.
///
/// - An assignment starts at the beginning of a word: at the start, after whitespace, a quote,
///   `;`, `&`, `|`, `(` or a backtick, or right after `--option=` (so `--env=KEY=v` counts). The
///   name is `[A-Za-z_][A-Za-z0-9_]*`; a secret one ([`SecretRules::is_secret_key`]) has its
///   value replaced by [`REDACTED`].
/// - The value runs to unquoted whitespace. `'…'` and `"…"` (with `\` escapes) inside it are
///   part of it, so `KEY="a b"` is redacted whole; an unterminated quote runs to the end.
/// - Inside a quoted string (`sh -c 'KEY=v rails c'`) the value also ends at that string's
///   closing quote, and `\"…\"` inside a double-quoted string is one nested quote.
/// - Unquoted `;`, `&` and `|` do not end a secret value: masking too much is the safe mistake.
///
/// Then URL passwords are masked ([`mask_url_credentials`]) and gateway tokens redacted
/// ([`redact_credentials`]) anywhere in the text, whatever the names around them. One pass each,
/// linear time; returns `text` borrowed when nothing needed redacting.
///
/// ```
/// use rack_gateway_core::redact::{redact_command, SecretRules};
///
/// let rules = SecretRules::default();
/// assert_eq!(
///     redact_command("env SECRET_KEY='a b' DATABASE_URL=postgres://u:p@h/db bin/rails c", &rules),
///     "env SECRET_KEY=[REDACTED] DATABASE_URL=postgres://u:********************@h/db bin/rails c"
/// );
/// ```
pub fn redact_command<'a>(text: &'a str, rules: &SecretRules) -> Cow<'a, str> {
    redact_command_with(text, rules, &[])
}

/// [`redact_command`], also treating `app_extra` names (an app's `secret_env_vars`) as secret.
pub fn redact_command_with<'a>(
    text: &'a str,
    rules: &SecretRules,
    app_extra: &[String],
) -> Cow<'a, str> {
    let assigned = redact_assignments(text, rules, app_extra);
    let masked = and_then(assigned, mask_url_credentials);
    and_then(masked, redact_credentials)
}

/// Applies `step` to `text`, keeping it borrowed when neither changed anything.
fn and_then<'a>(text: Cow<'a, str>, step: impl Fn(&str) -> Cow<'_, str>) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(text) => step(text),
        Cow::Owned(text) => match step(&text) {
            Cow::Borrowed(_) => Cow::Owned(text),
            Cow::Owned(changed) => Cow::Owned(changed),
        },
    }
}

/// Replaces the values of secret assignments with [`REDACTED`].
fn redact_assignments<'a>(
    text: &'a str,
    rules: &SecretRules,
    app_extra: &[String],
) -> Cow<'a, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    // The quote the scan is inside of, if any.
    let mut quote: Option<u8> = None;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if is_name_start(byte) && starts_word(bytes, at) {
            if let Some(equals) = name_end(bytes, at) {
                // Names are ASCII and values end next to ASCII bytes: these are char boundaries.
                let value_start = equals + 1;
                let value_end = value_end(bytes, value_start, quote);
                let value = &text[value_start..value_end];
                if !value.is_empty()
                    && value != REDACTED
                    && rules.is_secret_key_with(&text[at..equals], app_extra)
                {
                    let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    buffer.push_str(&text[copied..value_start]);
                    buffer.push_str(REDACTED);
                    copied = value_end;
                    at = value_end;
                } else {
                    // Keep reading inside the value: it may hold further assignments (`A=1;B=2`).
                    at = value_start;
                }
                continue;
            }
        }
        at += match byte {
            b'\\' if quote != Some(b'\'') => 2,
            b'\'' | b'"' => {
                quote = match quote {
                    None => Some(byte),
                    Some(open) if open == byte => None,
                    other => other,
                };
                1
            }
            _ => 1,
        };
    }
    match out {
        Some(mut buffer) => {
            buffer.push_str(&text[copied..]);
            Cow::Owned(buffer)
        }
        None => Cow::Borrowed(text),
    }
}

fn is_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Bytes after which a new shell word (and so an assignment) can start.
fn is_word_break(byte: u8) -> bool {
    byte.is_ascii_whitespace() || matches!(byte, b'\'' | b'"' | b';' | b'&' | b'|' | b'(' | b'`')
}

/// Whether a word starts at `at`: after a word break, or right after `--option=`.
fn starts_word(bytes: &[u8], at: usize) -> bool {
    let Some(previous) = at.checked_sub(1) else {
        return true;
    };
    match bytes[previous] {
        b'=' => after_option(bytes, previous),
        byte => is_word_break(byte),
    }
}

/// Whether the `=` at `equals` ends an option such as `--env` or `-e` that begins a word.
fn after_option(bytes: &[u8], equals: usize) -> bool {
    let mut start = equals;
    while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'-') {
        start -= 1;
    }
    bytes[start] == b'-' && (start == 0 || is_word_break(bytes[start - 1]))
}

/// The position of the `=` ending the name that starts at `at`, if one does.
fn name_end(bytes: &[u8], at: usize) -> Option<usize> {
    let length = bytes[at..].iter().position(|&byte| !is_name_byte(byte))?;
    (bytes[at + length] == b'=').then_some(at + length)
}

/// Where a value starting at `start` ends, inside the quote `outer` (if any).
fn value_end(bytes: &[u8], start: usize, outer: Option<u8>) -> usize {
    let mut at = start;
    while let Some(&byte) = bytes.get(at) {
        if byte.is_ascii_whitespace() || Some(byte) == outer {
            return at;
        }
        at = match byte {
            b'\\' if outer == Some(b'"') && bytes.get(at + 1) == Some(&b'"') => {
                escaped_quote_end(bytes, at + 2)
            }
            b'\\' if outer != Some(b'\'') => at + 2,
            b'\'' | b'"' => quoted_end(bytes, at),
            _ => at + 1,
        };
    }
    bytes.len()
}

/// Just past the quote closing the one at `open` (`\` escapes inside `"`), or the end.
fn quoted_end(bytes: &[u8], open: usize) -> usize {
    let quote = bytes[open];
    let mut at = open + 1;
    while let Some(&byte) = bytes.get(at) {
        if byte == quote {
            return at + 1;
        }
        at += if byte == b'\\' && quote == b'"' { 2 } else { 1 };
    }
    bytes.len()
}

/// Just past the next `\"` at or after `from`, or the end.
fn escaped_quote_end(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.windows(2).position(|window| window == b"\\\""))
        .map_or(bytes.len(), |found| from + found + 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::MASK;

    fn redact(text: &str) -> String {
        redact_command(text, &SecretRules::from_list("LICENSE_BLOB")).into_owned()
    }

    #[test]
    fn secret_assignments_urls_and_tokens() {
        assert_eq!(
            redact("env SECRET_KEY=abc DATABASE_URL=postgres://u:p@h/db bin/rails c"),
            format!("env SECRET_KEY=[REDACTED] DATABASE_URL=postgres://u:{MASK}@h/db bin/rails c")
        );
        assert_eq!(
            redact("curl -H 'Authorization: Bearer rgw_abcdefghijklmnopqrstuvwxyz' x"),
            "curl -H 'Authorization: Bearer rgw_[REDACTED]' x"
        );
    }

    #[test]
    fn quoted_values() {
        assert_eq!(
            redact(r#"API_TOKEN="a b c" rails c"#),
            "API_TOKEN=[REDACTED] rails c"
        );
        assert_eq!(
            redact("API_TOKEN='a b c' rails c"),
            "API_TOKEN=[REDACTED] rails c"
        );
        assert_eq!(
            redact(r#"API_TOKEN="a \" b" rails c"#),
            "API_TOKEN=[REDACTED] rails c"
        );
        assert_eq!(
            redact(r#"API_TOKEN=pre"a b"'c d'post rails c"#),
            "API_TOKEN=[REDACTED] rails c"
        );
        assert_eq!(redact(r#"API_TOKEN="a b"#), "API_TOKEN=[REDACTED]");
        assert_eq!(redact(r"API_TOKEN=a\ b c"), "API_TOKEN=[REDACTED] c");
    }

    #[test]
    fn export_env_flags_and_several() {
        assert_eq!(
            redact("export DB_PASSWORD=x1; export PORT=3000 && ./run"),
            "export DB_PASSWORD=[REDACTED] export PORT=3000 && ./run"
        );
        assert_eq!(
            redact("docker run --env STRIPE_KEY=sk -e AWS_SECRET_ACCESS_KEY=s2 --env=LICENSE_BLOB=b3 img"),
            "docker run --env STRIPE_KEY=[REDACTED] -e AWS_SECRET_ACCESS_KEY=[REDACTED] \
             --env=LICENSE_BLOB=[REDACTED] img"
        );
        assert_eq!(
            redact("A_TOKEN=1 B_SECRET=2 C=3 D_PASSWORD=4 cmd"),
            "A_TOKEN=[REDACTED] B_SECRET=[REDACTED] C=3 D_PASSWORD=[REDACTED] cmd"
        );
        assert_eq!(
            redact("PORT=1;API_TOKEN=2|x"),
            "PORT=1;API_TOKEN=[REDACTED]"
        );
    }

    #[test]
    fn assignments_inside_quoted_scripts() {
        assert_eq!(
            redact("sh -c 'API_TOKEN=abc rails c'"),
            "sh -c 'API_TOKEN=[REDACTED] rails c'"
        );
        assert_eq!(
            redact("sh -c 'API_TOKEN=abc'"),
            "sh -c 'API_TOKEN=[REDACTED]'"
        );
        assert_eq!(
            redact(r#"sh -c "API_TOKEN='a b' rails c""#),
            r#"sh -c "API_TOKEN=[REDACTED] rails c""#
        );
        assert_eq!(
            redact(r#"sh -c "API_TOKEN=\"a b\" rails c""#),
            r#"sh -c "API_TOKEN=[REDACTED] rails c""#
        );
    }

    #[test]
    fn other_words_are_kept() {
        for text in [
            "",
            "bin/rails c",
            "env PORT=3000 RAILS_ENV=production bin/rails c",
            "echo KEY=v MONKEY=x",
            "cfg.API_TOKEN=abc",
            "url?api_token=abc",
            "API_TOKEN= rails",
            "API_TOKEN=[REDACTED] rails",
            "echo 'it''s' \"fine\" \\",
            "ünï SECRET",
        ] {
            assert!(
                matches!(
                    redact_command(text, &SecretRules::default()),
                    Cow::Borrowed(_)
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn app_names_per_call() {
        let rules = SecretRules::default();
        let app = vec!["MAILGUN_DOMAIN".to_owned()];
        assert_eq!(
            redact_command_with("MAILGUN_DOMAIN=mg.example rake", &rules, &app),
            "MAILGUN_DOMAIN=[REDACTED] rake"
        );
        assert_eq!(
            redact_command("MAILGUN_DOMAIN=mg.example rake", &rules),
            "MAILGUN_DOMAIN=mg.example rake"
        );
    }

    #[test]
    fn unicode_and_odd_bytes_do_not_panic() {
        assert_eq!(redact("API_TOKEN=é\\é x"), "API_TOKEN=[REDACTED] x");
        assert_eq!(redact("API_TOKEN=日本 x"), "API_TOKEN=[REDACTED] x");
        assert_eq!(redact("x \\"), "x \\");
        assert_eq!(redact("API_TOKEN=\\"), "API_TOKEN=[REDACTED]");
        assert_eq!(redact("=API_TOKEN=a"), "=API_TOKEN=a");
        assert_eq!(redact("--=API_TOKEN=a"), "--=API_TOKEN=[REDACTED]");
        assert_eq!(redact("\"API_TOKEN=\\\"\""), "\"API_TOKEN=[REDACTED]");
    }

    #[test]
    fn long_inputs_are_linear() {
        let many = "API_TOKEN=x ".repeat(50_000);
        assert_eq!(redact(&many), "API_TOKEN=[REDACTED] ".repeat(50_000));
        let options = "--a-b-c-d=".repeat(50_000);
        assert_eq!(redact(&options), options);
        let names = "ABCDEFGH".repeat(50_000);
        assert_eq!(redact(&names), names);
        let quotes = "'\"".repeat(50_000);
        assert_eq!(redact(&quotes), quotes);
    }
}

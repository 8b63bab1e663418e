//! Masking the password of every `scheme://user:password@host` inside a value.
//!
//! Rules (one pass, linear time, no regex, never panics):
//!
//! - Every `://` starts a URL candidate, whatever (if anything) precedes it as a scheme.
//! - The candidate runs until whitespace, a control character, `"`, `<`, `>`, the scheme of the
//!   next `://` (so comma-separated lists of URLs are handled one by one), or the end.
//! - The user is the text before the first `:` of the candidate; it must not contain `@`, `/`,
//!   `?` or `#` (otherwise there is no userinfo, e.g. `scheme://user@host` or `http://h/a:b`).
//! - The password runs from that `:` to the **last** `@` of the candidate, so a password holding
//!   `@`, `/`, `?` or `#` unencoded is still masked whole. The price: an `@` later in the path or
//!   query makes the mask cover up to it (more is masked, never less).
//! - An empty password, or one that is already [`MASK`], is left as is (so masking is idempotent).

use std::borrow::Cow;

use super::MASK;

const SEPARATOR: &[u8] = b"://";

/// Replaces the password of every `scheme://user:password@host` in `value` with [`MASK`].
///
/// User and host are kept, so people can still tell which database a URL points at.
pub fn mask_url_credentials(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut next = find_separator(bytes, 0);
    while let Some(separator) = next {
        let start = separator + SEPARATOR.len();
        let following = find_separator(bytes, start);
        let limit = following.map_or(bytes.len(), |at| scheme_start(bytes, start, at));
        let end = run_end(value, start, limit);
        if let Some((from, to)) = password_span(&bytes[start..end]) {
            let buffer = out.get_or_insert_with(|| String::with_capacity(value.len() + MASK.len()));
            buffer.push_str(&value[copied..start + from]);
            buffer.push_str(MASK);
            copied = start + to;
        }
        next = following;
    }
    match out {
        Some(mut buffer) => {
            buffer.push_str(&value[copied..]);
            Cow::Owned(buffer)
        }
        None => Cow::Borrowed(value),
    }
}

/// The next `://` at or after `from`.
fn find_separator(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(SEPARATOR.len())
        .position(|window| window == SEPARATOR)
        .map(|at| from + at)
}

/// Where the scheme before the `://` at `separator` begins (not before `floor`).
fn scheme_start(bytes: &[u8], floor: usize, separator: usize) -> usize {
    let mut at = separator;
    while at > floor && is_scheme_byte(bytes[at - 1]) {
        at -= 1;
    }
    at
}

fn is_scheme_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.')
}

/// Where the URL candidate starting at `start` ends (at most `limit`).
fn run_end(value: &str, start: usize, limit: usize) -> usize {
    value[start..limit]
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>'))
        .map_or(limit, |(at, _)| start + at)
}

/// The byte range of the password within one URL candidate (the text after `://`), if any.
fn password_span(run: &[u8]) -> Option<(usize, usize)> {
    let colon = run
        .iter()
        .position(|&b| matches!(b, b':' | b'@' | b'/' | b'?' | b'#'))?;
    if run[colon] != b':' {
        return None;
    }
    let at = run.iter().rposition(|&b| b == b'@')?;
    let password = run.get(colon + 1..at)?;
    if password.is_empty() || password == MASK.as_bytes() {
        return None;
    }
    Some((colon + 1, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(value: &str) -> String {
        mask_url_credentials(value).into_owned()
    }

    #[test]
    fn masks_the_password_keeps_user_and_host() {
        assert_eq!(
            mask("postgres://app:hunter2@db.internal:5432/app?sslmode=require"),
            "postgres://app:********************@db.internal:5432/app?sslmode=require"
        );
        assert_eq!(
            mask("redis://:s3cret@cache:6379/0"),
            "redis://:********************@cache:6379/0"
        );
    }

    #[test]
    fn unchanged_without_password() {
        for value in [
            "",
            "plain",
            "postgres://app@db/app",
            "https://example.com/path?q=a:b",
            "https://example.com/a:b@c",
            "http://[::1]:8080/",
            "postgres://app:@db/app",
            "://",
            ":::///@@@",
            "mailto:someone@example.com",
        ] {
            assert!(
                matches!(mask_url_credentials(value), Cow::Borrowed(_)),
                "{value}"
            );
        }
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(
            mask("postgres://u:pw@[2001:db8::1]:5432/db"),
            "postgres://u:********************@[2001:db8::1]:5432/db"
        );
        assert_eq!(
            mask("postgres://u@[::1]:5432/db"),
            "postgres://u@[::1]:5432/db"
        );
    }

    #[test]
    fn at_slash_and_hash_in_the_password() {
        assert_eq!(
            mask("mysql://root:p@ss@db/x"),
            "mysql://root:********************@db/x"
        );
        assert_eq!(
            mask("mysql://root:a/b?c#d@db/x"),
            "mysql://root:********************@db/x"
        );
        assert_eq!(
            mask("mysql://root:a@b/c@db/x"),
            "mysql://root:********************@db/x"
        );
        assert_eq!(
            mask("amqp://u:p%40ss@mq/vh"),
            "amqp://u:********************@mq/vh"
        );
    }

    #[test]
    fn several_urls_anywhere_in_the_value() {
        assert_eq!(
            mask("primary=postgres://a:one@h1/db,replica=postgres://b:two@h2/db"),
            "primary=postgres://a:********************@h1/db,replica=postgres://b:********************@h2/db"
        );
        assert_eq!(
            mask("redis://:x1@h1,redis://:x2@h2"),
            "redis://:********************@h1,redis://:********************@h2"
        );
        assert_eq!(
            mask("psql \"postgres://u:pw@h/db\" -c 'select 1' # mail me@example.com"),
            "psql \"postgres://u:********************@h/db\" -c 'select 1' # mail me@example.com"
        );
    }

    #[test]
    fn mongodb_multi_host() {
        assert_eq!(
            mask("mongodb://u:pw@h1:27017,h2:27017/db?replicaSet=rs0"),
            "mongodb://u:********************@h1:27017,h2:27017/db?replicaSet=rs0"
        );
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(
            mask("ünï://ü:pässwörd@日本/é é"),
            "ünï://ü:********************@日本/é é"
        );
    }

    #[test]
    fn at_in_the_query_over_masks() {
        assert_eq!(
            mask("https://u:pw@host/x?email=a@b.example"),
            "https://u:********************@b.example"
        );
    }

    #[test]
    fn idempotent() {
        let once = mask("postgres://u:pw@h/db and s3://k:v@bucket");
        assert!(matches!(mask_url_credentials(&once), Cow::Borrowed(_)));
    }

    #[test]
    fn long_inputs_are_linear() {
        let many_separators = "://".repeat(200_000);
        assert_eq!(mask(&many_separators), many_separators);
        let many_ats = format!("x://u:{}h", "@".repeat(400_000));
        assert_eq!(mask(&many_ats), format!("x://u:{MASK}@h"));
        let many_urls = "a://u:p@h,".repeat(50_000);
        assert_eq!(mask(&many_urls), format!("a://u:{MASK}@h,").repeat(50_000));
    }
}

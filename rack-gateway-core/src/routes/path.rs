//! Path checking: a path that would change under normalisation is refused, never rewritten.
//!
//! The gateway never rewrites a path before matching it: if two spellings could reach the same
//! rack resource (`/apps/../system`, `/apps//x`, `/apps/%77eb`), the request is refused with 400
//! so that the path that was authorised is exactly the path that is forwarded.
//!
//! Decisions:
//! * Dot segments (`.`, `..`), empty segments (`//`), backslashes, NUL and other control
//!   characters, spaces, `?`/`#` (the query must already be removed) and non-ASCII text are
//!   refused.
//! * **Every** percent-escape is refused, not only `%2e`/`%2f`/`%5c`/`%00`. Escapes of
//!   unreserved characters (`%41` = `A`) are decoded by RFC 3986 normalisation, so they would
//!   change the path; `%25` invites double decoding; and Convox app names, service names and
//!   process, build, release and instance ids are plain `[A-Za-z0-9._-]` text, so a legitimate
//!   client never needs an escape. Malformed escapes (`%`, `%4`, `%zz`) are refused as well.
//! * Characters RFC 3986 does not allow in a path (`"`, `<`, `>`, `[`, `]`, `{`, `}`, `|`, `^`,
//!   `` ` ``) are refused.
//! * A trailing `/` is not rewritten either; it simply matches no route (404).

use std::fmt;

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathError(&'static str);

impl PathError {
    /// One-line reason.
    pub fn reason(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PathError {}

/// Checks that `path` is an unambiguous absolute path and returns it unchanged (an empty path
/// is the root, `/`). It only validates: nothing is decoded or rewritten. Never panics.
pub fn check_path(path: &str) -> Result<&str, PathError> {
    if path.is_empty() {
        return Ok("/");
    }
    if !path.starts_with('/') {
        return Err(PathError("path must start with /"));
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'%' => {
                let decoded = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| h << 4 | l),
                    _ => None,
                };
                return Err(PathError(match decoded {
                    None => "malformed percent-escape in path",
                    Some(b'.') => "encoded dot (%2e) in path",
                    Some(b'/') => "encoded slash (%2f) in path",
                    Some(b'\\') => "encoded backslash (%5c) in path",
                    Some(0) => "encoded NUL (%00) in path",
                    Some(b'%') => "encoded percent sign (%25) in path",
                    Some(c) if c.is_ascii_control() => "encoded control character in path",
                    Some(c) if is_unreserved(c) => {
                        "percent-escape of a plain character in path (it would be decoded)"
                    }
                    Some(_) => "percent-escape in path (Convox names never need one)",
                }));
            }
            b'\\' => return Err(PathError("backslash in path")),
            0 => return Err(PathError("NUL byte in path")),
            b' ' => return Err(PathError("space in path")),
            b'?' | b'#' => return Err(PathError("query or fragment marker in path")),
            _ if byte.is_ascii_control() => {
                return Err(PathError("control character in path"));
            }
            _ if !byte.is_ascii() => {
                return Err(PathError("non-ASCII character in path"));
            }
            _ if !is_path_char(byte) => {
                return Err(PathError("character not allowed in a URL path"));
            }
            _ => {}
        }
        i += 1;
    }
    if path.contains("//") {
        return Err(PathError("empty path segment (//)"));
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(PathError("dot segment (. or ..) in path"));
    }
    Ok(path)
}

/// The value of one hexadecimal digit.
fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 `unreserved`: never needs escaping, so an escape of it is decoded by normalisation.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` without `pct-encoded`, plus the `/` separator.
fn is_path_char(byte: u8) -> bool {
    is_unreserved(byte)
        || matches!(
            byte,
            b'/' | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_unchanged() {
        for path in [
            "/",
            "/apps",
            "/apps/web/builds/BABC.tgz",
            "/apps/web/objects/tmp/a-b_c~d",
        ] {
            assert_eq!(check_path(path), Ok(path));
        }
        assert_eq!(check_path(""), Ok("/"));
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for path in [
            "apps",
            "/apps/../system",
            "/apps/./web",
            "/apps/..",
            "/apps//web",
            "/apps/%2e%2e/system",
            "/apps/%2E%2E/system",
            "/apps/web%2fprocesses",
            "/apps/web%2Fprocesses",
            "/apps\\web",
            "/apps/%5cweb",
            "/apps/%00",
            "/apps/\0",
            "/apps/web\n",
            "/apps/\u{7f}",
            "/apps/%41pp",
            "/apps/%252e",
            "/apps/%",
            "/apps/%4",
            "/apps/%zz",
            "/apps/%c3%a9",
            "/apps/é",
            "/apps/\u{85}",
            "/apps/a b",
            "/apps?x=1",
            "/apps/{app}",
        ] {
            assert!(check_path(path).is_err(), "{path:?} should be refused");
        }
    }
}

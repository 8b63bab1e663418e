//! Permission strings `<scope>:<resource>:<action>` and wildcard matching.

use std::fmt;
use std::str::FromStr;

/// A permission such as `convox:app:list`; a `*` segment matches any value there.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(String);

/// Why a permission string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid permission {text:?}: {reason}")]
pub struct PermissionError {
    text: String,
    reason: &'static str,
}

impl Permission {
    /// Parses `<scope>:<resource>:<action>`: three non-empty segments of `[a-z0-9_]` or `*`.
    pub fn parse(text: &str) -> Result<Self, PermissionError> {
        let refuse = |reason| PermissionError {
            text: text.to_owned(),
            reason,
        };
        let segments: Vec<&str> = text.split(':').collect();
        if segments.len() != 3 {
            return Err(refuse("expected <scope>:<resource>:<action>"));
        }
        for segment in segments {
            let valid = segment == "*"
                || (!segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            if !valid {
                return Err(refuse(
                    "each segment must be `*` or lower-case letters, digits and `_`",
                ));
            }
        }
        Ok(Permission(text.to_owned()))
    }

    /// The permission as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether holding `self` grants `wanted`: segment by segment, equal or `*` in `self`.
    pub fn covers(&self, wanted: &Permission) -> bool {
        covers(&self.0, &wanted.0)
    }
}

/// Whether `text` names one permission exactly: three segments of `[a-z0-9_]`, no `*`.
/// Checked without allocating, since it runs on every token-authorized request.
pub(crate) fn is_concrete(text: &str) -> bool {
    let mut segments = 0;
    for segment in text.split(':') {
        segments += 1;
        let valid = !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return false;
        }
    }
    segments == 3
}

/// Segment-wise match of a held permission (may contain `*`) against a wanted one.
pub(crate) fn covers(held: &str, wanted: &str) -> bool {
    let mut held_segments = held.split(':');
    let mut wanted_segments = wanted.split(':');
    loop {
        match (held_segments.next(), wanted_segments.next()) {
            (None, None) => return true,
            (Some(h), Some(w)) if h == "*" || h == w => continue,
            _ => return false,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({})", self.0)
    }
}

impl FromStr for Permission {
    type Err = PermissionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }

    #[test]
    fn wildcard_segments_match_any_value() {
        assert!(p("convox:*:*").covers(&p("convox:app:list")));
        assert!(p("convox:app:*").covers(&p("convox:app:restart")));
        assert!(p("*:*:*").covers(&p("gateway:user:create")));
        assert!(!p("convox:app:*").covers(&p("convox:build:list")));
        assert!(!p("gateway:*:*").covers(&p("convox:app:list")));
        assert!(p("convox:app:list").covers(&p("convox:app:list")));
    }

    #[test]
    fn concrete_permissions_have_three_plain_segments() {
        assert!(is_concrete("convox:app:list"));
        for bad in [
            "convox:*:list",
            "convox:app",
            "convox:app:list:x",
            "Convox:app:list",
            "a::b",
        ] {
            assert!(!is_concrete(bad), "{bad}");
        }
    }

    #[test]
    fn malformed_permissions_are_refused() {
        for bad in [
            "",
            "convox",
            "convox:app",
            "convox:app:list:x",
            "Convox:app:list",
            "a::b",
            "a:b c:d",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }
}

//! Strict `application/x-www-form-urlencoded`, for bodies whose meaning must not depend on who
//! parses them.
//!
//! The gateway decides what a release create changes from the form it reads; the rack acts on
//! the form it reads. If the two parsers could disagree (a `;` separator, a broken `%` escape,
//! a media type with odd parameters, two `Content-Type` headers), a client could show the
//! gateway one env and the rack another. So the gateway accepts only forms every parser reads
//! the same way, and forwards its own re-encoding of what it read, never the client's bytes.

use http::header::{self, HeaderMap};

/// Why a body is not a form the gateway accepts; `Display` is the reason sent back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormError {
    /// The media type is not exactly `application/x-www-form-urlencoded` (415).
    #[error("Release create must be sent as application/x-www-form-urlencoded (one Content-Type header, no parameters other than charset=utf-8).")]
    MediaType,
    /// The body is not a well-formed form (400).
    #[error("The form body is malformed: {0}.")]
    Malformed(&'static str),
}

impl FormError {
    /// 415 for the wrong media type, 400 for a malformed body.
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            FormError::MediaType => http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FormError::Malformed(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// What the request's `Content-Type` says about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Declared {
    /// No `Content-Type` at all (acceptable only for an empty body).
    Nothing,
    /// Exactly one `application/x-www-form-urlencoded`, optionally `; charset=utf-8`.
    Form,
}

/// Accepts no `Content-Type`, or exactly one that is the form media type; refuses lists,
/// duplicates, other types and other parameters.
pub(crate) fn declared(headers: &HeaderMap) -> Result<Declared, FormError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(Declared::Nothing);
    };
    if values.next().is_some() {
        return Err(FormError::MediaType);
    }
    let text = value.to_str().map_err(|_| FormError::MediaType)?;
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(FormError::MediaType);
    }
    for parameter in parts {
        let (name, value) = parameter.split_once('=').ok_or(FormError::MediaType)?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if !(name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")) {
            return Err(FormError::MediaType);
        }
    }
    Ok(Declared::Form)
}

/// Parses a form body strictly: `&`-separated `name[=value]` pairs (empty pairs skipped, as
/// every parser does), `+` for space, `%XX` escapes only with two hex digits, no `;`, and names
/// and values that decode to UTF-8 without NUL.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs = Vec::new();
    for piece in body.split(|byte| *byte == b'&') {
        if piece.is_empty() {
            continue;
        }
        if piece.contains(&b';') {
            return Err(FormError::Malformed("';' is not a separator"));
        }
        let (name, value) = match piece.iter().position(|byte| *byte == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &b""[..]),
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        match raw[at] {
            b'+' => out.push(b' '),
            b'%' => {
                let escape = raw
                    .get(at + 1..at + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .filter(|_| raw[at + 1].is_ascii_hexdigit() && raw[at + 2].is_ascii_hexdigit())
                    .ok_or(FormError::Malformed(
                        "'%' must be followed by two hex digits",
                    ))?;
                out.push(escape);
                at += 2;
            }
            byte => out.push(byte),
        }
        at += 1;
    }
    if out.contains(&0) {
        return Err(FormError::Malformed("NUL is not allowed"));
    }
    String::from_utf8(out).map_err(|_| FormError::Malformed("it does not decode to UTF-8"))
}

/// The canonical encoding of `pairs` (what the rack is sent).
pub(crate) fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_the_plain_form_media_type_is_accepted() {
        assert_eq!(declared(&headers(&[])), Ok(Declared::Nothing));
        for good in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/x-www-form-urlencoded;charset=\"UTF-8\"",
        ] {
            assert_eq!(declared(&headers(&[good])), Ok(Declared::Form), "{good}");
        }
        for bad in [
            "application/json",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded; charset=json",
            "application/x-www-form-urlencoded; charset=utf-16",
            "application/x-www-form-urlencoded, application/json",
            "application/x-www-form-urlencoded; x=y",
            "application/x-www-form-urlencodedx",
        ] {
            assert_eq!(
                declared(&headers(&[bad])),
                Err(FormError::MediaType),
                "{bad}"
            );
        }
        let twice = headers(&[
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded",
        ]);
        assert_eq!(declared(&twice), Err(FormError::MediaType));
    }

    #[test]
    fn well_formed_forms_parse_and_reencode() {
        let pairs = parse(b"env=A%3D1%0AB%3Dtwo+words&description=&&flag").unwrap();
        assert_eq!(
            pairs,
            [
                ("env".to_owned(), "A=1\nB=two words".to_owned()),
                ("description".to_owned(), String::new()),
                ("flag".to_owned(), String::new()),
            ]
        );
        let encoded = encode(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        assert_eq!(parse(encoded.as_bytes()).unwrap(), pairs);
        assert!(parse(b"").unwrap().is_empty());
        // An escaped name is the name it decodes to.
        assert_eq!(parse(b"en%76=X").unwrap()[0].0, "env");
    }

    #[test]
    fn ambiguous_forms_are_refused() {
        for bad in [
            &b"env=A%3D1;env=B%3D2"[..],
            b"env=%zz",
            b"env=%4",
            b"env=%",
            b"env=%+1",
            b"env=%00",
            b"env=%ff%fe",
            b"e\xffnv=1",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}

//! Reading the caller's credential: the `Authorization` header, or (where accepted) the
//! session cookie.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use http::HeaderMap;
use rack_gateway_core::identity::TOKEN_PREFIX;

/// A credential presented by the caller. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token (`rgw_…`).
    ApiToken(String),
    /// A session token from a browser or CLI sign-in.
    Session(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::ApiToken(_) => f.write_str("Credential::ApiToken(..)"),
            Credential::Session(_) => f.write_str("Credential::Session(..)"),
        }
    }
}

/// Why the credential could not even be read; each is a 401 with this text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No `Authorization` header.
    #[error(
        "missing authorization: send Authorization: Basic base64(convox:<token>) or Bearer <token>"
    )]
    Missing,
    /// A browser session cookie was sent to a CLI-only route.
    #[error("browser session cookies are not permitted on the rack proxy; use an API token")]
    CookieOnCliRoute,
    /// A scheme other than Basic or Bearer.
    #[error("unsupported authorization type (use Basic or Bearer)")]
    UnsupportedScheme,
    /// The header is not valid text, base64 or `user:password`.
    #[error("invalid authorization header format")]
    Malformed,
    /// The token part is empty.
    #[error("empty credential in authorization header")]
    Empty,
    /// The session cookie is empty or was sent more than once.
    #[error("invalid session cookie (empty, or sent more than once)")]
    AmbiguousCookie,
}

/// Where a credential came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// The `Authorization` header (the CLI, scripts, CI).
    Header(Credential),
    /// The `session_token` cookie (a browser): a session secret.
    Cookie(String),
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "session_token";

/// Reads the credential: the `Authorization` header when there is one (a header that cannot be
/// read is refused, never replaced by the cookie); else, when `cookies` is true, exactly one
/// `session_token` cookie. Where cookies are not accepted, one is refused with a reason.
pub fn presented_credential(
    headers: &HeaderMap,
    cookies: bool,
) -> Result<Presented, CredentialError> {
    if headers.contains_key(http::header::AUTHORIZATION) || !cookies {
        return parse_authorization(headers).map(Presented::Header);
    }
    let mut values = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| name.trim() == SESSION_COOKIE)
        .map(|(_, value)| value.trim());
    match (values.next(), values.next()) {
        (None, _) => Err(CredentialError::Missing),
        (Some(value), None) if !value.is_empty() => Ok(Presented::Cookie(value.to_owned())),
        // Two session cookies (one planted by a sibling domain, say): trust neither.
        _ => Err(CredentialError::AmbiguousCookie),
    }
}

/// The longest Authorization header value considered (tokens are ~50 bytes).
const MAX_AUTHORIZATION_LEN: usize = 4096;

/// Reads the caller's credential from the request headers.
pub fn parse_authorization(headers: &HeaderMap) -> Result<Credential, CredentialError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(if has_session_cookie(headers) {
            CredentialError::CookieOnCliRoute
        } else {
            CredentialError::Missing
        });
    };
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_LEN {
        return Err(CredentialError::Malformed);
    }
    if has_session_cookie(headers) {
        return Err(CredentialError::CookieOnCliRoute);
    }
    let text = value
        .to_str()
        .map_err(|_| CredentialError::Malformed)?
        .trim();
    let (scheme, rest) = text.split_once(' ').ok_or(CredentialError::Malformed)?;
    let secret = match scheme {
        "Bearer" => rest.trim().to_owned(),
        "Basic" => {
            let encoded = rest.trim();
            let decoded = STANDARD
                .decode(encoded)
                .or_else(|_| STANDARD_NO_PAD.decode(encoded))
                .map_err(|_| CredentialError::Malformed)?;
            let decoded = String::from_utf8(decoded).map_err(|_| CredentialError::Malformed)?;
            let (_username, password) =
                decoded.split_once(':').ok_or(CredentialError::Malformed)?;
            password.to_owned()
        }
        _ => return Err(CredentialError::UnsupportedScheme),
    };
    if secret.is_empty() {
        return Err(CredentialError::Empty);
    }
    if secret.starts_with(TOKEN_PREFIX) {
        Ok(Credential::ApiToken(secret))
    } else {
        Ok(Credential::Session(secret))
    }
}

fn has_session_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, value)| name.trim() == "session_token" && !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn basic_ignores_the_username_and_bearer_is_taken_as_is() {
        let basic = format!("Basic {}", STANDARD.encode("anyone:rgw_abc"));
        assert_eq!(
            parse_authorization(&headers(&[("authorization", &basic)])),
            Ok(Credential::ApiToken("rgw_abc".into()))
        );
        assert_eq!(
            parse_authorization(&headers(&[("authorization", "Bearer sess123")])),
            Ok(Credential::Session("sess123".into()))
        );
        let unpadded = format!("Basic {}", STANDARD_NO_PAD.encode("convox:rgw_x"));
        assert_eq!(
            parse_authorization(&headers(&[("authorization", &unpadded)])),
            Ok(Credential::ApiToken("rgw_x".into()))
        );
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        let cases = [
            (vec![], CredentialError::Missing),
            (
                vec![("authorization", "Digest abc")],
                CredentialError::UnsupportedScheme,
            ),
            (vec![("authorization", "Basic")], CredentialError::Malformed),
            (
                vec![("authorization", "Basic !!!notbase64")],
                CredentialError::Malformed,
            ),
            (
                vec![("authorization", "Basic Y29udm94")],
                CredentialError::Malformed,
            ),
            (
                vec![("authorization", "Bearer  ")],
                CredentialError::Malformed,
            ),
            (
                vec![("authorization", "Basic Y29udm94Og==")],
                CredentialError::Empty,
            ),
            (
                vec![
                    ("authorization", "Bearer rgw_a"),
                    ("authorization", "Bearer rgw_b"),
                ],
                CredentialError::Malformed,
            ),
            (
                vec![("cookie", "session_token=abc")],
                CredentialError::CookieOnCliRoute,
            ),
            (
                vec![
                    ("authorization", "Bearer rgw_a"),
                    ("cookie", "a=b; session_token=abc"),
                ],
                CredentialError::CookieOnCliRoute,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                parse_authorization(&headers(&pairs)),
                Err(expected),
                "{pairs:?}"
            );
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(
            parse_authorization(&headers(&[("authorization", &huge)])),
            Err(CredentialError::Malformed)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert!(!format!("{:?}", Credential::ApiToken("rgw_secret".into())).contains("secret"));
    }
}

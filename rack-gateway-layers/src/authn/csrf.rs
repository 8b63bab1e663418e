//! Cross-site request forgery defence for requests authenticated by the session cookie.
//!
//! A browser sends the cookie with any request to the gateway, including one a hostile page
//! makes it send. An unsafe request (anything but GET, HEAD and OPTIONS) authenticated by the
//! cookie must therefore also prove it comes from the gateway's own pages: it carries the
//! session's CSRF token in `X-CSRF-Token` (only the gateway's pages can read it, from
//! `/api/v1/me`), and its `Origin` (or, without one, its `Referer`) is the gateway's own.
//! Requests authenticated by a header need neither: a page cannot make a browser add one.
//!
//! The token is `base64url(HMAC-SHA256(key, "csrf|" + session id))`: bound to the session,
//! nothing stored, and compared in constant time.
//!
//! ```
//! use rack_gateway_layers::authn::CsrfGuard;
//!
//! let guard = CsrfGuard::new(b"a key derived from APP_SECRET_KEY", ["https://gateway.example.com"]);
//! let token = guard.token("3f1c…session id");
//! assert!(guard.token_matches("3f1c…session id", &token));
//! assert!(!guard.token_matches("another session", &token));
//! ```

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{header, HeaderMap, Method};
use ring::hmac;

/// The request header that carries the token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Why a cookie-authenticated request was refused (403 with this reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrfRefusal {
    /// No `X-CSRF-Token`, or one that is not this session's.
    #[error("invalid CSRF token")]
    Token,
    /// `Origin`/`Referer` missing or not the gateway's own.
    #[error("cross-origin request refused")]
    Origin,
}

/// Issues and checks CSRF tokens; cheap to clone.
#[derive(Clone)]
pub struct CsrfGuard {
    key: Arc<hmac::Key>,
    /// `scheme://host[:port]` of the gateway's own pages, lower-case.
    origins: Arc<[String]>,
}

impl std::fmt::Debug for CsrfGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfGuard")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl CsrfGuard {
    /// Tokens made with `key`; requests must come from one of `origins` (`https://host[:port]`).
    pub fn new<I, S>(key: &[u8], origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        CsrfGuard {
            key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, key)),
            origins: origins
                .into_iter()
                .map(|origin| origin.as_ref().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// The token of the session with this id.
    pub fn token(&self, session_id: &str) -> String {
        let tag = hmac::sign(&self.key, format!("csrf|{session_id}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `presented` is the session's token (constant time).
    pub fn token_matches(&self, session_id: &str, presented: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(presented.trim()) else {
            return false;
        };
        hmac::verify(&self.key, format!("csrf|{session_id}").as_bytes(), &tag).is_ok()
    }

    /// Checks a cookie-authenticated request of the session `session_id`: safe methods pass;
    /// unsafe ones need the token and the gateway's own origin.
    pub fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        session_id: &str,
    ) -> Result<(), CsrfRefusal> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        if !self.same_origin(headers) {
            return Err(CsrfRefusal::Origin);
        }
        let mut tokens = headers.get_all(CSRF_HEADER).iter();
        let token = match (tokens.next(), tokens.next()) {
            (Some(token), None) => token.to_str().unwrap_or_default(),
            _ => return Err(CsrfRefusal::Token),
        };
        if self.token_matches(session_id, token) {
            Ok(())
        } else {
            Err(CsrfRefusal::Token)
        }
    }

    /// Whether `Origin` (else `Referer`) names one of the gateway's origins. Neither header:
    /// refused (browsers send `Origin` on every unsafe request they make).
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let single = |name| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => value.to_str().ok(),
                _ => None,
            }
        };
        let origin = match single(header::ORIGIN) {
            Some(origin) => origin.to_ascii_lowercase(),
            None => match single(header::REFERER).and_then(origin_of) {
                Some(origin) => origin,
                None => return false,
            },
        };
        self.origins.contains(&origin)
    }
}

/// `scheme://authority` of an absolute URL, lower-case.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn guard() -> CsrfGuard {
        CsrfGuard::new(b"test key", ["https://gateway.example"])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn safe_methods_pass_unsafe_ones_need_token_and_origin() {
        let guard = guard();
        let token = guard.token("s1");
        assert_eq!(guard.check(&Method::GET, &headers(&[]), "s1"), Ok(()));
        let good = headers(&[
            ("origin", "https://gateway.example"),
            ("x-csrf-token", &token),
        ]);
        assert_eq!(guard.check(&Method::POST, &good, "s1"), Ok(()));
        let referer = headers(&[
            ("referer", "https://Gateway.example/app/users?x=1"),
            ("x-csrf-token", &token),
        ]);
        assert_eq!(guard.check(&Method::DELETE, &referer, "s1"), Ok(()));
        for (what, bad, refusal) in [
            (
                "no token",
                headers(&[("origin", "https://gateway.example")]),
                CsrfRefusal::Token,
            ),
            (
                "another session's token",
                headers(&[
                    ("origin", "https://gateway.example"),
                    ("x-csrf-token", &guard.token("s2")),
                ]),
                CsrfRefusal::Token,
            ),
            (
                "foreign origin",
                headers(&[("origin", "https://evil.example"), ("x-csrf-token", &token)]),
                CsrfRefusal::Origin,
            ),
            (
                "no origin",
                headers(&[("x-csrf-token", &token)]),
                CsrfRefusal::Origin,
            ),
            (
                "two origins",
                headers(&[
                    ("origin", "https://gateway.example"),
                    ("origin", "https://evil.example"),
                    ("x-csrf-token", &token),
                ]),
                CsrfRefusal::Origin,
            ),
            (
                "http instead of https",
                headers(&[
                    ("origin", "http://gateway.example"),
                    ("x-csrf-token", &token),
                ]),
                CsrfRefusal::Origin,
            ),
        ] {
            assert_eq!(
                guard.check(&Method::POST, &bad, "s1"),
                Err(refusal),
                "{what}"
            );
        }
    }
}

//! The cookies of sign-in: the session cookie, and the short-lived one that binds a sign-in to
//! the browser that started it.
//!
//! ```
//! use rack_gateway_bin::signin::cookies::CookiePolicy;
//!
//! let cookies = CookiePolicy { secure: true };
//! let set = cookies.session("rgs_abc");
//! assert!(set.to_str().unwrap().contains("HttpOnly; SameSite=Lax"));
//! ```

use http::{HeaderMap, HeaderValue};

/// The session cookie's name (as the reference, so the web UI finds it).
pub const SESSION_COOKIE: &str = "session_token";
/// The cookie that binds a web sign-in to its browser.
pub const LOGIN_COOKIE: &str = "rgw_login";
/// Where the login cookie is sent: the sign-in endpoints only.
const LOGIN_COOKIE_PATH: &str = "/api/v1/auth/web";
/// How long a sign-in may take (as the login state's lifetime).
pub const LOGIN_SECONDS: u32 = 600;

/// How cookies are set: `Secure` unless DEV_MODE serves plain HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookiePolicy {
    /// Add `Secure`.
    pub secure: bool,
}

impl CookiePolicy {
    /// The session cookie: HttpOnly, SameSite=Lax, for the whole site, for the browser session.
    pub fn session(&self, secret: &str) -> HeaderValue {
        self.header(&format!(
            "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax"
        ))
    }

    /// Removes the session cookie.
    pub fn clear_session(&self) -> HeaderValue {
        self.header(&format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        ))
    }

    /// The login-binding cookie, for the sign-in endpoints only, for ten minutes.
    pub fn login(&self, value: &str) -> HeaderValue {
        self.header(&format!(
            "{LOGIN_COOKIE}={value}; Path={LOGIN_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={LOGIN_SECONDS}"
        ))
    }

    /// Removes the login-binding cookie.
    pub fn clear_login(&self) -> HeaderValue {
        self.header(&format!(
            "{LOGIN_COOKIE}=; Path={LOGIN_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age=0"
        ))
    }

    fn header(&self, text: &str) -> HeaderValue {
        let text = if self.secure {
            format!("{text}; Secure")
        } else {
            text.to_owned()
        };
        // Names and values are ours: base64url secrets and fixed attributes.
        HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// The value of cookie `name`, if the request sent exactly one (several with one name — as a
/// sibling domain could plant — count as none).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim());
    match (found.next(), found.next()) {
        (Some(value), None) if !value.is_empty() => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_their_attributes() {
        let secure = CookiePolicy { secure: true };
        let session = secure.session("rgs_x");
        assert_eq!(
            session.to_str().unwrap(),
            "session_token=rgs_x; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        let dev = CookiePolicy { secure: false };
        assert!(!dev.session("rgs_x").to_str().unwrap().contains("Secure"));
        assert!(dev.clear_session().to_str().unwrap().contains("Max-Age=0"));
        let login = secure.login("abc").to_str().unwrap().to_owned();
        assert!(login.contains("Path=/api/v1/auth/web") && login.contains("Max-Age=600"));
    }

    #[test]
    fn a_cookie_sent_twice_counts_as_none() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", HeaderValue::from_static("a=1; session_token=one"));
        assert_eq!(cookie(&headers, "session_token"), Some("one"));
        headers.append("cookie", HeaderValue::from_static("session_token=two"));
        assert_eq!(cookie(&headers, "session_token"), None);
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}

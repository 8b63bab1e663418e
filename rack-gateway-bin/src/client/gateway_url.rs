//! The base URL of a gateway, and the URLs derived from it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::token::SessionToken;

/// Where the Convox CLI reaches the rack through the gateway.
const RACK_PROXY_PATH: &str = "/api/v1/rack-proxy";

/// The user name in the Convox rack URL; the gateway ignores it and reads the password.
const RACK_URL_USER: &str = "convox";

/// Everything but RFC 3986's unreserved characters is encoded in the password: `url` leaves
/// `%` alone (it takes it for an escape already made), so a token must arrive fully encoded.
const PASSWORD_ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A gateway's base URL: https, or http for a loopback host only (a session token must never
/// cross a network in clear text); no user info, query or fragment. A path is kept as a prefix
/// for gateways served below one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GatewayUrl(Url);

/// Why a text is not a usable gateway URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidGatewayUrl {
    /// Not a URL at all.
    #[error("{text:?} is not a URL ({reason}); give the gateway's base URL, e.g. https://gateway.example.com")]
    Unparsable {
        /// What was given.
        text: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Plain HTTP to a host that is not this machine, or another scheme.
    #[error("{0} must use https (http is accepted only for localhost, 127.0.0.0/8 and ::1)")]
    Insecure(String),
    /// User info, query or fragment, which have no place in a base URL.
    #[error("{0} must be the gateway's base URL, without a user, query or fragment")]
    NotABase(String),
}

impl GatewayUrl {
    /// The URL of a gateway endpoint, `path` starting with `/`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// The Convox rack URL through this gateway with `token` as the Basic password,
    /// `<scheme>://convox:<token>@<host>[:port][prefix]/api/v1/rack-proxy`, the token
    /// percent-encoded as user info requires.
    pub fn rack_url(&self, token: &SessionToken) -> String {
        let mut url = self.0.clone();
        // Both only fail for URLs that cannot have a host, which the parser refused already.
        let _ = url.set_username(RACK_URL_USER);
        let password = utf8_percent_encode(token.expose(), PASSWORD_ENCODED).to_string();
        let _ = url.set_password(Some(&password));
        let base = url.as_str().trim_end_matches('/');
        format!("{base}{RACK_PROXY_PATH}")
    }

    /// Whether the gateway is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// The URL without a trailing `/`.
    fn base(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

/// Whether plain HTTP to `host` stays on this machine.
fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl FromStr for GatewayUrl {
    type Err = InvalidGatewayUrl;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let url = Url::parse(text.trim()).map_err(|error| InvalidGatewayUrl::Unparsable {
            text: text.to_owned(),
            reason: error.to_string(),
        })?;
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            // Not echoed: user info may hold a password.
            return Err(InvalidGatewayUrl::NotABase(format!(
                "{}://{}",
                url.scheme(),
                url.host_str().unwrap_or_default()
            )));
        }
        let secure = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => is_loopback(url.host()),
            _ => false,
        };
        if !secure {
            return Err(InvalidGatewayUrl::Insecure(url.to_string()));
        }
        Ok(GatewayUrl(url))
    }
}

impl TryFrom<String> for GatewayUrl {
    type Error = InvalidGatewayUrl;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<GatewayUrl> for String {
    fn from(url: GatewayUrl) -> Self {
        url.base().to_owned()
    }
}

impl fmt::Display for GatewayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base())
    }
}

impl fmt::Debug for GatewayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GatewayUrl({})", self.base())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> GatewayUrl {
        text.parse().expect("valid gateway URL")
    }

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for ok in [
            "https://gateway.example.com",
            "https://gateway.example.com:8443/",
            "https://example.com/gateway",
            "http://localhost:8447",
            "http://127.0.0.1:9447",
            "http://127.1.2.3",
            "http://[::1]:8447",
        ] {
            assert!(ok.parse::<GatewayUrl>().is_ok(), "{ok}");
        }
        for insecure in [
            "http://gateway.example.com",
            "http://10.0.0.5:8447",
            "http://localhost.example.com",
            "ftp://gateway.example.com",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(
                    insecure.parse::<GatewayUrl>(),
                    Err(InvalidGatewayUrl::Insecure(_))
                ),
                "{insecure}"
            );
        }
    }

    #[test]
    fn refuses_what_a_base_url_cannot_hold_without_echoing_a_password() {
        for bad in [
            "https://gateway.example.com?x=1",
            "https://gateway.example.com/#top",
            "https://alice:hunter2@gateway.example.com",
        ] {
            let error = bad.parse::<GatewayUrl>().expect_err(bad);
            assert!(matches!(error, InvalidGatewayUrl::NotABase(_)), "{bad}");
            assert!(!error.to_string().contains("hunter2"));
        }
        assert!(matches!(
            "gateway.example.com".parse::<GatewayUrl>(),
            Err(InvalidGatewayUrl::Unparsable { .. })
        ));
    }

    #[test]
    fn endpoints_hang_below_the_base_and_its_prefix() {
        assert_eq!(
            url("https://gw.example.com/").endpoint("/api/v1/auth/cli/start"),
            "https://gw.example.com/api/v1/auth/cli/start"
        );
        assert_eq!(
            url("https://example.com/gw/").endpoint("/api/v1/auth/cli/start"),
            "https://example.com/gw/api/v1/auth/cli/start"
        );
        assert_eq!(
            String::from(url("https://GW.example.com:443/")),
            "https://gw.example.com"
        );
    }

    #[test]
    fn rack_url_carries_the_token_as_the_basic_password() {
        let token = "rgs_abc-DEF_123".parse::<SessionToken>().expect("token");
        assert_eq!(
            url("http://127.0.0.1:8447").rack_url(&token),
            "http://convox:rgs_abc-DEF_123@127.0.0.1:8447/api/v1/rack-proxy"
        );
        assert_eq!(
            url("https://example.com/gw").rack_url(&token),
            "https://convox:rgs_abc-DEF_123@example.com/gw/api/v1/rack-proxy"
        );
        let awkward = "a:b@c/d%e".parse::<SessionToken>().expect("token");
        assert_eq!(
            url("https://gw.example.com").rack_url(&awkward),
            "https://convox:a%3Ab%40c%2Fd%25e@gw.example.com/api/v1/rack-proxy"
        );
    }
}

//! Which headers cross the gateway, in each direction.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

// The env headers are sent upstream only when the redaction layer allowed them
// (`Injected::env_headers`); dropped otherwise, so a stack without that layer fails closed.
use super::ENV_HEADERS;

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `Proxy-Connection` and `Keep-Alive`):
/// they describe one connection and are never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Client headers never sent to the rack.
///
/// - `authorization`, `cookie`, `proxy-authorization`: the caller's gateway credentials; the rack
///   gets the gateway's own Basic credential instead.
/// - `host`: replaced by the rack's authority. `expect`: the gateway's server side answers
///   `100-continue` itself and streams the body upstream.
/// - Identity and correlation headers the gateway sets itself; a client-supplied value would be a
///   spoof.
/// - `env`, `environment`, `release-env` ([`ENV_HEADERS`](super::ENV_HEADERS)) are not listed here: they pass only
///   when the request carries the [`EnvHeadersAllowed`](super::EnvHeadersAllowed) marker.
const DROPPED: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "host",
    "expect",
    "x-user-email",
    "x-user-name",
    "x-auth-source",
    "x-api-token-id",
    "x-api-token-name",
    "x-request-id",
];

/// `Sec-WebSocket-*` request headers passed to the rack on a websocket upgrade.
const WEBSOCKET_REQUEST: &[&str] = &[
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// `Sec-WebSocket-*` response headers passed back to the client on a `101`.
pub(crate) const WEBSOCKET_RESPONSE: &[&str] = &[
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) const X_USER_EMAIL: HeaderName = HeaderName::from_static("x-user-email");

/// Values the gateway adds to every upstream request.
pub(crate) struct Injected<'a> {
    /// The rack's authority (`host[:port]`).
    pub(crate) host: &'a HeaderValue,
    /// `Basic base64(user:token)`, marked sensitive.
    pub(crate) authorization: &'a HeaderValue,
    pub(crate) request_id: HeaderValue,
    pub(crate) user_email: Option<HeaderValue>,
    /// `Some(rack origin)` for a websocket upgrade.
    pub(crate) websocket_origin: Option<&'a HeaderValue>,
    /// Whether the [`ENV_HEADERS`] pass (the request carries `EnvHeadersAllowed`).
    pub(crate) env_headers: bool,
}

/// The header names listed in `Connection` (lowercase), which are hop-by-hop too.
fn connection_named(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

fn is_hop_by_hop(name: &HeaderName, named: &[String]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || named.iter().any(|n| n == name.as_str())
}

/// The headers to send to the rack for a client request with headers `incoming`.
pub(crate) fn upstream_request(incoming: &HeaderMap, injected: Injected<'_>) -> HeaderMap {
    let websocket = injected.websocket_origin.is_some();
    let named = connection_named(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 6);
    for (name, value) in incoming {
        let lower = name.as_str();
        if DROPPED.contains(&lower) || is_hop_by_hop(name, &named) {
            continue;
        }
        if !injected.env_headers && ENV_HEADERS.contains(&lower) {
            continue;
        }
        if lower.starts_with("sec-websocket-") && !(websocket && WEBSOCKET_REQUEST.contains(&lower))
        {
            continue;
        }
        // An upgrade carries no body (the authorization layer refuses one that announces
        // it): a length left in place would make the rack wait for bytes that never come.
        if websocket && (*name == header::ORIGIN || *name == header::CONTENT_LENGTH) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out.insert(header::HOST, injected.host.clone());
    out.insert(header::AUTHORIZATION, injected.authorization.clone());
    out.insert(X_REQUEST_ID, injected.request_id);
    if let Some(email) = injected.user_email {
        out.insert(X_USER_EMAIL, email);
    }
    if let Some(origin) = injected.websocket_origin {
        out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        out.insert(header::ORIGIN, origin.clone());
    }
    out
}

/// Rack response headers never relayed besides the hop-by-hop ones.
///
/// - `x-error-reason`, `x-mfa-required`, `x-mfa-level`: the gateway's own signals to clients; a
///   rack sending them would put words in the gateway's mouth.
/// - `set-cookie`: a rack has no business setting cookies on the gateway's domain (the session
///   cookie lives there).
const INTERNAL_RESPONSE: &[&str] = &[
    "x-error-reason",
    "x-mfa-required",
    "x-mfa-level",
    "set-cookie",
];

/// Removes hop-by-hop and gateway-internal headers from a rack response before it is relayed.
pub(crate) fn strip_response(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    for name in HOP_BY_HOP.iter().chain(INTERNAL_RESPONSE).copied() {
        headers.remove(name);
    }
    for name in named {
        headers.remove(name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn injected<'a>(
        host: &'a HeaderValue,
        auth: &'a HeaderValue,
        origin: Option<&'a HeaderValue>,
    ) -> Injected<'a> {
        Injected {
            host,
            authorization: auth,
            request_id: HeaderValue::from_static("rid"),
            user_email: None,
            websocket_origin: origin,
            env_headers: false,
        }
    }

    #[test]
    fn drops_credentials_hop_by_hop_and_connection_named() {
        let incoming = map(&[
            ("authorization", "Bearer gateway"),
            ("cookie", "session=1"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("x-user-email", "spoof@example.com"),
            ("environment", "A=1"),
            ("version", "3.0.0"),
            ("command", "ls"),
            ("sec-websocket-key", "abc"),
        ]);
        let host = HeaderValue::from_static("rack");
        let auth = HeaderValue::from_static("Basic eA==");
        let out = upstream_request(&incoming, injected(&host, &auth, None));
        assert_eq!(out.get("authorization"), Some(&auth));
        for gone in [
            "cookie",
            "connection",
            "x-secret",
            "transfer-encoding",
            "x-user-email",
            "environment",
            "sec-websocket-key",
        ] {
            assert!(out.get(gone).is_none(), "{gone} was forwarded");
        }
        assert_eq!(
            out.get("version").map(|v| v.as_bytes()),
            Some(&b"3.0.0"[..])
        );
        assert_eq!(out.get("command").map(|v| v.as_bytes()), Some(&b"ls"[..]));
        assert_eq!(
            out.get("x-request-id").map(|v| v.as_bytes()),
            Some(&b"rid"[..])
        );
    }

    #[test]
    fn env_headers_pass_only_when_allowed() {
        let incoming = map(&[
            ("environment", "A=1"),
            ("env", "B=2"),
            ("release-env", "C=3"),
        ]);
        let host = HeaderValue::from_static("rack");
        let auth = HeaderValue::from_static("Basic eA==");
        let dropped = upstream_request(&incoming, injected(&host, &auth, None));
        for name in ENV_HEADERS {
            assert!(dropped.get(*name).is_none(), "{name} was forwarded");
        }
        let allowed = Injected {
            env_headers: true,
            ..injected(&host, &auth, None)
        };
        let kept = upstream_request(&incoming, allowed);
        assert_eq!(
            kept.get("environment").map(|v| v.as_bytes()),
            Some(&b"A=1"[..])
        );
        assert!(kept.get("env").is_some() && kept.get("release-env").is_some());
    }

    #[test]
    fn websocket_keeps_handshake_headers() {
        let incoming = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-key", "abc"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat"),
            ("origin", "https://gateway.example"),
        ]);
        let host = HeaderValue::from_static("rack");
        let auth = HeaderValue::from_static("Basic eA==");
        let origin = HeaderValue::from_static("https://rack");
        let out = upstream_request(&incoming, injected(&host, &auth, Some(&origin)));
        assert_eq!(out.get("origin"), Some(&origin));
        assert_eq!(
            out.get("upgrade").map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
        assert_eq!(
            out.get("connection").map(|v| v.as_bytes()),
            Some(&b"upgrade"[..])
        );
        assert!(out.get("sec-websocket-key").is_some());
        assert!(out.get("sec-websocket-protocol").is_some());
    }

    #[test]
    fn upgrades_lose_their_length_and_rack_responses_their_internal_headers() {
        let incoming = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("content-length", "0"),
        ]);
        let host = HeaderValue::from_static("rack");
        let auth = HeaderValue::from_static("Basic eA==");
        let origin = HeaderValue::from_static("https://rack");
        let out = upstream_request(&incoming, injected(&host, &auth, Some(&origin)));
        assert!(out.get("content-length").is_none());
        assert!(out.get("transfer-encoding").is_none());

        let mut response = map(&[
            ("x-error-reason", "forged"),
            ("x-mfa-required", "true"),
            ("set-cookie", "session_token=planted"),
            ("content-type", "application/json"),
        ]);
        strip_response(&mut response);
        assert_eq!(response.len(), 1, "{response:?}");
    }
}

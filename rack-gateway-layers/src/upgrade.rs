//! What counts as a websocket upgrade, decided in one place for every layer.
//!
//! Authorization, audit and forwarding must agree on whether a request is a websocket: if one of
//! them treated `CONNECT` with upgrade headers as a websocket and another did not, a request
//! could be authorized as one thing and forwarded as another. The rule here is deliberately
//! narrow: an HTTP/1.1 `GET` whose `Connection` lists `upgrade` and whose `Upgrade` is
//! `websocket` (RFC 6455 §4.1). HTTP/2 extended CONNECT (RFC 8441) is not enabled on the
//! gateway's server, so no `CONNECT` is ever a websocket, and a plain `CONNECT` never matches a
//! route at all.
//!
//! ```
//! use rack_gateway_layers::upgrade::is_websocket_upgrade;
//!
//! let request = http::Request::get("/apps/web/processes/p1/exec")
//!     .header("connection", "Upgrade")
//!     .header("upgrade", "websocket")
//!     .body(())
//!     .unwrap();
//! assert!(is_websocket_upgrade(&request));
//! ```

use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Version};

/// Whether `request` is a websocket upgrade: HTTP/1.1 `GET` with `Connection: upgrade` and
/// `Upgrade: websocket` (tokens compared case-insensitively).
pub fn is_websocket_upgrade<B>(request: &Request<B>) -> bool {
    request.method() == Method::GET
        && request.version() == Version::HTTP_11
        && asks_for_websocket(request.headers())
}

/// Whether the headers ask for a websocket, whatever the method and version.
pub fn asks_for_websocket(headers: &HeaderMap) -> bool {
    lists_token(headers, header::CONNECTION, "upgrade")
        && lists_token(headers, header::UPGRADE, "websocket")
}

/// Whether the request head announces a body: any `Transfer-Encoding`, or a `Content-Length`
/// other than a single `0`. A websocket upgrade must not carry one: a rack that waits for the
/// announced body would stall, and one that does not would read it as the next request.
pub fn announces_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    match (lengths.next(), lengths.next()) {
        (None, _) => false,
        (Some(value), None) => value.as_bytes() != b"0",
        (Some(_), Some(_)) => true,
    }
}

fn lists_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, version: Version, pairs: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).version(version).uri("/x");
        for (name, value) in pairs {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    const UPGRADE: &[(&str, &str)] = &[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
    ];

    #[test]
    fn only_http11_get_upgrades_are_websockets() {
        assert!(is_websocket_upgrade(&request(
            Method::GET,
            Version::HTTP_11,
            UPGRADE
        )));
        assert!(!is_websocket_upgrade(&request(
            Method::CONNECT,
            Version::HTTP_11,
            UPGRADE
        )));
        assert!(!is_websocket_upgrade(&request(
            Method::POST,
            Version::HTTP_11,
            UPGRADE
        )));
        assert!(!is_websocket_upgrade(&request(
            Method::GET,
            Version::HTTP_10,
            UPGRADE
        )));
        assert!(!is_websocket_upgrade(&request(
            Method::GET,
            Version::HTTP_2,
            UPGRADE
        )));
        assert!(!is_websocket_upgrade(&request(
            Method::GET,
            Version::HTTP_11,
            &[("upgrade", "websocket")]
        )));
        assert!(!is_websocket_upgrade(&request(
            Method::GET,
            Version::HTTP_11,
            &[("connection", "upgrade"), ("upgrade", "h2c")]
        )));
    }

    #[test]
    fn bodies_are_announced_by_length_or_encoding() {
        let headers = |pairs: &[(&str, &str)]| {
            request(Method::GET, Version::HTTP_11, pairs)
                .headers()
                .clone()
        };
        assert!(!announces_body(&headers(&[])));
        assert!(!announces_body(&headers(&[("content-length", "0")])));
        assert!(announces_body(&headers(&[("content-length", "12")])));
        assert!(announces_body(&headers(&[(
            "transfer-encoding",
            "chunked"
        )])));
        assert!(announces_body(&headers(&[
            ("content-length", "0"),
            ("content-length", "0")
        ])));
    }
}

//! Where the rack is and how to reach it: [`RackTarget`], [`RackTls`], [`OriginPolicy`].

use std::fmt;
use std::time::Duration;

/// The rack to forward to and the credential to present to it.
///
/// Built once at start-up from `RACK_HOST`, `RACK_USERNAME`, `RACK_TOKEN`, `RACK_TLS_VERIFY` and
/// `RACK_TLS_PIN_SHA256`. The `Debug` output never shows the token.
#[derive(Clone)]
pub struct RackTarget {
    /// Base URL of the rack API, e.g. `https://rack.example:5443` or `http://127.0.0.1:9000`.
    /// It may carry a path prefix; it must not carry a query.
    pub base: http::Uri,
    /// Basic-auth user name presented to the rack (`RACK_USERNAME`, usually `convox`).
    pub username: String,
    /// Basic-auth password presented to the rack (`RACK_TOKEN`). Secret.
    pub token: String,
    /// How the rack's certificate is checked (ignored for `http://` bases, except that a pin
    /// on a plain-HTTP base is a configuration error).
    pub tls: RackTls,
    /// Limit on establishing a connection (TCP connect and TLS handshake together).
    pub connect_timeout: Duration,
    /// Limit on waiting for the rack's response headers once the request body has been sent,
    /// and on the request body making no progress. Never applies to streaming bodies.
    pub header_timeout: Duration,
}

impl fmt::Debug for RackTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RackTarget")
            .field("base", &self.base)
            .field("username", &self.username)
            .field("token", &"<redacted>")
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("header_timeout", &self.header_timeout)
            .finish()
    }
}

/// How the rack's TLS certificate is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum RackTls {
    /// `RACK_TLS_VERIFY=false`: any certificate is accepted (Convox racks use self-signed
    /// certificates). The handshake signature is still checked against the presented certificate.
    Insecure,
    /// The certificate chain and host name are verified against the operating system's root
    /// certificates (rustls-native-certs; `SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured).
    Verify,
    /// `RACK_TLS_PIN_SHA256`: the SHA-256 of the leaf certificate's DER must equal this value.
    /// Chain, host name and validity dates are not checked; the pin is the trust anchor.
    Pinned([u8; 32]),
}

impl fmt::Debug for RackTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RackTls::Insecure => f.write_str("Insecure"),
            RackTls::Verify => f.write_str("Verify"),
            RackTls::Pinned(pin) => write!(f, "Pinned({})", fingerprint_hex(pin)),
        }
    }
}

/// Which browser origins may open a websocket through the gateway.
///
/// A request without `Origin` (the Convox CLI, scripts) is allowed. Otherwise the origin's host
/// must equal the request's `Host` (port included, default ports normalized), or be listed in
/// `allowed_hosts`, or be a loopback name when `allow_localhost` is set. Anything else gets a
/// 403 refusal and nothing is sent to the rack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Extra allowed origin hosts (e.g. the gateway's public `DOMAIN`, the web dev server).
    /// An entry `host` matches that host on any port; `host:port` matches only that port.
    pub allowed_hosts: Vec<String>,
    /// Allow `localhost`, `*.localhost`, `127.0.0.1` and `[::1]` origins (development).
    pub allow_localhost: bool,
}

/// A rack configuration that cannot work; start-up should stop with this message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardConfigError {
    /// The base URL is not an absolute `http://` or `https://` URL with a host.
    #[error("rack URL (RACK_HOST) {base:?} is invalid: {reason}")]
    InvalidBase {
        /// The offending URL.
        base: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The user name or token cannot be sent as Basic credentials.
    #[error("rack credentials are invalid: {0}")]
    InvalidCredentials(&'static str),
    /// A timeout of zero would refuse every request.
    #[error("rack {0} timeout must be greater than zero")]
    ZeroTimeout(&'static str),
    /// `RACK_TLS_PIN_SHA256` is not 32 hex-encoded bytes.
    #[error("RACK_TLS_PIN_SHA256 is invalid: {0}")]
    InvalidPin(String),
    /// A pin was given for a rack reached over plain HTTP, where it could not be enforced.
    #[error("RACK_TLS_PIN_SHA256 is set but the rack URL {0:?} is not https://")]
    PinWithoutTls(String),
    /// Verification was requested but the system has no usable root certificates.
    #[error("cannot verify the rack's TLS certificate (RACK_TLS_VERIFY): {0}")]
    NoRootCertificates(#[source] std::io::Error),
    /// rustls refused the TLS configuration.
    #[error("rack TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// Parses a SHA-256 certificate fingerprint: 64 hex digits, any case, optionally separated by
/// colons (`AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it). Surrounding whitespace
/// is ignored.
pub fn parse_pin(hex: &str) -> Result<[u8; 32], ForwardConfigError> {
    let digits: Vec<u8> = hex.trim().bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return Err(ForwardConfigError::InvalidPin(format!(
            "expected 64 hex digits (optionally colon-separated), got {}",
            digits.len()
        )));
    }
    let mut pin = [0u8; 32];
    for (byte, pair) in pin.iter_mut().zip(digits.chunks_exact(2)) {
        let (Some(high), Some(low)) = (hex_value(pair[0]), hex_value(pair[1])) else {
            return Err(ForwardConfigError::InvalidPin(
                "contains a character that is not a hex digit".to_owned(),
            ));
        };
        *byte = (high << 4) | low;
    }
    Ok(pin)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Uppercase colon-separated hex, the form operators compare by eye.
pub(crate) fn fingerprint_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_accepts_colons_and_any_case() {
        let plain = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let colons = fingerprint_hex(&parse_pin(plain).unwrap_or_default());
        assert_eq!(parse_pin(&colons).ok(), parse_pin(plain).ok());
        assert_eq!(parse_pin(plain).ok().map(|p| p[5]), Some(0x55));
        assert_eq!(
            parse_pin(&format!(" {} ", colons.to_lowercase())).ok(),
            parse_pin(plain).ok()
        );
    }

    #[test]
    fn pin_rejects_bad_input() {
        assert!(parse_pin("").is_err());
        assert!(parse_pin("abcd").is_err());
        assert!(parse_pin(&"g".repeat(64)).is_err());
        assert!(parse_pin(&"a".repeat(66)).is_err());
    }

    #[test]
    fn debug_hides_token() {
        let target = RackTarget {
            base: http::Uri::from_static("http://rack"),
            username: "convox".into(),
            token: "s3cr3t-token".into(),
            tls: RackTls::Insecure,
            connect_timeout: Duration::from_secs(1),
            header_timeout: Duration::from_secs(1),
        };
        assert!(!format!("{target:?}").contains("s3cr3t"));
    }
}

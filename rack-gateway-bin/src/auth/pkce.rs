//! PKCE (RFC 7636) with the `S256` method: the challenge a verifier commits to.
//!
//! ```
//! use rack_gateway_bin::auth::pkce::challenge_s256;
//!
//! // The example of RFC 7636, appendix B.
//! let challenge = challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
//! assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
//! ```

use base64::Engine as _;

/// `BASE64URL(SHA256(verifier))` without padding: the `code_challenge` sent with
/// `code_challenge_method=S256`.
pub fn challenge_s256(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_example() {
        assert_eq!(
            challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn is_url_safe_and_unpadded() {
        let challenge = challenge_s256("any verifier at all");
        assert_eq!(challenge.len(), 43);
        assert!(challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}

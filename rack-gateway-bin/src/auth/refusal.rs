//! [`SignInRefusal`]: why a sign-in was not accepted, in words fit for the user and the audit
//! record.

use openidconnect::{ClaimsVerificationError, SignatureVerificationError};

/// Why a sign-in was refused. `Display` is one line without any token, code or secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    /// GOOGLE_ALLOWED_DOMAIN is set and the account's `hd` claim is missing or another domain.
    #[error("this account does not belong to the organisation's Google Workspace domain")]
    WrongHostedDomain,
    /// GOOGLE_ALLOWED_DOMAIN is set and the email address is in another domain.
    #[error("this account's email address is not in the organisation's domain")]
    WrongEmailDomain,
    /// The provider does not vouch for the email address (`email_verified` is not true).
    #[error("the identity provider has not verified this account's email address")]
    EmailNotVerified,
    /// The ID token carries no usable email address.
    #[error("the identity provider did not give an email address for this account")]
    NoEmail,
    /// The ID token's signature does not verify with the provider's keys, or uses an algorithm
    /// that is not accepted.
    #[error("the identity token's signature is not valid")]
    BadSignature,
    /// The ID token was issued for another client (`aud`).
    #[error("the identity token was issued for another application")]
    WrongAudience,
    /// The ID token was issued by another provider (`iss`).
    #[error("the identity token was issued by an unexpected provider")]
    WrongIssuer,
    /// The ID token has expired (`exp`), or was issued too long ago (`iat`).
    #[error("the identity token has expired; sign in again")]
    Expired,
    /// The ID token claims to be issued in the future (`iat`): a clock is badly wrong.
    #[error("the identity token is not valid yet; check the clocks and sign in again")]
    NotYetValid,
    /// The ID token answers another sign-in attempt (`nonce`).
    #[error("the identity token does not belong to this sign-in attempt; sign in again")]
    WrongNonce,
    /// The ID token is malformed or uses features that are not supported (encryption, nesting).
    #[error("the identity token is malformed or unsupported")]
    MalformedToken,
    /// The code exchange failed: the provider refused it, could not be reached, or answered
    /// something unreadable.
    #[error("the identity provider did not complete the sign-in: {0}")]
    Provider(String),
}

impl SignInRefusal {
    /// The refusal for an ID token the verifier rejected.
    pub(crate) fn from_verification(error: &ClaimsVerificationError) -> Self {
        match error {
            ClaimsVerificationError::Expired(_) => SignInRefusal::Expired,
            ClaimsVerificationError::InvalidAudience(_) => SignInRefusal::WrongAudience,
            ClaimsVerificationError::InvalidIssuer(_) => SignInRefusal::WrongIssuer,
            ClaimsVerificationError::InvalidNonce(_) => SignInRefusal::WrongNonce,
            ClaimsVerificationError::SignatureVerification(_) => SignInRefusal::BadSignature,
            _ => SignInRefusal::MalformedToken,
        }
    }
}

/// Whether the cached keys may be what failed: the token names a key we do not have, or the
/// one candidate key does not match (a kid-less token after the provider rotated its key).
pub(crate) fn newer_keys_might_help(error: &ClaimsVerificationError) -> bool {
    matches!(
        error,
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey | SignatureVerificationError::CryptoError(_)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_one_line() {
        let all = [
            SignInRefusal::WrongHostedDomain,
            SignInRefusal::WrongEmailDomain,
            SignInRefusal::EmailNotVerified,
            SignInRefusal::NoEmail,
            SignInRefusal::BadSignature,
            SignInRefusal::WrongAudience,
            SignInRefusal::WrongIssuer,
            SignInRefusal::Expired,
            SignInRefusal::NotYetValid,
            SignInRefusal::WrongNonce,
            SignInRefusal::MalformedToken,
            SignInRefusal::Provider("it refused the code (invalid_grant)".into()),
        ];
        for refusal in all {
            let line = refusal.to_string();
            assert!(!line.contains('\n') && !line.is_empty(), "{refusal:?}");
        }
    }

    #[test]
    fn verification_errors_map_to_their_refusal() {
        let cases = [
            (
                ClaimsVerificationError::Expired("x".into()),
                SignInRefusal::Expired,
            ),
            (
                ClaimsVerificationError::InvalidAudience("x".into()),
                SignInRefusal::WrongAudience,
            ),
            (
                ClaimsVerificationError::InvalidIssuer("x".into()),
                SignInRefusal::WrongIssuer,
            ),
            (
                ClaimsVerificationError::InvalidNonce("x".into()),
                SignInRefusal::WrongNonce,
            ),
            (
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoSignature,
                ),
                SignInRefusal::BadSignature,
            ),
            (
                ClaimsVerificationError::Unsupported("jwe".into()),
                SignInRefusal::MalformedToken,
            ),
        ];
        for (error, refusal) in cases {
            assert_eq!(SignInRefusal::from_verification(&error), refusal, "{error}");
        }
    }

    #[test]
    fn only_key_trouble_asks_for_newer_keys() {
        let unknown_kid = ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        );
        let mismatch = ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::CryptoError("bad".into()),
        );
        let disallowed = ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::DisallowedAlg("HS256".into()),
        );
        assert!(newer_keys_might_help(&unknown_kid));
        assert!(newer_keys_might_help(&mismatch));
        assert!(!newer_keys_might_help(&disallowed));
        assert!(!newer_keys_might_help(&ClaimsVerificationError::Expired(
            "x".into()
        )));
    }
}

//! [`VerifiedIdentity`]: who signed in, once the ID token's claims pass the gateway's own rules
//! on top of the standard checks (issue time, verified email, Workspace domain).

use chrono::{DateTime, Duration, Utc};

use super::provider_types::GoogleIdTokenClaims;
use super::refusal::SignInRefusal;

/// How far in the future an `iat` may lie: clocks are never quite in step.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// How old an ID token straight from the token endpoint may be.
const MAX_TOKEN_AGE: Duration = Duration::hours(1);

/// The person who signed in, as the provider vouched for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The provider's stable id for the account (`sub`).
    pub subject: String,
    /// The verified email address, lower-cased.
    pub email: String,
    /// The display name, when the provider gave one.
    pub name: Option<String>,
}

/// Refuses an `iat` from the future (beyond clock skew) or from too long ago.
pub(crate) fn check_issue_time(
    issued_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SignInRefusal> {
    if issued_at > now + CLOCK_SKEW {
        return Err(SignInRefusal::NotYetValid);
    }
    if issued_at < now - MAX_TOKEN_AGE - CLOCK_SKEW {
        return Err(SignInRefusal::Expired);
    }
    Ok(())
}

/// The identity in verified claims, if the account may sign in: an email address the provider
/// has verified and, with `allowed_domain` (lower-case), both the `hd` claim and the email's
/// domain equal to it.
pub(crate) fn identity_from_claims(
    claims: &GoogleIdTokenClaims,
    allowed_domain: Option<&str>,
) -> Result<VerifiedIdentity, SignInRefusal> {
    let email = claims
        .email()
        .map(|email| email.as_str().trim().to_ascii_lowercase())
        .filter(|email| email_domain(email).is_some())
        .ok_or(SignInRefusal::NoEmail)?;
    if claims.email_verified() != Some(true) {
        return Err(SignInRefusal::EmailNotVerified);
    }
    if let Some(domain) = allowed_domain {
        let hosted_domain = claims.additional_claims().hd.as_deref();
        if !hosted_domain.is_some_and(|hd| hd.trim().eq_ignore_ascii_case(domain)) {
            return Err(SignInRefusal::WrongHostedDomain);
        }
        if email_domain(&email) != Some(domain) {
            return Err(SignInRefusal::WrongEmailDomain);
        }
    }
    Ok(VerifiedIdentity {
        subject: claims.subject().as_str().to_owned(),
        email,
        name: claims
            .name()
            .and_then(|names| names.get(None))
            .map(|name| name.as_str().to_owned()),
    })
}

/// The part after the last `@`, when there is something on both sides of it.
fn email_domain(email: &str) -> Option<&str> {
    let (local, domain) = email.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(extra: serde_json::Value) -> GoogleIdTokenClaims {
        let mut all = json!({
            "iss": "https://accounts.google.com",
            "aud": "client",
            "sub": "1234",
            "exp": 1_900_000_000,
            "iat": 1_800_000_000,
        });
        if let (Some(all), Some(extra)) = (all.as_object_mut(), extra.as_object()) {
            all.extend(extra.clone());
        }
        serde_json::from_value(all).unwrap()
    }

    #[test]
    fn a_verified_email_in_the_domain_signs_in() {
        let claims = claims(json!({
            "email": "Alice@Example.com", "email_verified": true, "hd": "EXAMPLE.COM", "name": "Alice"
        }));
        let identity = identity_from_claims(&claims, Some("example.com")).unwrap();
        assert_eq!(
            identity,
            VerifiedIdentity {
                subject: "1234".into(),
                email: "alice@example.com".into(),
                name: Some("Alice".into()),
            }
        );
    }

    #[test]
    fn without_an_allowed_domain_any_verified_email_signs_in() {
        let claims = claims(json!({"email": "bob@gmail.com", "email_verified": true}));
        let identity = identity_from_claims(&claims, None).unwrap();
        assert_eq!(identity.email, "bob@gmail.com");
        assert_eq!(identity.name, None);
    }

    #[test]
    fn each_rule_has_its_refusal() {
        let cases = [
            (
                json!({"email_verified": true, "hd": "example.com"}),
                SignInRefusal::NoEmail,
            ),
            (
                json!({"email": "no-at-sign", "email_verified": true}),
                SignInRefusal::NoEmail,
            ),
            (
                json!({"email": "a@example.com", "hd": "example.com"}),
                SignInRefusal::EmailNotVerified,
            ),
            (
                json!({"email": "a@example.com", "email_verified": false, "hd": "example.com"}),
                SignInRefusal::EmailNotVerified,
            ),
            (
                json!({"email": "a@example.com", "email_verified": true}),
                SignInRefusal::WrongHostedDomain,
            ),
            (
                json!({"email": "a@example.com", "email_verified": true, "hd": "other.com"}),
                SignInRefusal::WrongHostedDomain,
            ),
            (
                json!({"email": "a@other.com", "email_verified": true, "hd": "example.com"}),
                SignInRefusal::WrongEmailDomain,
            ),
            (
                json!({"email": "a@sub.example.com", "email_verified": true, "hd": "example.com"}),
                SignInRefusal::WrongEmailDomain,
            ),
        ];
        for (extra, refusal) in cases {
            let shown = extra.to_string();
            assert_eq!(
                identity_from_claims(&claims(extra), Some("example.com")),
                Err(refusal),
                "{shown}"
            );
        }
    }

    #[test]
    fn the_issue_time_is_near_now() {
        let now = Utc::now();
        assert_eq!(check_issue_time(now, now), Ok(()));
        assert_eq!(check_issue_time(now + Duration::minutes(4), now), Ok(()));
        assert_eq!(
            check_issue_time(now + Duration::minutes(10), now),
            Err(SignInRefusal::NotYetValid)
        );
        assert_eq!(check_issue_time(now - Duration::minutes(50), now), Ok(()));
        assert_eq!(
            check_issue_time(now - Duration::hours(2), now),
            Err(SignInRefusal::Expired)
        );
    }
}

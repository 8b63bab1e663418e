//! The provider's callback, the same for the browser and the CLI: the query read strictly, the
//! sign-in's state used once, and the provider's answer verified and matched to an account.

use chrono::Utc;
use http::StatusCode;
use rack_gateway_core::identity::{LoginKind, LoginState, LoginStateUse, TokenHash, User};
use rack_gateway_layers::draft::AuditDraft;
use serde_json::json;

use super::account::account_for;
use super::query::params;
use super::refusal::Refused;
use super::{Provider, SignIn};
use crate::auth::SignInKind;

/// What the provider sent the browser back with.
pub(crate) struct Callback {
    state: String,
    code: Option<String>,
    error: Option<String>,
}

impl Callback {
    /// Reads `state` and `code` (or `error`), each at most once.
    pub(crate) fn parse(query: Option<&str>) -> Result<Callback, Refused> {
        let mut found = params(query, &["code", "state", "error"])?;
        let state = found
            .remove("state")
            .ok_or_else(|| Refused::page(StatusCode::BAD_REQUEST, "the callback has no state"))?;
        Ok(Callback {
            state,
            code: found.remove("code"),
            error: found.remove("error"),
        })
    }

    /// How the sign-in's state is stored.
    pub(crate) fn state_hash(&self) -> TokenHash {
        TokenHash::of(&self.state)
    }

    /// Uses the sign-in of `kind` with this state, once, within its lifetime.
    pub(crate) async fn consume(
        &self,
        sign_in: &SignIn,
        kind: LoginKind,
    ) -> Result<LoginState, Refused> {
        let found = sign_in
            .store
            .consume_login_state(&self.state_hash(), kind, Utc::now())
            .await
            .map_err(|error| Refused::unavailable("the sign-in store", &error))?;
        let reason = match found {
            LoginStateUse::Fresh(login) => return Ok(login),
            LoginStateUse::AlreadyUsed => {
                "this sign-in was already used (replayed state); sign in again"
            }
            LoginStateUse::Expired => {
                "this sign-in expired (it must finish within 10 minutes); sign in again"
            }
            LoginStateUse::Unknown => "unknown sign-in state; sign in again",
        };
        Err(Refused::page(StatusCode::BAD_REQUEST, reason))
    }

    /// Exchanges the code (with the sign-in's PKCE verifier and nonce), verifies the ID token
    /// and finds the active account it names; the email goes into the request's record.
    pub(crate) async fn account(
        self,
        sign_in: &SignIn,
        provider: &Provider,
        draft: &AuditDraft,
        kind: LoginKind,
    ) -> Result<User, Refused> {
        if let Some(error) = &self.error {
            return Err(provider_error(error));
        }
        let code = self
            .code
            .ok_or_else(|| Refused::page(StatusCode::BAD_REQUEST, "the callback has no code"))?;
        let secrets = sign_in.key.for_state(&self.state);
        let redirect = match kind {
            LoginKind::Web => SignInKind::Web,
            LoginKind::Cli => SignInKind::Cli,
        };
        let identity = provider
            .client
            .sign_in(
                &code,
                secrets.verifier(),
                provider.config.redirect_uri(redirect),
                secrets.nonce(),
            )
            .await
            .map_err(|refusal| Refused::page(StatusCode::FORBIDDEN, refusal.to_string()))?;
        draft.add_detail("email", json!(identity.email));
        account_for(sign_in.store.as_ref(), &identity).await
    }
}

/// The provider sent the browser back with an error instead of a code (the person declined,
/// say). Only the error code is repeated, and only when it looks like one.
fn provider_error(error: &str) -> Refused {
    let code = if !error.is_empty()
        && error.len() <= 64
        && error
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        error
    } else {
        "unrecognised error"
    };
    Refused::page(
        StatusCode::FORBIDDEN,
        format!("the identity provider did not sign you in: {code}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_error_codes_are_repeated() {
        assert!(provider_error("access_denied")
            .reason()
            .ends_with("access_denied"));
        assert!(provider_error("<script>")
            .reason()
            .ends_with("unrecognised error"));
        assert!(Callback::parse(Some("code=c")).is_err());
        assert!(Callback::parse(Some("state=s&state=t")).is_err());
    }
}

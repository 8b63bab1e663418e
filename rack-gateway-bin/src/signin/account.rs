//! Which gateway account a verified identity signs in as, if any.

use http::StatusCode;
use rack_gateway_core::identity::User;
use rack_gateway_core::store::Store;

use super::refusal::Refused;
use crate::auth::VerifiedIdentity;

/// The active user with this identity's email, or why it may not sign in. Accounts are never
/// made here: ADMIN_USERS and the other lists (or an administrator) make them.
pub(crate) async fn account_for(
    store: &dyn Store,
    identity: &VerifiedIdentity,
) -> Result<User, Refused> {
    let user = store
        .user_by_email(&identity.email.to_lowercase())
        .await
        .map_err(|error| Refused::unavailable("the user store", &error))?
        .ok_or_else(|| {
            Refused::page(
                StatusCode::FORBIDDEN,
                "unknown user: this account has no access to the gateway; ask an administrator",
            )
        })?;
    if let Some(refusal) = user.status().refusal() {
        return Err(Refused::page(StatusCode::FORBIDDEN, refusal));
    }
    if !user.roles.iter().any(|role| role.assignable_to_humans()) {
        return Err(Refused::page(
            StatusCode::FORBIDDEN,
            "this account has no role for people (cicd is for API tokens)",
        ));
    }
    Ok(user)
}

//! `GET /api/v1/me`: who the caller is, what they may do, and (for a browser session) the CSRF
//! token its pages send with unsafe requests.

use axum::extract::State;
use axum::Json;
use rack_gateway_core::identity::Principal;
use serde_json::{json, Value};

use super::{ApiError, ApiState, Caller};

/// The signed-in principal: email, name, roles, permissions, and the session's kind and expiry.
pub(super) async fn show(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(match caller.principal.as_ref() {
        Principal::User(user) => {
            let mut permissions: Vec<&str> = user
                .roles
                .iter()
                .flat_map(|role| role.permissions().iter().copied())
                .collect();
            permissions.sort_unstable();
            permissions.dedup();
            let session = user.session.as_ref().map(|session| {
                json!({
                    "id": session.public_id,
                    "kind": session.kind,
                    "created_at": session.created_at,
                    "expires_at": session.expires_at,
                })
            });
            // Only a browser session needs the token: header-authenticated calls are exempt.
            let csrf_token = user
                .session
                .as_ref()
                .filter(|session| session.kind == rack_gateway_core::identity::SessionKind::Web)
                .map(|session| state.csrf.token(&session.public_id.to_string()));
            json!({
                "kind": "user",
                "email": user.email,
                "name": user.name,
                "roles": user.roles.iter().map(|role| role.name()).collect::<Vec<_>>(),
                "permissions": permissions,
                "session": session,
                "csrf_token": csrf_token,
            })
        }
        Principal::ApiToken(token) => json!({
            "kind": "api_token",
            "email": token.owner_email,
            "name": token.owner_name,
            "token": {"id": token.public_id, "name": token.name},
            "roles": [],
            "permissions": token.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "session": null,
            "csrf_token": null,
        }),
        Principal::Anonymous => {
            return Err(ApiError::new(
                http::StatusCode::UNAUTHORIZED,
                "authentication required",
            ))
        }
    }))
}

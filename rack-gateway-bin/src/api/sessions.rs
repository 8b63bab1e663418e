//! Sessions: one's own (`GET /api/v1/sessions`, `DELETE /api/v1/sessions/{id}`, signing out
//! with `POST /api/v1/auth/web/logout`), and, with `gateway:user:read` / `gateway:user:update`,
//! anyone's (`/api/v1/users/{email}/sessions…`).
//!
//! Ending a session takes effect on every instance on its next request (the identity cache's
//! change feed drops it), and each one ended is an audit record: `auth.logout` for signing out,
//! `session.revoke` for the rest, with one derived record per session for `revoke_all`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rack_gateway_core::audit::AuditDecision;
use rack_gateway_core::identity::{Principal, Session, SessionLimits, User, UserPrincipal};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ApiError, ApiState, Caller};

/// One session as listed: never its secret, which is not stored.
fn listed(session: &Session, limits: &SessionLimits, current: Option<Uuid>) -> Value {
    json!({
        "id": session.public_id,
        "kind": session.kind,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": limits.expires_at(session),
        "ip": session.ip,
        "user_agent": session.user_agent,
        "device_name": session.device_name,
        "current": current == Some(session.public_id),
    })
}

/// The caller as a signed-in user, or 400 for an API token.
fn user_of(caller: &Caller) -> Result<&UserPrincipal, ApiError> {
    match caller.principal.as_ref() {
        Principal::User(user) => Ok(user),
        _ => Err(ApiError::bad_request(
            "API tokens have no sessions; revoke the token instead",
        )),
    }
}

async fn list_of(state: &ApiState, user_id: i64, current: Option<Uuid>) -> Result<Value, ApiError> {
    let sessions = state
        .store
        .list_sessions(user_id)
        .await
        .map_err(|e| ApiError::unavailable("the session store", &e))?;
    let limits = state.resolver.session_limits();
    Ok(Value::Array(
        sessions
            .iter()
            .map(|s| listed(s, &limits, current))
            .collect(),
    ))
}

/// `GET /api/v1/sessions`: the caller's sessions, newest first.
pub(super) async fn list_mine(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let user = user_of(&caller)?;
    let current = user.session.as_ref().map(|s| s.public_id);
    Ok(Json(
        json!({ "sessions": list_of(&state, user.id, current).await? }),
    ))
}

/// `DELETE /api/v1/sessions/{id}`: ends one of the caller's sessions.
pub(super) async fn revoke_mine(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = user_of(&caller)?;
    let id = session_id(&id)?;
    caller.resource(format!("session/{id}"));
    let session = owned_session(&state, user.id, id).await?;
    end(&state, &session, "revoked by its user").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/web/logout`: ends the caller's own session and clears the cookie.
pub(super) async fn logout(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let user = user_of(&caller)?;
    let Some(session) = &user.session else {
        return Err(ApiError::bad_request("not signed in with a session"));
    };
    caller.resource(format!("session/{}", session.public_id));
    caller.details(json!({"session_kind": session.kind}));
    // Already ended (a second click, a race with the sweeper) is still a successful sign-out.
    state
        .store
        .revoke_session(session.public_id, "logout")
        .await
        .map_err(|e| ApiError::unavailable("the session store", &e))?;
    state.resolver.forget_cached();
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, state.cookies.clear_session())],
    )
        .into_response())
}

/// `GET /api/v1/users/{email}/sessions` (gateway:user:read).
pub(super) async fn list_for_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = user_named(&state, &caller, &email).await?;
    Ok(Json(json!({
        "email": user.email,
        "sessions": list_of(&state, user.id, None).await?,
    })))
}

/// `POST /api/v1/users/{email}/sessions/{id}/revoke` (gateway:user:update).
pub(super) async fn revoke_for_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path((email, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = user_named(&state, &caller, &email).await?;
    let id = session_id(&id)?;
    caller.resource(format!("session/{id}"));
    let session = owned_session(&state, user.id, id).await?;
    end(
        &state,
        &session,
        &format!("revoked by {}", caller.principal.label()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/{email}/sessions/revoke_all` (gateway:user:update): ends every session
/// of the user, one derived record each.
pub(super) async fn revoke_all_for_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = user_named(&state, &caller, &email).await?;
    let open = state
        .store
        .list_sessions(user.id)
        .await
        .map_err(|e| ApiError::unavailable("the session store", &e))?;
    let reason = format!("revoked by {}", caller.principal.label());
    let revoked = state
        .store
        .revoke_user_sessions(user.id, &reason)
        .await
        .map_err(|e| ApiError::unavailable("the session store", &e))?;
    state.resolver.forget_cached();
    for session in open.iter().filter(|s| s.revoked_at.is_none()) {
        caller.note.add_record(caller.event(
            "session.revoke",
            AuditDecision::Allow,
            &reason,
            json!({"session": session.public_id, "session_kind": session.kind}).to_string(),
        ));
    }
    caller.details(json!({"revoked": revoked}));
    Ok(Json(json!({"email": user.email, "revoked": revoked})))
}

fn session_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("the session id is not a UUID"))
}

/// The session with this id, if it belongs to `user_id` (404 otherwise: whose sessions exist is
/// not told).
async fn owned_session(state: &ApiState, user_id: i64, id: Uuid) -> Result<Session, ApiError> {
    state
        .store
        .session_by_public_id(id)
        .await
        .map_err(|e| ApiError::unavailable("the session store", &e))?
        .filter(|session| session.user_id == user_id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such session"))
}

async fn end(state: &ApiState, session: &Session, reason: &str) -> Result<(), ApiError> {
    if session.revoked_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the session has already ended",
        ));
    }
    state
        .store
        .revoke_session(session.public_id, reason)
        .await
        .map_err(|e| ApiError::unavailable("the session store", &e))?;
    // The feed tells every instance; this one must not answer the next request from before.
    state.resolver.forget_cached();
    Ok(())
}

async fn user_named(state: &ApiState, caller: &Caller, email: &str) -> Result<User, ApiError> {
    caller.resource(format!("user/{}", email.to_lowercase()));
    state
        .store
        .user_by_email(&email.to_lowercase())
        .await
        .map_err(|e| ApiError::unavailable("the user store", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such user"))
}

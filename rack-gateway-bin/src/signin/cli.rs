//! `rack-gateway login`: `POST /api/v1/auth/cli/start`, `GET /api/v1/auth/cli/callback` and
//! `POST /api/v1/auth/cli/complete`.
//!
//! The CLI starts a sign-in and is given the URL to open, the state, and the PKCE verifier. The
//! browser signs in and comes back to the callback, which records who signed in (or why not).
//! The CLI polls `complete` with the state and the verifier: only the one who started the
//! sign-in holds the verifier, so someone who merely saw the URL cannot collect the session.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rack_gateway_core::identity::{
    CliLoginPoll, LoginKind, NewLoginState, Principal, SessionKind, LOGIN_STATE_LIFETIME,
};
use rack_gateway_layers::draft::AuditDraft;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::callback::Callback;
use super::refusal::Refused;
use super::{provider, public, session, Shared, SignIn};
use crate::auth::pkce::challenge_s256;
use crate::auth::{AuthorizationRequest, SignInKind};

/// How often the CLI is asked to poll.
const POLL_INTERVAL_MS: u64 = 2000;
/// The longest device name kept (as the store's limit).
const MAX_DEVICE_NAME: usize = 150;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    #[serde(default)]
    device_name: Option<String>,
}

#[derive(Serialize)]
struct Started {
    auth_url: String,
    state: String,
    code_verifier: String,
    expires_at: DateTime<Utc>,
    poll_interval_ms: u64,
}

/// Starts a CLI sign-in.
pub(crate) async fn start(
    State(sign_in): State<Shared>,
    Extension(draft): Extension<AuditDraft>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    public(&draft, "auth.login.start", "/api/v1/auth/cli/start");
    draft.add_detail("session_kind", json!("cli"));
    match begin(&sign_in, &draft, &headers, &body).await {
        Ok(started) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(started),
        )
            .into_response(),
        Err(refused) => refused.in_json().into_response(),
    }
}

async fn begin(
    sign_in: &SignIn,
    draft: &AuditDraft,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Started, Refused> {
    let provider = provider(sign_in)?;
    let request: StartRequest = json_body(headers, body)?;
    let device_name = request
        .device_name
        .map(|name| clean_device_name(&name))
        .filter(|name| !name.is_empty());
    if let Some(name) = &device_name {
        draft.add_detail("device_name", json!(name));
    }
    let secrets = sign_in.key.start();
    let expires_at = Utc::now() + LOGIN_STATE_LIFETIME;
    sign_in
        .store
        .insert_login_state(&NewLoginState {
            state_hash: secrets.state_hash(),
            kind: LoginKind::Cli,
            browser_hash: None,
            return_to: None,
            device_name,
            expires_at,
        })
        .await
        .map_err(|error| Refused::unavailable("the sign-in store", &error))?;
    let url = provider.client.authorization_url(&AuthorizationRequest {
        redirect_uri: provider.config.redirect_uri(SignInKind::Cli).clone(),
        state: secrets.state().to_owned(),
        nonce: secrets.nonce().to_owned(),
        pkce_challenge: challenge_s256(secrets.verifier()),
    });
    Ok(Started {
        auth_url: url.to_string(),
        state: secrets.state().to_owned(),
        code_verifier: secrets.verifier().to_owned(),
        expires_at,
        poll_interval_ms: POLL_INTERVAL_MS,
    })
}

/// The browser's half: verifies the provider's answer and records the outcome for the CLI.
pub(crate) async fn callback(
    State(sign_in): State<Shared>,
    Extension(draft): Extension<AuditDraft>,
    RawQuery(query): RawQuery,
) -> Response {
    public(&draft, "auth.login", "/api/v1/auth/cli/callback");
    draft.add_detail("session_kind", json!("cli"));
    match identify(&sign_in, &draft, query.as_deref()).await {
        Ok(email) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!(
                "Signed in to rack-gateway as {email}.\n\
                 You can close this window and return to your terminal.\n"
            ),
        )
            .into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// The email of who signed in, or why not (told to the waiting CLI as well, when the state was
/// valid).
async fn identify(
    sign_in: &SignIn,
    draft: &AuditDraft,
    query: Option<&str>,
) -> Result<String, Refused> {
    let provider = provider(sign_in)?;
    let callback = Callback::parse(query)?;
    let state_hash = callback.state_hash();
    callback.consume(sign_in, LoginKind::Cli).await?;
    let outcome = callback
        .account(sign_in, provider, draft, LoginKind::Cli)
        .await;
    let recorded = match &outcome {
        Ok(user) => Ok(user.id),
        Err(refused) => Err(refused.reason().to_owned()),
    };
    if let Err(error) = sign_in.store.finish_cli_login(&state_hash, recorded).await {
        return Err(Refused::unavailable("the sign-in store", &error));
    }
    let user = outcome?;
    draft.set_reason("identity verified; the CLI collects its session");
    Ok(user.email)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteRequest {
    state: String,
    code_verifier: String,
}

#[derive(Serialize)]
struct Completed {
    token: String,
    email: String,
    name: String,
    expires_at: DateTime<Utc>,
    session_id: String,
}

/// The CLI's half: 202 while the browser is not done, then the session token once.
pub(crate) async fn complete(
    State(sign_in): State<Shared>,
    Extension(draft): Extension<AuditDraft>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    public(&draft, "auth.login.complete", "/api/v1/auth/cli/complete");
    draft.add_detail("session_kind", json!("cli"));
    match collect(&sign_in, &draft, &headers, &body).await {
        Ok(Some(completed)) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(completed),
        )
            .into_response(),
        Ok(None) => {
            draft.set_reason("pending: the browser has not finished");
            (StatusCode::ACCEPTED, Json(json!({"status": "pending"}))).into_response()
        }
        Err(refused) => refused.in_json().into_response(),
    }
}

async fn collect(
    sign_in: &SignIn,
    draft: &AuditDraft,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<Completed>, Refused> {
    let request: CompleteRequest = json_body(headers, body)?;
    let secrets = sign_in.key.for_state(&request.state);
    // Checked before anything is taken, so a wrong verifier does not use up the sign-in.
    if !secrets.verifier_matches(&request.code_verifier) {
        return Err(Refused::page(
            StatusCode::BAD_REQUEST,
            "code_verifier does not match this sign-in",
        ));
    }
    let polled = sign_in
        .store
        .take_cli_login(&secrets.state_hash(), Utc::now())
        .await
        .map_err(|error| Refused::unavailable("the sign-in store", &error))?;
    let (user_id, device_name) = match polled {
        CliLoginPoll::Pending => return Ok(None),
        CliLoginPoll::SignedIn {
            user_id,
            device_name,
        } => (user_id, device_name),
        CliLoginPoll::Refused(reason) => {
            return Err(Refused::page(StatusCode::FORBIDDEN, reason));
        }
        CliLoginPoll::Expired => return Err(Refused::page(
            StatusCode::BAD_REQUEST,
            "this sign-in expired (it must finish within 10 minutes); run rack-gateway login again",
        )),
        CliLoginPoll::Unknown => {
            return Err(Refused::page(
                StatusCode::BAD_REQUEST,
                "unknown sign-in (never started, or its session was already collected)",
            ))
        }
    };
    let opened = session::open(
        sign_in,
        draft,
        headers,
        user_id,
        SessionKind::Cli,
        device_name,
    )
    .await?;
    let Principal::User(principal) = opened.principal.as_ref() else {
        return Err(Refused::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not a user session",
        ));
    };
    let Some(session) = &principal.session else {
        return Err(Refused::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not a user session",
        ));
    };
    draft.set_reason("signed in");
    Ok(Some(Completed {
        token: opened.secret.expose().to_owned(),
        email: principal.email.clone(),
        name: principal.name.clone(),
        expires_at: session.expires_at,
        session_id: session.public_id.to_string(),
    }))
}

/// A JSON request body: `application/json`, one object of the expected shape.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Refused> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Refused::page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|error| Refused::page(StatusCode::BAD_REQUEST, format!("invalid body: {error}")))
}

/// The device name as shown in session lists: control characters dropped, at most 150
/// characters.
fn clean_device_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_DEVICE_NAME)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_tidied() {
        assert_eq!(clean_device_name(" laptop\r\n"), "laptop");
        assert_eq!(clean_device_name(&"x".repeat(400)).len(), MAX_DEVICE_NAME);
    }

    #[test]
    fn bodies_must_be_json_of_the_expected_shape() {
        let mut headers = HeaderMap::new();
        let body = Bytes::from_static(br#"{"device_name":"laptop"}"#);
        assert!(json_body::<StartRequest>(&headers, &body).is_err());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let parsed: StartRequest = json_body(&headers, &body).unwrap();
        assert_eq!(parsed.device_name.as_deref(), Some("laptop"));
        let extra = Bytes::from_static(br#"{"device_name":"x","admin":true}"#);
        assert!(json_body::<StartRequest>(&headers, &extra).is_err());
        assert!(json_body::<CompleteRequest>(&headers, &Bytes::from_static(b"[]")).is_err());
    }
}

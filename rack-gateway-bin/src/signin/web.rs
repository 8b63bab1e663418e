//! Browser sign-in: `GET /api/v1/auth/web/login` and `GET /api/v1/auth/web/callback`.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::Utc;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rack_gateway_core::identity::{
    LoginKind, NewLoginState, SessionKind, TokenHash, LOGIN_STATE_LIFETIME,
};
use rack_gateway_layers::draft::AuditDraft;
use serde_json::json;

use super::callback::Callback;
use super::cookies::{cookie, LOGIN_COOKIE};
use super::query::params;
use super::refusal::Refused;
use super::return_to::local_path;
use super::secrets::random_token;
use super::{provider, public, session, Shared, SignIn};
use crate::auth::pkce::challenge_s256;
use crate::auth::{AuthorizationRequest, SignInKind};

/// Starts a browser sign-in: stores the state, binds it to this browser with a cookie, and
/// sends the browser to the provider. A `returnTo` that is not a local path is replaced by the
/// home page, and the record says so.
pub(crate) async fn login(
    State(sign_in): State<Shared>,
    Extension(draft): Extension<AuditDraft>,
    RawQuery(query): RawQuery,
) -> Response {
    public(&draft, "auth.login.start", "/api/v1/auth/web/login");
    draft.add_detail("session_kind", json!("web"));
    match start(&sign_in, &draft, query.as_deref()).await {
        Ok(response) => response,
        Err(refused) => refused.into_response(),
    }
}

async fn start(
    sign_in: &SignIn,
    draft: &AuditDraft,
    query: Option<&str>,
) -> Result<Response, Refused> {
    let provider = provider(sign_in)?;
    let requested = params(query, &["returnTo"])?.remove("returnTo");
    let return_to = local_path(requested.as_deref());
    if requested.as_deref().is_some_and(|asked| asked != return_to) {
        draft.set_reason("returnTo is not a local path: refused, going to the home page instead");
        draft.add_detail("return_to_refused", json!(true));
    }
    let secrets = sign_in.key.start();
    let browser = random_token();
    sign_in
        .store
        .insert_login_state(&NewLoginState {
            state_hash: secrets.state_hash(),
            kind: LoginKind::Web,
            browser_hash: Some(TokenHash::of(&browser)),
            return_to: Some(return_to.to_owned()),
            device_name: None,
            expires_at: Utc::now() + LOGIN_STATE_LIFETIME,
        })
        .await
        .map_err(|error| Refused::unavailable("the sign-in store", &error))?;
    let url = provider.client.authorization_url(&AuthorizationRequest {
        redirect_uri: provider.config.redirect_uri(SignInKind::Web).clone(),
        state: secrets.state().to_owned(),
        nonce: secrets.nonce().to_owned(),
        pkce_challenge: challenge_s256(secrets.verifier()),
    });
    let location = HeaderValue::from_str(url.as_str())
        .map_err(|_| Refused::page(StatusCode::INTERNAL_SERVER_ERROR, "unusable sign-in URL"))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, sign_in.cookies.login(&browser)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Ends a browser sign-in: the state must be fresh and this browser's, the provider's answer
/// must verify, and the account must exist and be active. Then the session cookie is set and the
/// browser goes where it asked to. The login cookie is cleared either way.
pub(crate) async fn callback(
    State(sign_in): State<Shared>,
    Extension(draft): Extension<AuditDraft>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    public(&draft, "auth.login", "/api/v1/auth/web/callback");
    draft.add_detail("session_kind", json!("web"));
    let clear = sign_in.cookies.clear_login();
    match finish(&sign_in, &draft, &headers, query.as_deref()).await {
        Ok((secret, return_to)) => {
            let location = HeaderValue::from_str(&return_to)
                .unwrap_or_else(|_| HeaderValue::from_static(super::return_to::HOME));
            let mut response = (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response();
            let set = response.headers_mut();
            set.append(header::SET_COOKIE, sign_in.cookies.session(&secret));
            set.append(header::SET_COOKIE, clear);
            response
        }
        Err(refused) => refused.with_cookie(clear).into_response(),
    }
}

/// The session secret and where to go, or why not.
async fn finish(
    sign_in: &SignIn,
    draft: &AuditDraft,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(String, String), Refused> {
    let provider = provider(sign_in)?;
    let callback = Callback::parse(query)?;
    let login = callback.consume(sign_in, LoginKind::Web).await?;
    if !cookie(headers, LOGIN_COOKIE).is_some_and(|value| login.started_by(value)) {
        return Err(Refused::page(
            StatusCode::FORBIDDEN,
            "this sign-in was started in another browser (or its cookie was lost); sign in again",
        ));
    }
    let user = callback
        .account(sign_in, provider, draft, LoginKind::Web)
        .await?;
    let opened = session::open(sign_in, draft, headers, user.id, SessionKind::Web, None).await?;
    let return_to = local_path(login.return_to.as_deref()).to_owned();
    draft.set_reason("signed in");
    Ok((opened.secret.expose().to_owned(), return_to))
}

//! `rack-gateway dev`'s one-time sign-in link: a web session for the dev admin without an
//! identity provider. The route exists only when a [`DevLink`] is given, which only the `dev`
//! command does.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rack_gateway_core::identity::{SessionKind, TokenHash};
use rack_gateway_layers::draft::AuditDraft;
use serde_json::json;

use super::query::params;
use super::refusal::Refused;
use super::return_to::local_path;
use super::secrets::random_token;
use super::{public, session, Shared, SignIn};

/// The dev link's path.
pub(crate) const PATH: &str = "/api/v1/auth/dev/sign-in";

/// A sign-in link usable once, for one user; cheap to clone.
#[derive(Clone)]
pub struct DevLink {
    email: String,
    /// The hash of the link's token until it is used.
    unused: Arc<Mutex<Option<TokenHash>>>,
}

impl std::fmt::Debug for DevLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevLink")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl DevLink {
    /// A link for `email`, and the path (with its token) to print.
    pub fn new(email: &str, return_to: &str) -> (DevLink, String) {
        let token = random_token();
        let link = DevLink {
            email: email.to_owned(),
            unused: Arc::new(Mutex::new(Some(TokenHash::of(&token)))),
        };
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token)
            .append_pair("returnTo", return_to)
            .finish();
        (link, format!("{PATH}?{query}"))
    }

    /// Uses the link if `token` is its token and it was not used before.
    fn redeem(&self, token: &str) -> bool {
        let mut unused = self.unused.lock().unwrap_or_else(PoisonError::into_inner);
        if unused
            .as_ref()
            .is_some_and(|hash| hash.matches(&TokenHash::of(token)))
        {
            *unused = None;
            return true;
        }
        false
    }
}

/// Opens a web session for the dev admin, once.
pub(crate) async fn sign_in(
    State(sign_in): State<Shared>,
    Extension(draft): Extension<AuditDraft>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    public(&draft, "auth.login", PATH);
    draft.add_detail("session_kind", json!("web"));
    draft.add_detail("method", json!("dev link"));
    match redeem(&sign_in, &draft, &headers, query.as_deref()).await {
        Ok((secret, return_to)) => {
            let location = HeaderValue::from_str(&return_to)
                .unwrap_or_else(|_| HeaderValue::from_static(super::return_to::HOME));
            (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::SET_COOKIE, sign_in.cookies.session(&secret)),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

async fn redeem(
    sign_in: &SignIn,
    draft: &AuditDraft,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(String, String), Refused> {
    let Some(link) = &sign_in.dev else {
        return Err(Refused::page(StatusCode::NOT_FOUND, "not found"));
    };
    let mut found = params(query, &["token", "returnTo"])?;
    let token = found.remove("token").unwrap_or_default();
    if !link.redeem(&token) {
        return Err(Refused::page(
            StatusCode::FORBIDDEN,
            "this dev sign-in link was already used or is not valid; restart rack-gateway dev for a new one",
        ));
    }
    let user = sign_in
        .store
        .user_by_email(&link.email)
        .await
        .map_err(|error| Refused::unavailable("the user store", &error))?
        .ok_or_else(|| Refused::page(StatusCode::FORBIDDEN, "the dev admin is gone"))?;
    let opened = session::open(sign_in, draft, headers, user.id, SessionKind::Web, None).await?;
    draft.set_reason("signed in with the dev link");
    let return_to = local_path(found.remove("returnTo").as_deref()).to_owned();
    Ok((opened.secret.expose().to_owned(), return_to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once() {
        let (link, path) = DevLink::new("admin@dev.local", "/api/v1/me");
        let query = path.split_once('?').unwrap().1;
        let token = form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "token")
            .unwrap()
            .1
            .into_owned();
        assert!(!link.redeem("wrong"));
        assert!(link.redeem(&token));
        assert!(!link.redeem(&token));
    }
}

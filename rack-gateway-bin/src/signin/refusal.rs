//! A refused sign-in step: a status and a one-line reason, shown to the person and recorded.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use rack_gateway_layers::body::{one_line, GatewayReason};

/// Why a sign-in step was refused. The browser endpoints answer in plain text (a person reads
/// it), the CLI's in JSON `{"error": reason}`; both carry the reason to the audit record.
#[derive(Debug)]
pub(crate) struct Refused {
    status: StatusCode,
    reason: String,
    json: bool,
    set_cookie: Option<HeaderValue>,
}

impl Refused {
    /// A refusal for a browser.
    pub(crate) fn page(status: StatusCode, reason: impl Into<String>) -> Self {
        Refused {
            status,
            reason: one_line(&reason.into()),
            json: false,
            set_cookie: None,
        }
    }

    /// A refusal for the CLI.
    pub(crate) fn json(status: StatusCode, reason: impl Into<String>) -> Self {
        Refused {
            json: true,
            ..Refused::page(status, reason)
        }
    }

    /// 503: the store or the provider failed (the error goes to the log, not the person).
    pub(crate) fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "sign-in: {what} failed");
        Refused::page(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} unavailable; try again shortly"),
        )
    }

    /// The same refusal, answered in JSON.
    pub(crate) fn in_json(mut self) -> Self {
        self.json = true;
        self
    }

    /// The same refusal, also setting this cookie (to forget a sign-in in progress).
    pub(crate) fn with_cookie(mut self, cookie: HeaderValue) -> Self {
        self.set_cookie = Some(cookie);
        self
    }

    /// The reason, as shown and recorded.
    pub(crate) fn reason(&self) -> &str {
        &self.reason
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = if self.json {
            (
                self.status,
                axum::Json(serde_json::json!({ "error": self.reason })),
            )
                .into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("Sign-in refused: {}\n", self.reason),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(cookie) = self.set_cookie {
            headers.append(header::SET_COOKIE, cookie);
        }
        response.extensions_mut().insert(GatewayReason(self.reason));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_reaches_the_person_and_the_record() {
        let response = Refused::page(StatusCode::FORBIDDEN, "account\nlocked")
            .with_cookie(HeaderValue::from_static("rgw_login=; Max-Age=0"))
            .into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(GatewayReason::of(&response), Some("account locked"));
        assert!(response.headers().contains_key(header::SET_COOKIE));
        let json = Refused::json(StatusCode::BAD_REQUEST, "expired").into_response();
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
    }
}

//! Ending a session on its gateway.

use http::StatusCode;

use super::http::{CallError, GatewayHttp};
use super::token::SessionToken;

const LOGOUT_PATH: &str = "/api/v1/auth/web/logout";

/// What the gateway did with the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// It ended the session now.
    Now,
    /// It no longer knew the session (expired, revoked elsewhere): nothing left to end.
    AlreadyGone,
}

/// The gateway did not end the session.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// No answer.
    #[error(transparent)]
    Call(#[from] CallError),
    /// An answer that is not a yes.
    #[error("the gateway answered {status}: {reason}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The gateway's words.
        reason: String,
    },
}

/// Asks the gateway to end the session of `token`.
pub async fn revoke(gateway: &GatewayHttp, token: &SessionToken) -> Result<Revoked, RevokeError> {
    let answer = gateway
        .post_json(LOGOUT_PATH, &serde_json::json!({}), Some(token))
        .await?;
    match answer.status {
        StatusCode::OK | StatusCode::NO_CONTENT => Ok(Revoked::Now),
        StatusCode::UNAUTHORIZED => Ok(Revoked::AlreadyGone),
        status => Err(RevokeError::Refused {
            status,
            reason: answer.reason(),
        }),
    }
}

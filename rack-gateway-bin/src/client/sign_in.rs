//! The CLI sign-in with the gateway: start it, then poll until the browser step is done.
//!
//! `POST /api/v1/auth/cli/start` hands out the identity provider's URL and two secrets;
//! `POST /api/v1/auth/cli/complete` with those secrets answers 202 while the user has not
//! finished in the browser, then once 200 with the session token.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::{Answer, CallError, GatewayHttp, UnexpectedAnswer};
use super::token::SessionToken;

const START_PATH: &str = "/api/v1/auth/cli/start";
const COMPLETE_PATH: &str = "/api/v1/auth/cli/complete";

/// Polling faster than this only loads the gateway.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Polling slower than this leaves the user waiting after they are done.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// The longest wait, whatever the gateway's `expires_at` says, so that a wrong clock or a
/// careless server cannot leave the command hanging for days.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

/// A started sign-in: where the user goes, and what proves it is this CLI that asks after it.
#[derive(Deserialize)]
pub struct StartedSignIn {
    auth_url: String,
    state: String,
    code_verifier: String,
    /// When the gateway forgets this sign-in.
    pub expires_at: DateTime<Utc>,
    poll_interval_ms: u64,
}

/// A finished sign-in.
#[derive(Deserialize)]
pub struct SignedIn {
    /// The session token.
    pub token: SessionToken,
    /// Who signed in.
    pub email: String,
    /// Their display name.
    #[serde(default)]
    pub name: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    /// The session's id.
    pub session_id: String,
}

/// Why a sign-in did not give a session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No answer from the gateway.
    #[error(transparent)]
    Call(#[from] CallError),
    /// An answer outside the contract.
    #[error(transparent)]
    Unexpected(#[from] UnexpectedAnswer),
    /// The gateway has no sign-in configured (503 on start).
    #[error("this gateway does not offer sign-in: {0}")]
    NotOffered(String),
    /// The identity provider's URL is not an http(s) URL, so it is neither opened nor shown.
    #[error("the gateway gave a sign-in address that is not an http(s) URL")]
    BadAuthUrl,
    /// The gateway refused the sign-in (403): the reason is the server's.
    #[error("sign-in refused: {0}")]
    Refused(String),
    /// The gateway ended the sign-in (400: expired, unknown, ...).
    #[error("sign-in failed: {0}")]
    Failed(String),
    /// Nobody finished in the browser before the sign-in expired.
    #[error("{}", timed_out(.at, .last_problem.as_deref()))]
    TimedOut {
        /// When the wait ended.
        at: DateTime<Utc>,
        /// The last passing failure seen, when the gateway was not answering at the end.
        last_problem: Option<String>,
    },
    /// Any other answer.
    #[error("the gateway answered {status}: {reason}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The gateway's words.
        reason: String,
    },
}

/// The message of [`SignInError::TimedOut`].
fn timed_out(at: &DateTime<Utc>, last_problem: Option<&str>) -> String {
    let mut message = format!(
        "the sign-in was not finished in the browser before it expired at {}",
        at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(problem) = last_problem {
        message.push_str(&format!(" (last problem reaching the gateway: {problem})"));
    }
    message.push_str("; run `rack-gateway login` again");
    message
}

#[derive(Serialize)]
struct StartRequest<'a> {
    device_name: &'a str,
}

#[derive(Serialize)]
struct CompleteRequest<'a> {
    state: &'a str,
    code_verifier: &'a str,
}

impl StartedSignIn {
    /// The identity provider's URL, checked to be http(s) (it is opened in a browser).
    pub fn auth_url(&self) -> Result<Url, SignInError> {
        let url = Url::parse(&self.auth_url).map_err(|_| SignInError::BadAuthUrl)?;
        match url.scheme() {
            "https" | "http" if url.host().is_some() => Ok(url),
            _ => Err(SignInError::BadAuthUrl),
        }
    }

    /// The gateway's polling interval, kept within reason.
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms).clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL)
    }
}

impl fmt::Debug for StartedSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state and the verifier are what a thief would need to collect the session.
        f.debug_struct("StartedSignIn")
            .field("auth_url", &self.auth_url)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// Starts a sign-in for this machine, named `device_name` in the user's session list.
pub async fn start(gateway: &GatewayHttp, device_name: &str) -> Result<StartedSignIn, SignInError> {
    let answer = gateway
        .post_json(START_PATH, &StartRequest { device_name }, None)
        .await?;
    match answer.status {
        StatusCode::OK => {
            let started: StartedSignIn = answer.json()?;
            started.auth_url()?;
            Ok(started)
        }
        StatusCode::SERVICE_UNAVAILABLE => Err(SignInError::NotOffered(answer.reason())),
        status => Err(SignInError::Status {
            status,
            reason: answer.reason(),
        }),
    }
}

/// What one poll learned.
enum Progress {
    Pending,
    Done(SignedIn),
}

/// Polls until the user has finished in the browser, the gateway ends the sign-in, or it
/// expires. A gateway that is briefly unreachable or overloaded is asked again: the user may be
/// half-way through the browser step, and a restart of the gateway should not waste it.
pub async fn wait_until_signed_in(
    gateway: &GatewayHttp,
    started: &StartedSignIn,
) -> Result<SignedIn, SignInError> {
    let longest = chrono::Duration::from_std(MAX_WAIT).unwrap_or(chrono::Duration::MAX);
    let deadline = started.expires_at.min(Utc::now() + longest);
    let interval = started.poll_interval();
    loop {
        let last_problem = match poll_once(gateway, started).await {
            Ok(Progress::Done(signed_in)) => return Ok(signed_in),
            Ok(Progress::Pending) => None,
            Err(error) if is_passing(&error) => Some(error.to_string()),
            Err(error) => return Err(error),
        };
        if Utc::now() + interval >= deadline {
            return Err(SignInError::TimedOut {
                at: deadline,
                last_problem,
            });
        }
        tokio::time::sleep(interval).await;
    }
}

/// Whether a poll's failure may well be gone by the next poll.
fn is_passing(error: &SignInError) -> bool {
    match error {
        SignInError::Call(_) => true,
        SignInError::Status { status, .. } => matches!(
            *status,
            StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
        ),
        _ => false,
    }
}

async fn poll_once(
    gateway: &GatewayHttp,
    started: &StartedSignIn,
) -> Result<Progress, SignInError> {
    let request = CompleteRequest {
        state: &started.state,
        code_verifier: &started.code_verifier,
    };
    let answer: Answer = gateway.post_json(COMPLETE_PATH, &request, None).await?;
    match answer.status {
        StatusCode::ACCEPTED => Ok(Progress::Pending),
        StatusCode::OK => Ok(Progress::Done(answer.json()?)),
        StatusCode::FORBIDDEN => Err(SignInError::Refused(answer.reason())),
        StatusCode::BAD_REQUEST => Err(SignInError::Failed(answer.reason())),
        status => Err(SignInError::Status {
            status,
            reason: answer.reason(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(auth_url: &str, poll_interval_ms: u64) -> StartedSignIn {
        StartedSignIn {
            auth_url: auth_url.to_owned(),
            state: "state-secret".to_owned(),
            code_verifier: "verifier-secret".to_owned(),
            expires_at: Utc::now(),
            poll_interval_ms,
        }
    }

    #[test]
    fn only_http_sign_in_addresses_are_used() {
        assert!(started("https://accounts.example.com/o/auth?x=1", 1000)
            .auth_url()
            .is_ok());
        for bad in ["file:///etc/passwd", "javascript:alert(1)", "not a url"] {
            assert!(started(bad, 1000).auth_url().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_polling_interval_is_kept_within_reason() {
        assert_eq!(started("https://a", 0).poll_interval(), MIN_POLL_INTERVAL);
        assert_eq!(
            started("https://a", 1000).poll_interval(),
            Duration::from_secs(1)
        );
        assert_eq!(
            started("https://a", u64::MAX).poll_interval(),
            MAX_POLL_INTERVAL
        );
    }

    #[test]
    fn debug_leaves_the_secrets_out() {
        let shown = format!("{:?}", started("https://a", 1000));
        assert!(!shown.contains("secret"), "{shown}");
    }
}

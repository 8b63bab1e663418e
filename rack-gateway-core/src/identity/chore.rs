//! Store writes a lookup leaves behind: recording a use, ending an expired session. They run in
//! the background, so they never delay or refuse a request; a failure is only logged (the next
//! use, or the expiry sweeper, tries again).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use tokio::sync::broadcast;

use super::{EndedSession, IdentitySource};

/// A background store write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Chore {
    /// Record that an API token was used.
    TouchToken {
        /// The token's store identifier.
        id: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that a session was used.
    TouchSession {
        /// The session's store identifier.
        id: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// End a session found past its limits.
    EndSession(EndedSession),
}

impl Chore {
    /// Starts the write on the current tokio runtime; outside one (a synchronous caller with no
    /// runtime) it is skipped, as recording is best effort.
    /// A session this write ends is announced on `ended`.
    pub(super) fn spawn(
        self,
        source: &Arc<dyn IdentitySource>,
        ended: &broadcast::Sender<EndedSession>,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(chore = ?self, "no runtime: identity store write skipped");
            return;
        };
        let source = Arc::clone(source);
        let ended = ended.clone();
        runtime.spawn(async move { self.run(source.as_ref(), &ended).await });
    }

    async fn run(self, source: &dyn IdentitySource, ended: &broadcast::Sender<EndedSession>) {
        match self {
            Chore::TouchToken { id, at } => {
                if let Err(error) = source.touch_token(id, at).await {
                    tracing::warn!(%error, token_id = id, "could not record token use");
                }
            }
            Chore::TouchSession { id, at } => {
                if let Err(error) = source.touch_session(id, at).await {
                    tracing::warn!(%error, session_id = id, "could not record session use");
                }
            }
            Chore::EndSession(session) => {
                let (id, end) = (session.id, &session.end);
                match source.end_session(id, end.reason()).await {
                    Ok(true) => {
                        tracing::debug!(session_id = id, %end, "session ended");
                        // Nobody listening is fine: announcing is for those who record it.
                        let _ = ended.send(session);
                    }
                    // Another instance (or the sweeper) ended it first, and announces it.
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, session_id = id, %end, "could not end expired session");
                    }
                }
            }
        }
    }
}

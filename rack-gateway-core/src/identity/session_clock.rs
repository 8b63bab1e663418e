//! What the resolver's cache keeps about a session besides its principal: when it started, its
//! newest use known to this process, and the newest use recorded in the store.
//!
//! Every use served from the cache counts towards the idle limit at once, so a session used
//! every few seconds never idles out while its principal is cached. Uses reach the store at
//! most every [`SessionLimits::touch_interval`] (30 seconds, or a quarter of a shorter idle
//! limit): recording each one would cost a write per request. Another instance (or this one,
//! once the cache entry goes stale) judges idleness by the recorded use, which lags the real one
//! by less than that interval.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Principal, Session, SessionEnd, SessionKind, SessionLimits};

/// The uses of one cached session.
#[derive(Clone, Debug)]
pub(super) struct SessionClock {
    id: i64,
    kind: SessionKind,
    created_at: DateTime<Utc>,
    /// The newest use known here: the store's `last_seen_at`, or a later use served here.
    last_used: DateTime<Utc>,
    /// The newest use recorded in the store (or being recorded).
    recorded: DateTime<Utc>,
}

/// What one use of a session means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SessionUse {
    /// The session is past a limit: refuse it, and end it in the store.
    Ended(SessionEnd),
    /// Within its limits; the use is remembered here only.
    Counted,
    /// Within its limits; record the use in the store. From then on the session ends at
    /// `expires_at` unless used again.
    Record {
        /// The new end of the session.
        expires_at: DateTime<Utc>,
    },
}

impl SessionClock {
    /// The clock of a session as read from the store.
    pub(super) fn new(session: &Session) -> Self {
        SessionClock {
            id: session.id,
            kind: session.kind,
            created_at: session.created_at,
            last_used: session.last_seen_at,
            recorded: session.last_seen_at,
        }
    }

    /// The session's store identifier.
    pub(super) fn session_id(&self) -> i64 {
        self.id
    }

    /// A use at `now` under `limits`.
    pub(super) fn use_at(&mut self, now: DateTime<Utc>, limits: &SessionLimits) -> SessionUse {
        if let Some(end) = limits.end_at(self.kind, self.created_at, self.last_used, now) {
            return SessionUse::Ended(end);
        }
        self.last_used = self.last_used.max(now);
        let interval = limits.touch_interval(self.kind);
        // A clock that went backwards (another instance ahead of this one) is not due.
        let due = (now - self.recorded)
            .to_std()
            .is_ok_and(|since| since >= interval);
        if !due {
            return SessionUse::Counted;
        }
        self.recorded = now;
        SessionUse::Record {
            expires_at: self.recorded_expiry(limits),
        }
    }

    /// When the session ends unless used again, as the store sees it (by the recorded use).
    pub(super) fn recorded_expiry(&self, limits: &SessionLimits) -> DateTime<Utc> {
        limits.deadline(self.kind, self.created_at, self.recorded).0
    }
}

/// `principal` with its session's `expires_at` moved to `expires_at` (unchanged when it is not
/// a session principal).
pub(super) fn with_session_expiry(
    principal: &Arc<Principal>,
    expires_at: DateTime<Utc>,
) -> Arc<Principal> {
    match principal.as_ref() {
        Principal::User(user) if user.session.is_some() => {
            let mut user = user.clone();
            if let Some(session) = user.session.as_mut() {
                session.expires_at = expires_at;
            }
            Arc::new(Principal::User(user))
        }
        _ => Arc::clone(principal),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;
    use uuid::Uuid;

    use super::*;
    use crate::identity::{SessionInfo, UserPrincipal};

    fn limits() -> SessionLimits {
        SessionLimits {
            web_idle: Duration::from_secs(60),
            web_absolute: Duration::from_secs(600),
            ..SessionLimits::default()
        }
    }

    fn session(start: DateTime<Utc>) -> Session {
        Session {
            id: 9,
            public_id: Uuid::nil(),
            user_id: 1,
            kind: SessionKind::Web,
            created_at: start,
            last_seen_at: start,
            revoked_at: None,
            revoked_reason: None,
            ip: None,
            user_agent: None,
            device_name: None,
        }
    }

    #[test]
    fn uses_keep_a_session_alive_and_are_recorded_now_and_then() {
        let start = Utc::now();
        let limits = limits();
        let mut clock = SessionClock::new(&session(start));
        assert_eq!(clock.session_id(), 9);
        let mut recorded = 0;
        // A use every 10 s for 5 minutes: five times the idle limit.
        for step in 1..=30 {
            let now = start + TimeDelta::seconds(10 * step);
            match clock.use_at(now, &limits) {
                SessionUse::Counted => {}
                SessionUse::Record { expires_at } => {
                    recorded += 1;
                    assert_eq!(expires_at, now + TimeDelta::seconds(60));
                }
                SessionUse::Ended(end) => panic!("ended at step {step}: {end}"),
            }
        }
        // A quarter of the 60 s idle limit is 15 s: every other use is recorded.
        assert_eq!(recorded, 15);
        // Left alone for the idle limit, it ends.
        let later = start + TimeDelta::seconds(300 + 60);
        assert_eq!(
            clock.use_at(later, &limits),
            SessionUse::Ended(SessionEnd::Idle)
        );
    }

    #[test]
    fn a_busy_session_still_ends_at_its_absolute_limit() {
        let start = Utc::now();
        let limits = limits();
        let mut clock = SessionClock::new(&session(start));
        let mut now = start;
        while now < start + TimeDelta::seconds(599) {
            now += TimeDelta::seconds(20);
            if let SessionUse::Ended(end) = clock.use_at(now, &limits) {
                assert_eq!(end, SessionEnd::Absolute);
                assert!(now >= start + TimeDelta::seconds(600), "{now} {start}");
                return;
            }
        }
        let end = clock.use_at(start + TimeDelta::seconds(600), &limits);
        assert_eq!(end, SessionUse::Ended(SessionEnd::Absolute));
    }

    #[test]
    fn the_expiry_of_a_cached_principal_moves() {
        let now = Utc::now();
        let user = Arc::new(Principal::User(UserPrincipal {
            id: 1,
            email: "a@example.com".into(),
            name: "A".into(),
            roles: Vec::new(),
            session: Some(SessionInfo {
                id: 9,
                public_id: Uuid::nil(),
                kind: SessionKind::Web,
                created_at: now,
                expires_at: now,
            }),
        }));
        let later = now + TimeDelta::minutes(1);
        let moved = with_session_expiry(&user, later);
        let Principal::User(moved) = moved.as_ref() else {
            panic!("not a user: {moved:?}");
        };
        assert_eq!(moved.session.as_ref().map(|s| s.expires_at), Some(later));
        let anonymous = Arc::new(Principal::Anonymous);
        assert!(Arc::ptr_eq(
            &with_session_expiry(&anonymous, later),
            &anonymous
        ));
    }
}

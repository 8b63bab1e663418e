//! How long sessions live: an idle limit (counted from the last use) and an absolute limit
//! (counted from sign-in), each for web and for CLI sessions. A session ends at the earlier of
//! the two.
//!
//! The reference slid both kinds of session forever (a CLI session used once every 89 days never
//! ended); here even a busy session ends at its absolute limit and the user signs in again.
//!
//! ```
//! use std::time::Duration;
//!
//! use chrono::{TimeDelta, Utc};
//! use rack_gateway_core::identity::{Session, SessionEnd, SessionKind, SessionLimits};
//!
//! let limits = SessionLimits::default();
//! assert_eq!(limits.web_idle, Duration::from_secs(5 * 60));
//! let now = Utc::now();
//! let session = Session {
//!     id: 1,
//!     public_id: uuid::Uuid::new_v4(),
//!     user_id: 1,
//!     kind: SessionKind::Web,
//!     created_at: now - TimeDelta::hours(1),
//!     last_seen_at: now - TimeDelta::minutes(6),
//!     revoked_at: None,
//!     revoked_reason: None,
//!     ip: None,
//!     user_agent: None,
//!     device_name: None,
//! };
//! assert_eq!(limits.expires_at(&session), session.last_seen_at + TimeDelta::minutes(5));
//! assert_eq!(limits.check(&session, now), Err(SessionEnd::Idle));
//! assert_eq!(SessionEnd::Idle.to_string(), "session expired (idle)");
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Session, SessionKind};
use crate::settings::Settings;

/// How often a session's use is recorded in the store, at most.
const TOUCH_INTERVAL: Duration = Duration::from_secs(30);

/// Idle and absolute limits of web and CLI sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// A web session unused this long ends (setting `session_timeout_minutes`).
    pub web_idle: Duration,
    /// A web session ends this long after sign-in (setting `session_absolute_hours`).
    pub web_absolute: Duration,
    /// A CLI session unused this long ends (setting `cli_session_idle_days`).
    pub cli_idle: Duration,
    /// A CLI session ends this long after sign-in (setting `cli_session_absolute_days`).
    pub cli_absolute: Duration,
}

impl Default for SessionLimits {
    /// The settings' defaults: web 5 minutes idle and 12 hours in all, CLI 7 days idle and 30
    /// days in all.
    fn default() -> Self {
        SessionLimits {
            web_idle: minutes(5),
            web_absolute: hours(12),
            cli_idle: days(7),
            cli_absolute: days(30),
        }
    }
}

impl SessionLimits {
    /// The limits the settings ask for (each resolved DB row → environment → default).
    pub fn from_settings(settings: &Settings) -> Self {
        SessionLimits {
            web_idle: minutes(settings.session_timeout_minutes()),
            web_absolute: hours(settings.session_absolute_hours()),
            cli_idle: days(settings.cli_session_idle_days()),
            cli_absolute: days(settings.cli_session_absolute_days()),
        }
    }

    /// The idle limit of `kind`.
    pub fn idle(&self, kind: SessionKind) -> Duration {
        match kind {
            SessionKind::Web => self.web_idle,
            SessionKind::Cli => self.cli_idle,
        }
    }

    /// The absolute limit of `kind`.
    pub fn absolute(&self, kind: SessionKind) -> Duration {
        match kind {
            SessionKind::Web => self.web_absolute,
            SessionKind::Cli => self.cli_absolute,
        }
    }

    /// When `session` ends unless it is used again: the earlier of `created_at + absolute` and
    /// `last_seen_at + idle` for its kind (revocation aside).
    pub fn expires_at(&self, session: &Session) -> DateTime<Utc> {
        self.deadline(session.kind, session.created_at, session.last_seen_at)
            .0
    }

    /// Whether `session` may still be used at `now`, and if not, why it ended.
    ///
    /// A revoked session is [`SessionEnd::Revoked`], except that one revoked by the expiry
    /// sweeper (reason `expired (idle)` or `expired (absolute)`) reads as that expiry again.
    pub fn check(&self, session: &Session, now: DateTime<Utc>) -> Result<(), SessionEnd> {
        if session.revoked_at.is_some() {
            let reason = session.revoked_reason.as_deref().unwrap_or_default();
            return Err(SessionEnd::from_revocation(reason));
        }
        self.end_at(session.kind, session.created_at, session.last_seen_at, now)
            .map_or(Ok(()), Err)
    }

    /// The instant a session of `kind` started at `created_at` and last used at `last_used`
    /// ends, and which limit ends it (the absolute one when both fall together).
    pub(crate) fn deadline(
        &self,
        kind: SessionKind,
        created_at: DateTime<Utc>,
        last_used: DateTime<Utc>,
    ) -> (DateTime<Utc>, SessionEnd) {
        let absolute = later_by(created_at, self.absolute(kind));
        let idle = later_by(last_used, self.idle(kind));
        if absolute <= idle {
            (absolute, SessionEnd::Absolute)
        } else {
            (idle, SessionEnd::Idle)
        }
    }

    /// How the session ended by `now` (reaching its deadline ends it), if it did.
    pub(crate) fn end_at(
        &self,
        kind: SessionKind,
        created_at: DateTime<Utc>,
        last_used: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<SessionEnd> {
        let (deadline, end) = self.deadline(kind, created_at, last_used);
        (now >= deadline).then_some(end)
    }

    /// Sessions of `kind` created at or before the first instant, or last used at or before the
    /// second, have ended by `now` (absolute and idle cut-offs, never before the Unix epoch).
    // Only the store backends sweep sessions.
    #[cfg_attr(not(any(feature = "postgres", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn cutoffs(
        &self,
        kind: SessionKind,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            earlier_by(now, self.absolute(kind)),
            earlier_by(now, self.idle(kind)),
        )
    }

    /// How often a use of a session of `kind` is recorded in the store: every 30 seconds, or a
    /// quarter of the idle limit when that is shorter, so that the recorded use never lags
    /// enough for another instance to think a busy session idle.
    pub(crate) fn touch_interval(&self, kind: SessionKind) -> Duration {
        TOUCH_INTERVAL.min(self.idle(kind) / 4)
    }
}

/// Why a session can no longer be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Unused for longer than its idle limit.
    Idle,
    /// Older than its absolute limit.
    Absolute,
    /// Revoked (sign-out or an administrator), with the recorded reason.
    Revoked(String),
}

impl SessionEnd {
    /// The revocation reason recorded when a session ends for being idle.
    pub const IDLE_REASON: &'static str = "expired (idle)";
    /// The revocation reason recorded when a session ends at its absolute limit.
    pub const ABSOLUTE_REASON: &'static str = "expired (absolute)";

    /// The end a stored revocation reason stands for.
    pub fn from_revocation(reason: &str) -> Self {
        match reason {
            Self::IDLE_REASON => SessionEnd::Idle,
            Self::ABSOLUTE_REASON => SessionEnd::Absolute,
            other => SessionEnd::Revoked(other.to_owned()),
        }
    }

    /// The reason to record when revoking a session for this end.
    pub fn reason(&self) -> &str {
        match self {
            SessionEnd::Idle => Self::IDLE_REASON,
            SessionEnd::Absolute => Self::ABSOLUTE_REASON,
            SessionEnd::Revoked(reason) => reason,
        }
    }

    /// The refusal shown to the client: `session expired` or `session revoked`.
    pub fn refusal(&self) -> &'static str {
        match self {
            SessionEnd::Idle | SessionEnd::Absolute => "session expired",
            SessionEnd::Revoked(_) => "session revoked",
        }
    }
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Idle => f.write_str("session expired (idle)"),
            SessionEnd::Absolute => f.write_str("session expired (absolute)"),
            SessionEnd::Revoked(reason) if reason.is_empty() => f.write_str("session revoked"),
            SessionEnd::Revoked(reason) => write!(f, "session revoked ({reason})"),
        }
    }
}

impl std::error::Error for SessionEnd {}

fn minutes(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 60)
}

fn hours(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 60 * 60)
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 24 * 60 * 60)
}

/// `at + span`, or the latest representable instant when that overflows.
fn later_by(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|span| at.checked_add_signed(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - span`, but never before the Unix epoch (no session is older; both stores hold it).
#[cfg_attr(not(any(feature = "postgres", feature = "sqlite")), allow(dead_code))]
fn earlier_by(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|span| at.checked_sub_signed(span))
        .map_or(DateTime::UNIX_EPOCH, |cutoff| {
            cutoff.max(DateTime::UNIX_EPOCH)
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::settings::{EnvOverrides, Settings};

    fn session(kind: SessionKind, age: TimeDelta, idle_for: TimeDelta) -> (Session, DateTime<Utc>) {
        let now = Utc::now();
        let session = Session {
            id: 1,
            public_id: uuid::Uuid::nil(),
            user_id: 1,
            kind,
            created_at: now - age,
            last_seen_at: now - idle_for,
            revoked_at: None,
            revoked_reason: None,
            ip: None,
            user_agent: None,
            device_name: None,
        };
        (session, now)
    }

    #[test]
    fn defaults_match_the_settings_defaults() {
        let limits = SessionLimits::default();
        assert_eq!(limits.web_idle, Duration::from_secs(300));
        assert_eq!(limits.web_absolute, Duration::from_secs(12 * 3600));
        assert_eq!(limits.cli_idle, Duration::from_secs(7 * 86400));
        assert_eq!(limits.cli_absolute, Duration::from_secs(30 * 86400));
        let from_defaults = SessionLimits::from_settings(&Settings::new(Arc::default()));
        assert_eq!(from_defaults, limits);
    }

    #[test]
    fn settings_choose_the_limits() {
        let env = EnvOverrides::from_vars([
            ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "15"),
            ("RGW_SETTING_SESSION_ABSOLUTE_HOURS", "8"),
            ("RGW_SETTING_CLI_SESSION_IDLE_DAYS", "2"),
            ("RGW_SETTING_CLI_SESSION_ABSOLUTE_DAYS", "14"),
        ])
        .unwrap();
        let limits = SessionLimits::from_settings(&Settings::new(Arc::new(env)));
        assert_eq!(
            limits,
            SessionLimits {
                web_idle: Duration::from_secs(15 * 60),
                web_absolute: Duration::from_secs(8 * 3600),
                cli_idle: Duration::from_secs(2 * 86400),
                cli_absolute: Duration::from_secs(14 * 86400),
            }
        );
        assert_eq!(limits.idle(SessionKind::Cli), limits.cli_idle);
        assert_eq!(limits.absolute(SessionKind::Web), limits.web_absolute);
    }

    #[test]
    fn the_earlier_limit_ends_a_session() {
        let limits = SessionLimits::default();
        // Busy but old: the absolute limit.
        let (old, now) = session(
            SessionKind::Web,
            TimeDelta::hours(13),
            TimeDelta::seconds(1),
        );
        assert_eq!(
            limits.expires_at(&old),
            old.created_at + TimeDelta::hours(12)
        );
        assert_eq!(limits.check(&old, now), Err(SessionEnd::Absolute));
        // Young but idle: the idle limit.
        let (idle, now) = session(SessionKind::Web, TimeDelta::hours(1), TimeDelta::minutes(5));
        assert_eq!(limits.check(&idle, now), Err(SessionEnd::Idle));
        assert_eq!(limits.check(&idle, now - TimeDelta::seconds(1)), Ok(()));
        // The same ages are fine for a CLI session.
        let (cli, now) = session(
            SessionKind::Cli,
            TimeDelta::hours(13),
            TimeDelta::minutes(5),
        );
        assert_eq!(limits.check(&cli, now), Ok(()));
        assert_eq!(
            limits.expires_at(&cli),
            cli.last_seen_at + TimeDelta::days(7)
        );
        let (cli, now) = session(SessionKind::Cli, TimeDelta::days(30), TimeDelta::hours(1));
        assert_eq!(limits.check(&cli, now), Err(SessionEnd::Absolute));
    }

    #[test]
    fn revocations_are_reported_with_their_reason() {
        let limits = SessionLimits::default();
        let (mut session, now) = session(SessionKind::Web, TimeDelta::zero(), TimeDelta::zero());
        session.revoked_at = Some(now);
        session.revoked_reason = Some("logout".into());
        let end = limits.check(&session, now).unwrap_err();
        assert_eq!(end, SessionEnd::Revoked("logout".into()));
        assert_eq!(end.to_string(), "session revoked (logout)");
        assert_eq!(end.refusal(), "session revoked");
        session.revoked_reason = Some(SessionEnd::IDLE_REASON.into());
        assert_eq!(limits.check(&session, now), Err(SessionEnd::Idle));
        session.revoked_reason = Some(SessionEnd::ABSOLUTE_REASON.into());
        assert_eq!(limits.check(&session, now), Err(SessionEnd::Absolute));
    }

    #[test]
    fn ends_display_on_one_line_and_round_trip_their_reason() {
        for end in [
            SessionEnd::Idle,
            SessionEnd::Absolute,
            SessionEnd::Revoked("admin".into()),
        ] {
            assert_eq!(SessionEnd::from_revocation(end.reason()), end);
            assert!(!end.to_string().contains('\n'));
        }
        assert_eq!(
            SessionEnd::Absolute.to_string(),
            "session expired (absolute)"
        );
        assert_eq!(SessionEnd::Idle.refusal(), "session expired");
        assert_eq!(
            SessionEnd::Revoked(String::new()).to_string(),
            "session revoked"
        );
    }

    #[test]
    fn huge_limits_saturate_instead_of_panicking() {
        let limits = SessionLimits {
            web_idle: Duration::MAX,
            web_absolute: Duration::MAX,
            cli_idle: Duration::ZERO,
            cli_absolute: Duration::MAX,
        };
        let (web, now) = session(
            SessionKind::Web,
            TimeDelta::days(9999),
            TimeDelta::days(9999),
        );
        assert_eq!(limits.expires_at(&web), DateTime::<Utc>::MAX_UTC);
        assert_eq!(limits.check(&web, now), Ok(()));
        assert_eq!(
            limits.cutoffs(SessionKind::Web, now),
            (DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH)
        );
        // No idle time at all: ended at once.
        let (cli, now) = session(SessionKind::Cli, TimeDelta::zero(), TimeDelta::zero());
        assert_eq!(limits.check(&cli, now), Err(SessionEnd::Idle));
        assert_eq!(limits.touch_interval(SessionKind::Cli), Duration::ZERO);
    }

    #[test]
    fn uses_are_recorded_often_enough_for_short_idle_limits() {
        let limits = SessionLimits {
            web_idle: Duration::from_secs(60),
            ..SessionLimits::default()
        };
        assert_eq!(
            limits.touch_interval(SessionKind::Web),
            Duration::from_secs(15)
        );
        assert_eq!(
            limits.touch_interval(SessionKind::Cli),
            Duration::from_secs(30)
        );
    }
}

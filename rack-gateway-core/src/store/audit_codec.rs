//! What both backends share about the audit chain: the column order, the preparation of events
//! before sealing, the decoding of stored values, the query builder and the retention plan.
//!
//! Rows are stored exactly as they were hashed, so decoding never normalises anything: a value
//! that does not decode (an unknown enum text, a MAC that is not 32 bytes) is
//! [`StoreError::Corrupt`], never silently repaired.

use chrono::{DateTime, Utc};

use super::{AuditFilter, StoreError};
use crate::audit::{ActorKind, AuditDecision, AuditEvent, ChainHead, Phase};

/// Every column of `audit_events`, in table order (the order rows are read and written in).
pub(crate) const AUDIT_COLUMNS: &str = "seq, recorded_at, request_id, actor_kind, actor_email, \
     actor_name, token_id, token_name, client_ip, user_agent, action, phase, resource, method, \
     path, decision, reason, http_status, latency_ms, details, key_id, prev_mac, mac";

/// How many columns [`AUDIT_COLUMNS`] names.
#[cfg(feature = "postgres")]
pub(crate) const AUDIT_COLUMN_COUNT: usize = 23;

/// Makes an event storable by both backends before it is sealed, so that what is hashed is what
/// is stored: NUL characters (which PostgreSQL text refuses) become U+FFFD, and a latency beyond
/// `i64::MAX` milliseconds is clamped. Everything else is kept byte for byte.
pub(crate) fn storable(mut event: AuditEvent) -> AuditEvent {
    fn clean(text: &mut String) {
        if text.contains('\0') {
            *text = text.replace('\0', "\u{fffd}");
        }
    }
    fn clean_opt(text: &mut Option<String>) {
        if let Some(text) = text {
            clean(text);
        }
    }
    for text in [
        &mut event.request_id,
        &mut event.actor_email,
        &mut event.actor_name,
        &mut event.action,
        &mut event.reason,
        &mut event.details,
    ] {
        clean(text);
    }
    for text in [
        &mut event.token_id,
        &mut event.token_name,
        &mut event.client_ip,
        &mut event.user_agent,
        &mut event.resource,
        &mut event.method,
        &mut event.path,
    ] {
        clean_opt(text);
    }
    event.latency_ms = event.latency_ms.min(i64::MAX.unsigned_abs());
    event
}

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("audit {what}: {value}"))
}

/// A stored seq (or any other non-negative integer column).
pub(crate) fn seq(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt("seq", value))
}

/// A seq as the databases store it; `None` when it is beyond every stored seq.
pub(crate) fn seq_param(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// A row limit as the databases take it.
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A stored actor kind.
pub(crate) fn actor_kind(text: &str) -> Result<ActorKind, StoreError> {
    ActorKind::parse(text).ok_or_else(|| corrupt("actor_kind", text))
}

/// A stored phase.
pub(crate) fn phase(text: &str) -> Result<Phase, StoreError> {
    Phase::parse(text).ok_or_else(|| corrupt("phase", text))
}

/// A stored decision.
pub(crate) fn decision(text: &str) -> Result<AuditDecision, StoreError> {
    AuditDecision::parse(text).ok_or_else(|| corrupt("decision", text))
}

/// A stored HTTP status.
pub(crate) fn http_status(value: i64) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| corrupt("http_status", value))
}

/// A stored latency.
pub(crate) fn latency_ms(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt("latency_ms", value))
}

/// A stored MAC.
pub(crate) fn mac(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| corrupt("mac", format!("{} bytes", bytes.len())))
}

/// A query parameter of [`query_sql`], in a backend-neutral form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QueryParam {
    /// Text.
    Text(String),
    /// An HTTP status.
    Status(i32),
    /// A seq or a limit.
    Int(i64),
    /// A recorded_at bound.
    Time(DateTime<Utc>),
}

/// The SQL (with `placeholder(n)` for the n-th parameter, from 1) and the parameters of an
/// [`AuditFilter`] query returning at most `limit` rows. `None` when no row can match.
pub(crate) fn query_sql(
    filter: &AuditFilter,
    limit: usize,
    placeholder: fn(usize) -> String,
) -> Option<(String, Vec<QueryParam>)> {
    let mut params = Vec::new();
    let mut conditions = Vec::new();
    let bind = |param: QueryParam, params: &mut Vec<QueryParam>| {
        params.push(param);
        placeholder(params.len())
    };
    if let Some(actor) = &filter.actor {
        let p = bind(QueryParam::Text(actor.clone()), &mut params);
        conditions.push(format!("(actor_email = {p} OR token_name = {p})"));
    }
    if let Some(action) = &filter.action {
        let p = bind(QueryParam::Text(action.clone()), &mut params);
        conditions.push(format!("action = {p}"));
    }
    if let Some(decision) = filter.decision {
        let p = bind(QueryParam::Text(decision.as_str().to_owned()), &mut params);
        conditions.push(format!("decision = {p}"));
    }
    if let Some(status) = filter.status {
        let p = bind(QueryParam::Status(i32::from(status)), &mut params);
        conditions.push(format!("http_status = {p}"));
    }
    if let Some(since) = filter.since {
        let p = bind(QueryParam::Time(since), &mut params);
        conditions.push(format!("recorded_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = bind(QueryParam::Time(until), &mut params);
        conditions.push(format!("recorded_at < {p}"));
    }
    let order = if filter.oldest_first { "ASC" } else { "DESC" };
    if let Some(cursor) = filter.cursor {
        match (filter.oldest_first, seq_param(cursor)) {
            // Nothing is stored above i64::MAX.
            (true, None) => return None,
            (false, None) => {}
            (true, Some(cursor)) => {
                let p = bind(QueryParam::Int(cursor), &mut params);
                conditions.push(format!("seq > {p}"));
            }
            (false, Some(cursor)) => {
                let p = bind(QueryParam::Int(cursor), &mut params);
                conditions.push(format!("seq < {p}"));
            }
        }
    }
    let p = bind(QueryParam::Int(limit_param(limit)), &mut params);
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql =
        format!("SELECT {AUDIT_COLUMNS} FROM audit_events{filter} ORDER BY seq {order} LIMIT {p}");
    Some((sql, params))
}

/// What a retention run deletes: every row up to `last_seq`, whose MAC becomes the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PrunePlan {
    /// The highest seq deleted.
    pub(crate) last_seq: i64,
}

/// The seq the stored chain must start at (right after the checkpoint), checked against the
/// oldest stored row: pruning refuses to run on a chain that does not start where it should.
pub(crate) fn expected_chain_start(
    checkpoint: Option<ChainHead>,
    oldest: Option<i64>,
) -> Result<u64, StoreError> {
    let expected_first = checkpoint.map_or(1, |c| c.seq.saturating_add(1));
    let oldest = oldest.map(seq).transpose()?;
    if oldest != Some(expected_first) {
        return Err(StoreError::Corrupt(format!(
            "audit chain starts at seq {oldest:?}, expected {expected_first}: refusing to prune"
        )));
    }
    Ok(expected_first)
}

/// The longest prefix that may go: rows up to `up_to_seq`, stopping before `first_kept` (the
/// lowest seq at or below `up_to_seq` that is too recent), never past `newest` (the newest row).
/// `None` when nothing goes.
pub(crate) fn prune_plan(
    up_to_seq: i64,
    first_kept: Option<i64>,
    oldest: Option<i64>,
    newest: Option<i64>,
) -> Option<PrunePlan> {
    let (oldest, newest) = (oldest?, newest?);
    let last = first_kept
        .map_or(up_to_seq, |kept| kept.saturating_sub(1))
        .min(up_to_seq)
        .min(newest);
    (last >= oldest).then_some(PrunePlan { last_seq: last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn columns_are_counted() {
        assert_eq!(AUDIT_COLUMNS.split(", ").count(), AUDIT_COLUMN_COUNT);
    }

    #[test]
    fn storable_events_lose_only_nul_and_absurd_latency() {
        let mut event = AuditEvent::system("a.b", "with\0nul");
        event.path = Some("/x\0".into());
        event.latency_ms = u64::MAX;
        let stored = storable(event);
        assert_eq!(stored.reason, "with\u{fffd}nul");
        assert_eq!(stored.path.as_deref(), Some("/x\u{fffd}"));
        assert_eq!(stored.latency_ms, i64::MAX as u64);
        let plain = AuditEvent::system("a.b", "plain ünïcode");
        assert_eq!(storable(plain.clone()), plain);
    }

    #[test]
    fn queries_bind_every_filter_in_order() {
        let filter = AuditFilter {
            actor: Some("ann@example.com".into()),
            status: Some(403),
            cursor: Some(10),
            ..AuditFilter::default()
        };
        let (sql, params) = query_sql(&filter, 5, |n| format!("${n}")).unwrap();
        assert!(sql.ends_with(
            "WHERE (actor_email = $1 OR token_name = $1) AND http_status = $2 AND seq < $3 \
             ORDER BY seq DESC LIMIT $4"
        ));
        assert_eq!(
            params,
            [
                QueryParam::Text("ann@example.com".into()),
                QueryParam::Status(403),
                QueryParam::Int(10),
                QueryParam::Int(5)
            ]
        );
        let beyond = AuditFilter {
            cursor: Some(u64::MAX),
            oldest_first: true,
            ..AuditFilter::default()
        };
        assert_eq!(query_sql(&beyond, 5, |n| format!("?{n}")), None);
    }

    #[test]
    fn prune_plans_keep_a_contiguous_suffix() {
        // Rows 1..=10; row 4 is too recent: only 1..=3 may go.
        assert_eq!(
            prune_plan(8, Some(4), Some(1), Some(10)),
            Some(PrunePlan { last_seq: 3 })
        );
        assert_eq!(
            prune_plan(8, None, Some(1), Some(10)),
            Some(PrunePlan { last_seq: 8 })
        );
        assert_eq!(
            prune_plan(80, None, Some(1), Some(10)),
            Some(PrunePlan { last_seq: 10 })
        );
        // The oldest row is too recent, or nothing is stored: nothing goes.
        assert_eq!(prune_plan(8, Some(5), Some(5), Some(10)), None);
        assert_eq!(prune_plan(8, None, None, None), None);
        assert_eq!(prune_plan(0, None, Some(1), Some(10)), None);
    }
}

//! What is recorded about each request or gateway action.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::identity::Principal;
use crate::redact::redact_credentials;

/// User agents longer than this are truncated (on a character boundary) before hashing.
pub const USER_AGENT_MAX_CHARS: usize = 512;

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A signed-in person.
    User,
    /// An API token.
    ApiToken,
    /// No (valid) credential.
    Anonymous,
    /// The gateway itself or an operator's shell.
    System,
}

/// Whether the record is written before forwarding a mutating request, or after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Written, and durable, before a mutating request is forwarded.
    Intent,
    /// Written once the outcome is known.
    Complete,
}

/// The decision recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditDecision {
    /// Allowed.
    Allow,
    /// Refused.
    Deny,
    /// Failed for an infrastructure reason.
    Error,
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the stored text.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(ActorKind { User => "user", ApiToken => "api_token", Anonymous => "anonymous", System => "system" });
text_enum!(Phase { Intent => "intent", Complete => "complete" });
text_enum!(AuditDecision { Allow => "allow", Deny => "deny", Error => "error" });

/// One event before it joins the chain: every column except seq, recorded_at, key_id and MACs.
///
/// `details` is canonical JSON (sorted keys, no spaces) that has already been redacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// X-Request-ID of the request (or a fresh id for gateway actions).
    pub request_id: String,
    /// Who acted.
    pub actor_kind: ActorKind,
    /// Actor's email; empty for anonymous.
    pub actor_email: String,
    /// Actor's name; empty for anonymous.
    pub actor_name: String,
    /// API token public id, for tokens.
    pub token_id: Option<String>,
    /// API token name, for tokens.
    pub token_name: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Client user agent (at most [`USER_AGENT_MAX_CHARS`]).
    pub user_agent: Option<String>,
    /// `<resource>.<action>`, e.g. `app.list`.
    pub action: String,
    /// Intent or complete.
    pub phase: Phase,
    /// App name, `app/KEY`, release or process id, …
    pub resource: Option<String>,
    /// HTTP method.
    pub method: Option<String>,
    /// Path without the proxy prefix, query redacted.
    pub path: Option<String>,
    /// Allow, deny or error.
    pub decision: AuditDecision,
    /// Why.
    pub reason: String,
    /// Response status (0 for intent records).
    pub http_status: u16,
    /// Response latency in milliseconds (0 for intent records).
    pub latency_ms: u64,
    /// Redacted canonical JSON object.
    pub details: String,
}

impl AuditEvent {
    /// A gateway action with no request behind it (jobs, operator commands).
    pub fn system(action: &str, reason: &str) -> Self {
        AuditEvent {
            request_id: uuid::Uuid::new_v4().to_string(),
            actor_kind: ActorKind::System,
            actor_email: String::new(),
            actor_name: String::new(),
            token_id: None,
            token_name: None,
            client_ip: None,
            user_agent: None,
            action: action.to_owned(),
            phase: Phase::Complete,
            resource: None,
            method: None,
            path: None,
            decision: AuditDecision::Allow,
            reason: reason.to_owned(),
            http_status: 0,
            latency_ms: 0,
            details: "{}".to_owned(),
        }
    }

    /// Fills the actor columns from the principal (anonymous when `None`).
    pub fn set_actor(&mut self, principal: Option<&Principal>) {
        let (kind, email, name, token_id, token_name) = match principal {
            Some(Principal::User(user)) => (
                ActorKind::User,
                user.email.clone(),
                user.name.clone(),
                None,
                None,
            ),
            Some(Principal::ApiToken(token)) => (
                ActorKind::ApiToken,
                token.owner_email.clone().unwrap_or_default(),
                token.owner_name.clone().unwrap_or_default(),
                Some(token.public_id.to_string()),
                Some(token.name.clone()),
            ),
            Some(Principal::Anonymous) | None => (
                ActorKind::Anonymous,
                String::new(),
                String::new(),
                None,
                None,
            ),
        };
        self.actor_kind = kind;
        self.actor_email = email;
        self.actor_name = name;
        self.token_id = token_id;
        self.token_name = token_name;
    }

    /// Removes gateway credentials and applies the length limits, so that what is hashed is
    /// exactly what is stored.
    ///
    /// Every text column but `client_ip` goes through [`redact_credentials`]: a client can put
    /// its token in a query parameter, its user agent or its request id, and field-name rules
    /// cannot know that. `details` is redacted as JSON text, which stays valid JSON (the
    /// replacement holds no quote or backslash). The user agent is cut after redaction, so a
    /// token straddling the limit is not kept in part.
    pub fn normalized(mut self) -> Self {
        for text in [
            &mut self.request_id,
            &mut self.actor_email,
            &mut self.actor_name,
            &mut self.action,
            &mut self.reason,
            &mut self.details,
        ] {
            scrub(text);
        }
        for text in [
            &mut self.token_id,
            &mut self.token_name,
            &mut self.user_agent,
            &mut self.resource,
            &mut self.method,
            &mut self.path,
        ]
        .into_iter()
        .flatten()
        {
            scrub(text);
        }
        if let Some(agent) = &mut self.user_agent {
            if let Some((cut, _)) = agent.char_indices().nth(USER_AGENT_MAX_CHARS) {
                agent.truncate(cut);
            }
        }
        self
    }
}

/// Replaces `text` with its credential-free form, allocating only when something was found.
fn scrub(text: &mut String) {
    if let Cow::Owned(redacted) = redact_credentials(text) {
        *text = redacted;
    }
}

/// A sealed row of the chain, exactly as stored and hashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// UTC, microsecond precision.
    pub recorded_at: DateTime<Utc>,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// First 16 hex characters of SHA-256 of the key that made `mac`.
    pub key_id: String,
    /// MAC of the previous row (zeros for seq 1, or the retention checkpoint).
    #[serde(serialize_with = "hex_bytes", deserialize_with = "bytes_of_hex")]
    pub prev_mac: [u8; 32],
    /// This row's MAC.
    #[serde(serialize_with = "hex_bytes", deserialize_with = "bytes_of_hex")]
    pub mac: [u8; 32],
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::audit::encode::hex(bytes))
}

/// 64 hex digits back into 32 bytes (records read back from an export or a sink of one's own).
fn bytes_of_hex<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::audit::encode::unhex32(&text)
        .ok_or_else(|| serde::de::Error::custom("a MAC is 64 hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "rgw_abcdefghijklmnopqrstuvwxyz0123456789-_ABCDE";

    #[test]
    fn records_read_back_from_json_are_the_records_written() {
        let key = crate::audit::ChainKey::new(b"a test key of at least thirty-two bytes");
        let mut event = AuditEvent::system("audit.test", "read back");
        event.details = r#"{"a":1}"#.to_owned();
        let records = crate::audit::seal(
            crate::audit::ChainHead::genesis(),
            &key,
            chrono::Utc::now(),
            vec![event],
        );
        let text = serde_json::to_string(&records[0]).unwrap();
        let back: AuditRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, records[0]);
        let mac = crate::audit::encode::hex(&records[0].mac);
        assert!(serde_json::from_str::<AuditRecord>(&text.replace(&mac, "zz")).is_err());
    }

    #[test]
    fn normalizing_removes_tokens_from_every_text_column() {
        let mut event = AuditEvent::system(&format!("a.{TOKEN}"), &format!("r {TOKEN}"));
        event.request_id = TOKEN.to_owned();
        event.actor_email = format!("{TOKEN}@example.com");
        event.actor_name = TOKEN.to_owned();
        event.token_id = Some(TOKEN.to_owned());
        event.token_name = Some(TOKEN.to_owned());
        event.user_agent = Some(format!("curl/8 {TOKEN}"));
        event.resource = Some(format!("web/{TOKEN}"));
        event.method = Some(TOKEN.to_owned());
        event.path = Some(format!("/apps?t={TOKEN}"));
        event.details = format!("{{\"q\":\"t={TOKEN}\",\"{TOKEN}\":1}}");
        event.client_ip = Some("10.0.0.1".to_owned());
        let normalized = event.normalized();
        let text = serde_json::to_string(&normalized).unwrap_or_default();
        assert!(!text.contains(&TOKEN[4..]), "{text}");
        assert_eq!(normalized.path.as_deref(), Some("/apps?t=rgw_[REDACTED]"));
        assert_eq!(normalized.request_id, "rgw_[REDACTED]");
        let details: serde_json::Value = serde_json::from_str(&normalized.details).unwrap();
        assert_eq!(details["q"], "t=rgw_[REDACTED]");
        assert_eq!(normalized.client_ip.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn the_user_agent_is_cut_after_redaction() {
        let mut event = AuditEvent::system("a.b", "r");
        let padding = "x".repeat(USER_AGENT_MAX_CHARS - 10);
        event.user_agent = Some(format!("{padding} {TOKEN}"));
        let agent = event.normalized().user_agent.unwrap_or_default();
        assert_eq!(agent.chars().count(), USER_AGENT_MAX_CHARS);
        assert!(agent.ends_with(" rgw_[REDA"), "{agent}");
    }

    #[test]
    fn events_without_tokens_are_unchanged() {
        let mut event = AuditEvent::system("app.list", "granted by role viewer");
        event.path = Some("/apps/rgw-web/processes?storage-rg=1".to_owned());
        event.user_agent = Some("convox/3.19 (rgw_short)".to_owned());
        event.details = r#"{"query":"page=2"}"#.to_owned();
        assert_eq!(event.clone().normalized(), event);
    }
}

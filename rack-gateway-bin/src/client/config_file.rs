//! What `config.json` holds: the current rack and one stored credential per rack.
//!
//! Fields this version does not know are kept when the file is rewritten, at the top and in
//! each rack: a newer `rack-gateway` (or a sibling issue's MFA preferences) may have written
//! them, and an older binary that merely switches racks must not silently drop them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::gateway_url::GatewayUrl;
use super::rack_name::RackName;
use super::token::SessionToken;

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The rack used when no `--rack` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<RackName>,
    /// The stored credential of each rack, by name.
    #[serde(default)]
    pub racks: BTreeMap<RackName, RackCredential>,
    /// Fields this version does not know, written back as they were read.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// A signed-in session on one gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RackCredential {
    /// The gateway's base URL.
    pub url: GatewayUrl,
    /// The session token (the secret).
    pub token: SessionToken,
    /// Who signed in.
    pub email: String,
    /// When the gateway stops accepting the token.
    pub expires_at: DateTime<Utc>,
    /// The session's id on the gateway, for the user to recognise it in the session list.
    pub session_id: String,
    /// Fields this version does not know, written back as they were read.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// The chosen rack is not there, or none was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RackChoiceError {
    /// A name that is not among the stored racks.
    #[error("no rack named {name}; {}", known_racks(.known))]
    Unknown {
        /// The name asked for.
        name: RackName,
        /// The stored racks.
        known: Vec<RackName>,
    },
    /// Neither `--rack` nor a current rack.
    #[error("no current rack: choose one with `rack-gateway switch RACK` or --rack RACK; {}", known_racks(.known))]
    NoneCurrent {
        /// The stored racks.
        known: Vec<RackName>,
    },
}

/// The end of a message that lists the stored racks, or says how to add one.
fn known_racks(known: &[RackName]) -> String {
    if known.is_empty() {
        "no racks are stored yet: sign in with `rack-gateway login RACK URL`".to_owned()
    } else {
        let names: Vec<&str> = known.iter().map(RackName::as_str).collect();
        format!("known racks: {}", names.join(", "))
    }
}

impl RackCredential {
    /// Whether the gateway will already have refused the token at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

impl ClientConfig {
    /// The stored rack names, sorted.
    pub fn names(&self) -> Vec<RackName> {
        self.racks.keys().cloned().collect()
    }

    /// The rack `chosen`, else the current one, with its credential.
    pub fn select(
        &self,
        chosen: Option<&RackName>,
    ) -> Result<(&RackName, &RackCredential), RackChoiceError> {
        let name =
            chosen
                .or(self.current.as_ref())
                .ok_or_else(|| RackChoiceError::NoneCurrent {
                    known: self.names(),
                })?;
        self.racks
            .get_key_value(name)
            .ok_or_else(|| RackChoiceError::Unknown {
                name: name.clone(),
                known: self.names(),
            })
    }

    /// Stores `credential` as `name` (replacing what was there) and makes it current.
    pub fn remember(&mut self, name: RackName, credential: RackCredential) {
        self.racks.insert(name.clone(), credential);
        self.current = Some(name);
    }

    /// Makes `name` current.
    pub fn switch_to(&mut self, name: &RackName) -> Result<(), RackChoiceError> {
        self.select(Some(name))?;
        self.current = Some(name.clone());
        Ok(())
    }

    /// Removes `name`; when it was current, no rack is current any more (picking another one
    /// silently could send the next command to the wrong rack).
    pub fn forget(&mut self, name: &RackName) -> Option<RackCredential> {
        if self.current.as_ref() == Some(name) {
            self.current = None;
        }
        self.racks.remove(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack(name: &str) -> RackName {
        name.parse().expect("rack name")
    }

    fn credential() -> RackCredential {
        RackCredential {
            url: "https://gw.example.com".parse().expect("url"),
            token: "rgs_t".parse().expect("token"),
            email: "a@example.com".to_owned(),
            expires_at: Utc::now(),
            session_id: "s".to_owned(),
            unknown: Map::new(),
        }
    }

    #[test]
    fn select_prefers_the_chosen_rack_then_the_current_one() {
        let mut config = ClientConfig::default();
        assert!(matches!(
            config.select(None),
            Err(RackChoiceError::NoneCurrent { .. })
        ));
        config.remember(rack("prod"), credential());
        config.remember(rack("dev"), credential());
        assert_eq!(config.select(None).map(|(n, _)| n.as_str()), Ok("dev"));
        assert_eq!(
            config.select(Some(&rack("prod"))).map(|(n, _)| n.as_str()),
            Ok("prod")
        );
        let unknown = config.select(Some(&rack("qa"))).expect_err("unknown");
        assert_eq!(
            unknown.to_string(),
            "no rack named qa; known racks: dev, prod"
        );
    }

    #[test]
    fn forgetting_the_current_rack_leaves_none_current() {
        let mut config = ClientConfig::default();
        config.remember(rack("prod"), credential());
        config.remember(rack("dev"), credential());
        assert!(config.forget(&rack("dev")).is_some());
        assert_eq!(config.current, None);
        assert!(config.forget(&rack("dev")).is_none());
        assert!(config.switch_to(&rack("dev")).is_err());
        assert!(config.switch_to(&rack("prod")).is_ok());
        assert_eq!(config.current, Some(rack("prod")));
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"current":"prod","machine_id":"m-1","racks":{"prod":{
            "url":"https://gw.example.com","token":"rgs_t","email":"a@example.com",
            "expires_at":"2030-01-01T00:00:00Z","session_id":"s","mfa_verified":true}}}"#;
        let config: ClientConfig = serde_json::from_str(text).expect("parse");
        let written = serde_json::to_value(&config).expect("encode");
        assert_eq!(written["machine_id"], "m-1");
        assert_eq!(written["racks"]["prod"]["mfa_verified"], true);
        assert_eq!(written["racks"]["prod"]["token"], "rgs_t");
    }
}

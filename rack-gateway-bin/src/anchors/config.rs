//! Anchoring settings from the environment.

use std::time::Duration;

use crate::config::{ConfigError, Env};

/// Default seconds between anchor rounds (AUDIT_ANCHOR_INTERVAL_SECONDS).
pub const DEFAULT_INTERVAL_SECONDS: u64 = 300;
/// Default Object Lock retention in days (AUDIT_ANCHOR_RETENTION_DAYS).
pub const DEFAULT_RETENTION_DAYS: u32 = 400;
/// Default AWS region when AWS_REGION is unset.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where and how often the chain head is anchored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorConfig {
    /// The Object Lock bucket (AUDIT_ANCHOR_BUCKET).
    pub bucket: String,
    /// The chain id, first part of every object key (AUDIT_ANCHOR_CHAIN_ID, else RACK_ALIAS).
    pub chain_id: String,
    /// Time between anchor rounds (AUDIT_ANCHOR_INTERVAL_SECONDS).
    pub interval: Duration,
    /// COMPLIANCE retention of each anchor object, in days (AUDIT_ANCHOR_RETENTION_DAYS).
    pub retention_days: u32,
    /// AWS region (AWS_REGION, default us-east-1).
    pub region: String,
    /// S3-compatible endpoint (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL); path-style when set.
    pub endpoint: Option<String>,
}

impl AnchorConfig {
    /// Reads the anchoring variables; `Ok(None)` when AUDIT_ANCHOR_BUCKET is unset.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(bucket) = env.get("AUDIT_ANCHOR_BUCKET") else {
            return Ok(None);
        };
        if !valid_bucket(bucket) {
            return Err(ConfigError::new(
                "AUDIT_ANCHOR_BUCKET",
                "must be an S3 bucket name (3-63 lowercase letters, digits, '.' or '-')",
            ));
        }
        let (variable, chain_id) = match env.get("AUDIT_ANCHOR_CHAIN_ID") {
            Some(id) => ("AUDIT_ANCHOR_CHAIN_ID", id),
            None => match env.get("RACK_ALIAS") {
                Some(alias) => ("RACK_ALIAS", alias),
                None => {
                    return Err(ConfigError::new(
                        "AUDIT_ANCHOR_CHAIN_ID",
                        "is required when AUDIT_ANCHOR_BUCKET is set (or set RACK_ALIAS)",
                    ))
                }
            },
        };
        if !valid_chain_id(chain_id) {
            return Err(ConfigError::new(
                variable,
                "must be 1-128 letters, digits, '.', '_' or '-' to serve as the anchor key prefix",
            ));
        }
        let seconds: u64 = env.parsed("AUDIT_ANCHOR_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS)?;
        if !(1..=86_400).contains(&seconds) {
            return Err(ConfigError::new(
                "AUDIT_ANCHOR_INTERVAL_SECONDS",
                "must be between 1 and 86400",
            ));
        }
        let retention_days: u32 =
            env.parsed("AUDIT_ANCHOR_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)?;
        if !(1..=36_500).contains(&retention_days) {
            return Err(ConfigError::new(
                "AUDIT_ANCHOR_RETENTION_DAYS",
                "must be between 1 and 36500",
            ));
        }
        let region = env.get("AWS_REGION").unwrap_or(DEFAULT_REGION).to_owned();
        let endpoint = match (env.get("AWS_ENDPOINT_URL_S3"), env.get("AWS_ENDPOINT_URL")) {
            (Some(url), _) => Some(("AWS_ENDPOINT_URL_S3", url)),
            (None, Some(url)) => Some(("AWS_ENDPOINT_URL", url)),
            (None, None) => None,
        };
        let endpoint = match endpoint {
            Some((variable, url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::new(
                        variable,
                        "must be an http:// or https:// URL",
                    ));
                }
                Some(url.to_owned())
            }
            None => None,
        };
        Ok(Some(AnchorConfig {
            bucket: bucket.to_owned(),
            chain_id: chain_id.to_owned(),
            interval: Duration::from_secs(seconds),
            retention_days,
            region,
            endpoint,
        }))
    }

    /// How long the writer's lease lasts: twice the interval.
    pub fn lease_ttl(&self) -> Duration {
        self.interval.saturating_mul(2)
    }
}

fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

fn valid_chain_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id != "."
        && id != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Option<AnchorConfig>, ConfigError> {
        AnchorConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn unset_bucket_disables_anchoring() {
        assert_eq!(config(&[("RACK_ALIAS", "prod")]), Ok(None));
    }

    #[test]
    fn defaults_apply_and_the_alias_names_the_chain() {
        let c = config(&[
            ("AUDIT_ANCHOR_BUCKET", "audit-anchors"),
            ("RACK_ALIAS", "prod"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.chain_id, "prod");
        assert_eq!(c.interval, Duration::from_secs(300));
        assert_eq!(c.lease_ttl(), Duration::from_secs(600));
        assert_eq!(c.retention_days, 400);
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint, None);
    }

    #[test]
    fn explicit_values_win() {
        let c = config(&[
            ("AUDIT_ANCHOR_BUCKET", "audit-anchors"),
            ("AUDIT_ANCHOR_CHAIN_ID", "eu"),
            ("RACK_ALIAS", "prod"),
            ("AUDIT_ANCHOR_INTERVAL_SECONDS", "60"),
            ("AUDIT_ANCHOR_RETENTION_DAYS", "30"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9001"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.chain_id, "eu");
        assert_eq!(c.interval, Duration::from_secs(60));
        assert_eq!(c.retention_days, 30);
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9001"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let base = [
            ("AUDIT_ANCHOR_BUCKET", "audit-anchors"),
            ("RACK_ALIAS", "prod"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            config(&pairs).unwrap_err().variable
        };
        assert_eq!(
            with(("AUDIT_ANCHOR_INTERVAL_SECONDS", "soon")),
            "AUDIT_ANCHOR_INTERVAL_SECONDS"
        );
        assert_eq!(
            with(("AUDIT_ANCHOR_INTERVAL_SECONDS", "0")),
            "AUDIT_ANCHOR_INTERVAL_SECONDS"
        );
        assert_eq!(
            with(("AUDIT_ANCHOR_RETENTION_DAYS", "-1")),
            "AUDIT_ANCHOR_RETENTION_DAYS"
        );
        assert_eq!(
            with(("AUDIT_ANCHOR_CHAIN_ID", "a/b")),
            "AUDIT_ANCHOR_CHAIN_ID"
        );
        assert_eq!(
            with(("AWS_ENDPOINT_URL_S3", "localhost:9000")),
            "AWS_ENDPOINT_URL_S3"
        );
        assert_eq!(
            config(&[("AUDIT_ANCHOR_BUCKET", "Bad_Bucket")])
                .unwrap_err()
                .variable,
            "AUDIT_ANCHOR_BUCKET"
        );
        assert_eq!(
            config(&[("AUDIT_ANCHOR_BUCKET", "audit-anchors")])
                .unwrap_err()
                .variable,
            "AUDIT_ANCHOR_CHAIN_ID"
        );
        assert_eq!(with(("RACK_ALIAS", "a b")), "RACK_ALIAS");
    }
}

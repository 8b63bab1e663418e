//! The env merge of a release create: what the posted env means, and whether the caller may.
//!
//! The Convox CLI reads the env (masked by this layer), edits it and posts the whole of it back
//! as the `env` form field of `POST /apps/{app}/releases`. So the posted env says "keep" for
//! every value the caller could not see:
//!
//! - a posted value equal to [`MASK`], or to the stored value with its URL passwords masked
//!   (what a `convox:env:read` caller was shown), keeps the stored value;
//! - a [`MASK`] for a key that has no stored value, or a URL whose masked password comes with
//!   other edits, cannot be resolved and is refused (400) rather than stored literally;
//! - any other posted value is the new value; stored keys that were not posted are removed.
//!
//! Then every change is checked: a protected key never changes (not even its removal); a
//! secret key (the global rules plus the app's secret keys) needs `convox:env:set` and
//! `convox:secret:set` to be set, changed or removed; any other key needs `convox:env:set`.

use rack_gateway_core::redact::{mask_url_credentials, EnvError, EnvMap, SecretRules, MASK};

use super::access::{EnvAccess, ENV_SET, SECRET_SET};

/// What the merge needs besides the two envs.
#[derive(Clone, Copy, Debug)]
pub struct MergeRules<'a> {
    /// The global secret-key rules.
    pub rules: &'a SecretRules,
    /// The app's extra secret keys.
    pub app_secrets: &'a [String],
    /// The app's protected keys (case-insensitive).
    pub protected: &'a [String],
    /// What the caller may do.
    pub access: &'a EnvAccess,
}

/// Whether a key got a (new) value or was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Added, or its value changed.
    Set,
    /// Removed.
    Unset,
}

/// One changed key; values are deliberately not kept (they may be secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvChange {
    /// The key.
    pub key: String,
    /// Set or removed.
    pub kind: ChangeKind,
    /// Whether the key is secret.
    pub secret: bool,
    /// Whether the key had a value before.
    pub existed: bool,
}

impl EnvChange {
    /// The audit action: `env.set`, `env.unset`, `secret.set` or `secret.unset`.
    pub fn action(&self) -> &'static str {
        match (self.secret, self.kind) {
            (false, ChangeKind::Set) => "env.set",
            (false, ChangeKind::Unset) => "env.unset",
            (true, ChangeKind::Set) => "secret.set",
            (true, ChangeKind::Unset) => "secret.unset",
        }
    }
}

/// The env to send to the rack, and what changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergedEnv {
    /// Posted keys in posted order, masked values replaced by the stored ones.
    pub env: EnvMap,
    /// One entry per changed key: posted keys first (posted order), then removals.
    pub changes: Vec<EnvChange>,
}

/// Why a posted env was refused; `Display` is the one-line reason sent to the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeRefusal {
    /// Protected keys would change or be removed (403).
    #[error("{}", protected_message(.0))]
    Protected(Vec<String>),
    /// Secret keys would change without `convox:env:set` and `convox:secret:set` (403).
    #[error("You don't have permission to modify secrets.")]
    Secrets(Vec<String>),
    /// Keys would change without `convox:env:set` (403).
    #[error("You don't have permission to modify environment variables.")]
    Env(Vec<String>),
    /// A masked value was posted for a key without a stored value (400).
    #[error("{0}: a masked value can only keep a stored value, and {0} has none")]
    MaskWithoutValue(String),
    /// A URL with a masked password was posted with other edits (400).
    #[error(
        "{0}: a masked URL password can only be kept unchanged; send the whole value to change it"
    )]
    MaskedPassword(String),
    /// The merged env cannot be encoded (400).
    #[error("invalid env: {0}")]
    Invalid(EnvError),
}

fn protected_message(keys: &[String]) -> String {
    match keys {
        [key] => format!("Environment variable {key} is protected and cannot be changed."),
        keys => format!(
            "Environment variables {} are protected and cannot be changed.",
            keys.join(", ")
        ),
    }
}

impl MergeRefusal {
    /// 403 for a missing permission or a protected key, 400 for a posted env that cannot be
    /// resolved.
    pub fn status(&self) -> http::StatusCode {
        match self {
            MergeRefusal::Protected(_) | MergeRefusal::Secrets(_) | MergeRefusal::Env(_) => {
                http::StatusCode::FORBIDDEN
            }
            _ => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The reason for the audit record: the message, plus the keys and the missing permission.
    pub fn audit_reason(&self) -> String {
        match self {
            MergeRefusal::Secrets(keys) => {
                format!(
                    "{self} ({SECRET_SET} required to change {})",
                    keys.join(", ")
                )
            }
            MergeRefusal::Env(keys) => {
                format!("{self} ({ENV_SET} required to change {})", keys.join(", "))
            }
            _ => self.to_string(),
        }
    }
}

/// Merges `posted` over `base` (see the module docs) and checks the caller may make the changes.
pub fn merge_env(
    base: &EnvMap,
    posted: &EnvMap,
    rules: MergeRules<'_>,
) -> Result<MergedEnv, MergeRefusal> {
    let mut merged = MergedEnv::default();
    for (key, value) in posted.iter() {
        let stored = base.get(key);
        let secret = rules.rules.is_secret_key_with(key, rules.app_secrets);
        let value = if secret && !rules.access.reads_secrets() {
            resolve_unseen_secret(key, value, stored, rules.access)?
        } else {
            resolve(key, value, stored)?
        };
        merged
            .env
            .insert(key, value)
            .map_err(MergeRefusal::Invalid)?;
        if stored != Some(value) {
            merged.changes.push(EnvChange {
                key: key.to_owned(),
                kind: ChangeKind::Set,
                secret: false,
                existed: stored.is_some(),
            });
        }
    }
    for key in base.keys().filter(|key| !posted.contains_key(key)) {
        merged.changes.push(EnvChange {
            key: key.to_owned(),
            kind: ChangeKind::Unset,
            secret: false,
            existed: true,
        });
    }
    for change in &mut merged.changes {
        change.secret = rules
            .rules
            .is_secret_key_with(&change.key, rules.app_secrets);
    }
    check(&merged.changes, rules)?;
    Ok(merged)
}

/// The value to store for a secret `key` the caller cannot read.
///
/// Only the mask keeps the stored value. Without `convox:secret:set`, anything else is an
/// attempt to set the secret and is refused, even when it equals the stored value: otherwise a
/// right guess (200, nothing changed) and a wrong one (403) would tell the caller the secret.
fn resolve_unseen_secret<'a>(
    key: &str,
    posted: &'a str,
    stored: Option<&'a str>,
    access: &EnvAccess,
) -> Result<&'a str, MergeRefusal> {
    if posted == MASK {
        return stored.ok_or_else(|| MergeRefusal::MaskWithoutValue(key.to_owned()));
    }
    if access.secret_set.is_none() || access.env_set.is_none() {
        return Err(MergeRefusal::Secrets(vec![key.to_owned()]));
    }
    resolve(key, posted, stored)
}

/// The value to store for `key` given what was posted and what is stored.
fn resolve<'a>(
    key: &str,
    posted: &'a str,
    stored: Option<&'a str>,
) -> Result<&'a str, MergeRefusal> {
    if let Some(stored) = stored {
        if posted == stored || posted == MASK || posted == mask_url_credentials(stored) {
            return Ok(stored);
        }
    }
    if posted == MASK {
        return Err(MergeRefusal::MaskWithoutValue(key.to_owned()));
    }
    if posted.contains(&format!(":{MASK}@")) {
        return Err(MergeRefusal::MaskedPassword(key.to_owned()));
    }
    Ok(posted)
}

/// Refuses changes to protected keys, secret changes without both permissions, and any change
/// without `convox:env:set`.
fn check(changes: &[EnvChange], rules: MergeRules<'_>) -> Result<(), MergeRefusal> {
    let keys = |filter: &dyn Fn(&EnvChange) -> bool| -> Vec<String> {
        changes
            .iter()
            .filter(|c| filter(c))
            .map(|c| c.key.clone())
            .collect()
    };
    let protected: Vec<String> = rules
        .protected
        .iter()
        .map(|name| name.trim().to_uppercase())
        .filter(|name| !name.is_empty())
        .collect();
    let is_protected = |change: &EnvChange| protected.contains(&change.key.trim().to_uppercase());
    let blocked = keys(&is_protected);
    if !blocked.is_empty() {
        return Err(MergeRefusal::Protected(blocked));
    }
    let may_set_secrets = rules.access.secret_set.is_some() && rules.access.env_set.is_some();
    if !may_set_secrets {
        let secrets = keys(&|change: &EnvChange| change.secret);
        if !secrets.is_empty() {
            return Err(MergeRefusal::Secrets(secrets));
        }
    }
    if rules.access.env_set.is_none() && !changes.is_empty() {
        return Err(MergeRefusal::Env(keys(&|_| true)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "NODE_ENV=production\nSECRET_KEY=s3cr3t-value\nDATABASE_URL=postgres://app:pw-123@db/app\nPORT=3000";

    fn access(env_set: bool, secret_set: bool) -> EnvAccess {
        EnvAccess {
            env_read: Some("test".into()),
            env_set: env_set.then(|| "test".into()),
            secret_read: None,
            secret_set: secret_set.then(|| "test".into()),
        }
    }

    fn merge(
        posted: &str,
        access: &EnvAccess,
        protected: &[String],
    ) -> Result<MergedEnv, MergeRefusal> {
        merge_env(
            &EnvMap::parse(BASE),
            &EnvMap::parse(posted),
            MergeRules {
                rules: &SecretRules::default(),
                app_secrets: &[],
                protected,
                access,
            },
        )
    }

    fn shown() -> String {
        format!("NODE_ENV=production\nSECRET_KEY={MASK}\nDATABASE_URL=postgres://app:{MASK}@db/app\nPORT=3000")
    }

    #[test]
    fn posting_the_masked_env_back_keeps_everything() {
        let merged = merge(&shown(), &access(false, false), &[]).expect("no change");
        assert_eq!(merged.env.serialize(), BASE);
        assert!(merged.changes.is_empty());
        let all_masked =
            format!("NODE_ENV={MASK}\nSECRET_KEY={MASK}\nDATABASE_URL={MASK}\nPORT={MASK}");
        assert_eq!(
            merge(&all_masked, &access(false, false), &[])
                .expect("kept")
                .env
                .serialize(),
            BASE
        );
    }

    #[test]
    fn one_changed_value_is_one_change() {
        let posted = shown().replace("NODE_ENV=production", "NODE_ENV=staging");
        let merged = merge(&posted, &access(true, false), &[]).expect("allowed");
        assert_eq!(merged.env.get("NODE_ENV"), Some("staging"));
        assert_eq!(merged.env.get("SECRET_KEY"), Some("s3cr3t-value"));
        assert_eq!(
            merged.env.get("DATABASE_URL"),
            Some("postgres://app:pw-123@db/app")
        );
        assert_eq!(merged.changes.len(), 1);
        assert_eq!(merged.changes[0].action(), "env.set");
    }

    #[test]
    fn secrets_need_secret_set() {
        let posted = shown().replace(&format!("SECRET_KEY={MASK}"), "SECRET_KEY=new");
        let refused = merge(&posted, &access(true, false), &[]).expect_err("refused");
        assert_eq!(
            refused.to_string(),
            "You don't have permission to modify secrets."
        );
        assert_eq!(refused.status(), http::StatusCode::FORBIDDEN);
        assert!(refused.audit_reason().contains("SECRET_KEY"));
        let merged = merge(&posted, &access(true, true), &[]).expect("allowed");
        assert_eq!(merged.changes[0].action(), "secret.set");
        // Removing a secret is changing it.
        let without = shown().replace(&format!("SECRET_KEY={MASK}\n"), "");
        assert!(matches!(
            merge(&without, &access(true, false), &[]),
            Err(MergeRefusal::Secrets(_))
        ));
        let merged = merge(&without, &access(true, true), &[]).expect("allowed");
        assert_eq!(merged.changes[0].action(), "secret.unset");
        // secret:set alone is not enough.
        assert!(matches!(
            merge(&posted, &access(false, true), &[]),
            Err(MergeRefusal::Secrets(_))
        ));
    }

    #[test]
    fn a_secret_guess_is_refused_whether_right_or_wrong() {
        // The stored value and a wrong guess get the same answer from a caller who can
        // neither read nor set secrets.
        let right = shown().replace(&format!("SECRET_KEY={MASK}"), "SECRET_KEY=s3cr3t-value");
        let wrong = shown().replace(&format!("SECRET_KEY={MASK}"), "SECRET_KEY=guess");
        for posted in [&right, &wrong] {
            let refused = merge(posted, &access(true, false), &[]).expect_err("refused");
            assert_eq!(refused, MergeRefusal::Secrets(vec!["SECRET_KEY".into()]));
        }
        // The mask keeps the value; a caller who may set secrets may post the same value.
        assert!(merge(&shown(), &access(true, false), &[]).is_ok());
        let kept = merge(&right, &access(true, true), &[]).expect("allowed");
        assert!(kept.changes.is_empty());
        // A caller who reads secrets posts the values it was shown: no guessing there.
        let reader = EnvAccess {
            secret_read: Some("test".into()),
            ..access(true, false)
        };
        assert!(merge(&right, &reader, &[])
            .expect("kept")
            .changes
            .is_empty());
        assert!(matches!(
            merge(&wrong, &reader, &[]),
            Err(MergeRefusal::Secrets(_))
        ));
    }

    #[test]
    fn removals_need_env_set() {
        let without = shown().replace("PORT=3000", "");
        assert!(matches!(
            merge(&without, &access(false, false), &[]),
            Err(MergeRefusal::Env(_))
        ));
        let merged = merge(&without, &access(true, false), &[]).expect("allowed");
        assert_eq!(merged.changes.len(), 1);
        assert_eq!(merged.changes[0].action(), "env.unset");
        assert!(!merged.env.contains_key("PORT"));
    }

    #[test]
    fn protected_keys_never_change() {
        let protected = vec!["port".to_owned()];
        let changed = shown().replace("PORT=3000", "PORT=80");
        let refused = merge(&changed, &access(true, true), &protected).expect_err("refused");
        assert_eq!(
            refused.to_string(),
            "Environment variable PORT is protected and cannot be changed."
        );
        let removed = shown().replace("\nPORT=3000", "");
        assert!(matches!(
            merge(&removed, &access(true, true), &protected),
            Err(MergeRefusal::Protected(_))
        ));
        assert!(merge(&shown(), &access(true, true), &protected).is_ok());
    }

    #[test]
    fn unresolvable_masks_are_refused() {
        let new_masked = format!("{}\nNEW_TOKEN={MASK}", shown());
        let refused = merge(&new_masked, &access(true, true), &[]).expect_err("refused");
        assert_eq!(refused, MergeRefusal::MaskWithoutValue("NEW_TOKEN".into()));
        assert_eq!(refused.status(), http::StatusCode::BAD_REQUEST);
        let moved = shown().replace("@db/app", "@db2/app");
        assert_eq!(
            merge(&moved, &access(true, true), &[]).expect_err("refused"),
            MergeRefusal::MaskedPassword("DATABASE_URL".into())
        );
        let full = shown().replace(&format!("app:{MASK}@db/app"), "app:new-pw@db2/app");
        let merged = merge(&full, &access(true, false), &[]).expect("allowed");
        assert_eq!(
            merged.env.get("DATABASE_URL"),
            Some("postgres://app:new-pw@db2/app")
        );
    }
}

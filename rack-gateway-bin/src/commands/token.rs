//! `rack-gateway token create|list|revoke`.

use anyhow::{anyhow, Context as _};
use chrono::{Duration, Utc};
use rack_gateway_core::identity::{ApiTokenSecret, NewApiToken};
use rack_gateway_core::rbac::{Permission, Role};

use crate::audit::OperatorAudit;
use crate::cli::TokenCommand;
use crate::config::{AuditKeys, Env, StoreConfig};
use crate::failure::Failure;

/// Runs a token subcommand against the configured store.
pub async fn run(env: &Env, command: TokenCommand) -> Result<(), Failure> {
    let store_config = StoreConfig::from_env(env)?;
    // Changes are recorded in the audit chain: without its key, refuse before changing anything.
    let keys = match &command {
        TokenCommand::List { .. } => None,
        _ => Some(AuditKeys::from_env(env, &store_config)?),
    };
    let store = store_config.open().await?;
    let audit = OperatorAudit::new(std::sync::Arc::clone(&store), keys);
    match command {
        TokenCommand::Create {
            name,
            role,
            permission,
            owner,
            expires_in,
        } => {
            let (permissions, role) = match role {
                Some(role) => {
                    let role: Role =
                        role.parse()
                            .map_err(|e: rack_gateway_core::rbac::UnknownRole| {
                                Failure::Usage(e.to_string())
                            })?;
                    (
                        role.permissions().iter().map(|p| (*p).to_owned()).collect(),
                        Some(role.name().to_owned()),
                    )
                }
                None => {
                    for p in &permission {
                        Permission::parse(p).map_err(|e| Failure::Usage(e.to_string()))?;
                    }
                    (permission, None)
                }
            };
            let expires_at = expires_in
                .as_deref()
                .map(parse_lifetime)
                .transpose()
                .map_err(Failure::Usage)?
                .map(|lifetime| Utc::now() + lifetime);
            let owner_id = match owner {
                None => None,
                Some(email) => Some(
                    store
                        .user_by_email(&email)
                        .await?
                        .ok_or_else(|| {
                            Failure::Usage(format!(
                                "no user {email:?}: add it with `rack-gateway user add`"
                            ))
                        })?
                        .id,
                ),
            };
            let role_name = role.clone();
            let permission_count = permissions.len();
            let secret = ApiTokenSecret::generate();
            store
                .insert_token(&NewApiToken {
                    name: name.trim().to_owned(),
                    hash: secret.hash(),
                    owner_id,
                    permissions,
                    role,
                    created_by: Some("operator".to_owned()),
                    expires_at,
                })
                .await
                .with_context(|| format!("cannot create token {name:?}"))?;
            let grant =
                role_name.unwrap_or_else(|| format!("{} explicit permissions", permission_count));
            audit
                .record(
                    "token.create",
                    name.trim(),
                    &format!("token created with {grant}"),
                )
                .await?;
            println!("{}", secret.expose());
            Ok(())
        }
        TokenCommand::List { json } => {
            let tokens = store.list_tokens().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&tokens).context("encoding tokens")?
                );
                return Ok(());
            }
            println!(
                "{:<24} {:<36} {:<10} {:<28} {:<20} {:<20}",
                "NAME", "ID", "ROLE", "OWNER", "EXPIRES", "LAST USED"
            );
            for token in tokens {
                let role = token
                    .role
                    .clone()
                    .unwrap_or_else(|| format!("{} perms", token.permissions.len()));
                println!(
                    "{:<24} {:<36} {:<10} {:<28} {:<20} {:<20}",
                    token.name,
                    token.public_id,
                    role,
                    token.owner_email.as_deref().unwrap_or("-"),
                    token
                        .expires_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                    token
                        .last_used_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { name_or_id } => {
            if store.revoke_token(&name_or_id).await? {
                audit
                    .record("token.revoke", &name_or_id, "token revoked")
                    .await?;
                println!("revoked token {name_or_id}");
                Ok(())
            } else {
                Err(Failure::Failed(anyhow!(
                    "no active token named or with id {name_or_id:?}"
                )))
            }
        }
    }
}

/// Parses `30d`, `12h`, `90m`, `45s` or `2w`.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid =
        || format!("invalid --expires-in {text:?}: use a number with s, m, h, d or w, e.g. 30d");
    let unit = text.chars().last().ok_or_else(invalid)?;
    let amount: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| invalid())?;
    if amount <= 0 || amount > 100_000 {
        return Err(invalid());
    }
    match unit {
        's' => Ok(Duration::seconds(amount)),
        'm' => Ok(Duration::minutes(amount)),
        'h' => Ok(Duration::hours(amount)),
        'd' => Ok(Duration::days(amount)),
        'w' => Ok(Duration::weeks(amount)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_lifetime("30d"), Ok(Duration::days(30)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::hours(12)));
        assert_eq!(parse_lifetime("2w"), Ok(Duration::weeks(2)));
        for bad in ["", "d", "30", "-1d", "0d", "30y", "1é", "99999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}

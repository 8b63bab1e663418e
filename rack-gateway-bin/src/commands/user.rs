//! `rack-gateway user add|list|lock|unlock`.

use anyhow::{anyhow, Context as _};
use rack_gateway_core::identity::NewUser;
use rack_gateway_core::rbac::Role;

use crate::audit::OperatorAudit;
use crate::cli::UserCommand;
use crate::config::{AuditKeys, Env, StoreConfig};
use crate::failure::Failure;

/// Runs a user subcommand against the configured store.
pub async fn run(env: &Env, command: UserCommand) -> Result<(), Failure> {
    let store_config = StoreConfig::from_env(env)?;
    // Changes are recorded in the audit chain: without its key, refuse before changing anything.
    let keys = match &command {
        UserCommand::List { .. } => None,
        _ => Some(AuditKeys::from_env(env, &store_config)?),
    };
    let store = store_config.open().await?;
    let audit = OperatorAudit::new(std::sync::Arc::clone(&store), keys);
    match command {
        UserCommand::Add { email, role, name } => {
            let roles = role
                .iter()
                .map(|r| r.parse::<Role>().map_err(|e| Failure::Usage(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(role) = roles.iter().find(|r| !r.assignable_to_humans()) {
                return Err(Failure::Usage(format!(
                    "role {role} is for API tokens, not people"
                )));
            }
            if !email.contains('@') {
                return Err(Failure::Usage(format!("{email:?} is not an email address")));
            }
            let name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let user = store
                .insert_user(&NewUser {
                    email: email.clone(),
                    name,
                    roles,
                })
                .await
                .with_context(|| format!("cannot add user {email:?}"))?;
            let reason = format!("user added with roles {}", join_roles(&user.roles));
            audit.record("user.add", &user.email, &reason).await?;
            println!("added user {} ({})", user.email, join_roles(&user.roles));
            Ok(())
        }
        UserCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&users).context("encoding users")?
                );
                return Ok(());
            }
            println!(
                "{:<32} {:<24} {:<20} {:<10}",
                "EMAIL", "NAME", "ROLES", "STATUS"
            );
            for user in users {
                println!(
                    "{:<32} {:<24} {:<20} {:<10}",
                    user.email,
                    user.name,
                    join_roles(&user.roles),
                    format!("{:?}", user.status()).to_ascii_lowercase()
                );
            }
            Ok(())
        }
        UserCommand::Lock { email, reason } => {
            if store.set_user_lock(&email, Some(&reason)).await? {
                audit
                    .record("user.lock", &email, &format!("user locked: {reason}"))
                    .await?;
                println!("locked user {email}");
                Ok(())
            } else {
                Err(Failure::Failed(anyhow!("no user {email:?}")))
            }
        }
        UserCommand::Unlock { email } => {
            if store.set_user_lock(&email, None).await? {
                audit.record("user.unlock", &email, "user unlocked").await?;
                println!("unlocked user {email}");
                Ok(())
            } else {
                Err(Failure::Failed(anyhow!("no user {email:?}")))
            }
        }
    }
}

fn join_roles(roles: &[Role]) -> String {
    roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
}

//! `rack-gateway logout [--rack RACK]`: end the session on its gateway and forget it here.

use anyhow::anyhow;
use chrono::Utc;

use crate::cli::RackChoice;
use crate::client::http::GatewayHttp;
use crate::client::revoke::{revoke, RevokeError, Revoked};
use crate::client::ConfigStore;
use crate::failure::Failure;

/// Ends the chosen rack's session (the current rack's by default) and removes it from the file.
///
/// The credential is forgotten even when the gateway cannot be reached or refuses: the user
/// asked for it to leave this machine, and a live token left on disk because the network is
/// down is the larger risk. The failure is still reported (exit status 1) with the session's
/// id, which an administrator (or the user, in the web session list) can revoke.
pub async fn run(choice: RackChoice) -> Result<(), Failure> {
    let store = ConfigStore::from_env()?;
    let mut config = store.load()?;
    let (name, credential) = config.select(choice.rack.as_ref())?;
    let (name, credential) = (name.clone(), credential.clone());
    let outcome = if credential.is_expired_at(Utc::now()) {
        // The gateway has ended it already; there is nothing to ask for.
        Ok(Revoked::AlreadyGone)
    } else {
        match GatewayHttp::new(credential.url.clone()) {
            Ok(gateway) => revoke(&gateway, &credential.token).await,
            Err(error) => Err(RevokeError::from(error)),
        }
    };
    config.forget(&name);
    store.save(&config)?;
    match outcome {
        Ok(Revoked::Now) => {
            println!(
                "Logged out of {name}: the session was ended on {} and forgotten here.",
                credential.url
            );
            Ok(())
        }
        Ok(Revoked::AlreadyGone) => {
            println!("Logged out of {name}: the session had already ended; forgotten here.");
            Ok(())
        }
        Err(error) => Err(Failure::Failed(anyhow!(
            "{name} is forgotten here, but its session could not be ended on {} ({error}); it stays valid until {} unless an administrator revokes session {}",
            credential.url,
            credential.expires_at.format("%Y-%m-%d %H:%M UTC"),
            credential.session_id
        ))),
    }
}

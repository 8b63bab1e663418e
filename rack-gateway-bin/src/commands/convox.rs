//! `rack-gateway convox ARGS…`: the installed Convox CLI, pointed at a rack through its gateway.

use anyhow::anyhow;
use chrono::Utc;

use crate::cli::ConvoxArgs;
use crate::client::convox::{self, CONVOX_BIN_VAR};
use crate::client::ConfigStore;
use crate::failure::Failure;

/// Runs the Convox CLI with `RACK_URL` set to the chosen rack's gateway and stored session;
/// its exit status becomes this command's.
pub fn run(args: ConvoxArgs) -> Result<(), Failure> {
    let program = convox::locate(std::env::var_os(CONVOX_BIN_VAR), std::env::var_os("PATH"))?;
    let store = ConfigStore::from_env()?;
    let config = store.load()?;
    let (name, credential) = config.select(args.choice.rack.as_ref())?;
    if credential.is_expired_at(Utc::now()) {
        // The gateway would refuse it; say why here rather than as a bare 401 from Convox.
        return Err(Failure::Failed(anyhow!(
            "the session for {name} expired at {}: run `rack-gateway login {name} {}` again",
            credential.expires_at.format("%Y-%m-%d %H:%M UTC"),
            credential.url
        )));
    }
    let rack_url = credential.url.rack_url(&credential.token);
    match convox::run(&program, &args.args, &rack_url)? {
        0 => Ok(()),
        status => Err(Failure::PassedOn(status)),
    }
}

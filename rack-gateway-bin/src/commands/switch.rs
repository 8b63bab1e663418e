//! `rack-gateway switch RACK`: choose the rack commands use by default.

use chrono::Utc;

use crate::client::{ConfigStore, RackName};
use crate::failure::Failure;

/// Makes `rack` current; an unknown name is refused with the list of known ones.
pub fn run(rack: RackName) -> Result<(), Failure> {
    let store = ConfigStore::from_env()?;
    let mut config = store.load()?;
    config.switch_to(&rack)?;
    store.save(&config)?;
    let (_, credential) = config.select(Some(&rack))?;
    println!(
        "{rack} is the current rack ({}, signed in as {}).",
        credential.url, credential.email
    );
    if credential.is_expired_at(Utc::now()) {
        eprintln!(
            "Its session expired at {}: run `rack-gateway login {rack} {}` to sign in again.",
            credential.expires_at.format("%Y-%m-%d %H:%M UTC"),
            credential.url
        );
    }
    Ok(())
}

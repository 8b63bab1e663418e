//! `rack-gateway serve`.

use anyhow::Context as _;

use crate::config::{Env, ServeConfig};
use crate::failure::Failure;
use crate::gateway::{shutdown_signal, Gateway};
use crate::server::listen;

/// Validates the environment, then serves until SIGINT/SIGTERM.
pub async fn run(env: &Env) -> Result<(), Failure> {
    let config = ServeConfig::from_env(env)?;
    crate::logging::init(config.json_logs);
    let store = config.store.open().await.context("opening the store")?;
    let gateway = Gateway::build(&config, store).await?;
    let listener = listen::bind(config.listen)
        .with_context(|| format!("binding {} (PORT/BIND)", config.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        address = %address,
        tls = config.tls.is_some(),
        max_connections = config.max_connections,
        "rack-gateway serving"
    );
    gateway
        .serve(listener, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

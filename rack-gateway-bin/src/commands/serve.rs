//! `rack-gateway serve`.

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::{Env, ServeConfig};
use crate::failure::Failure;
use crate::gateway::{shutdown_signal, Gateway};

/// Validates the environment, then serves until SIGINT/SIGTERM.
pub async fn run(env: &Env) -> Result<(), Failure> {
    let config = ServeConfig::from_env(env)?;
    crate::logging::init(config.json_logs);
    let store = config.store.open().await.context("opening the store")?;
    let gateway = Gateway::build(&config, store).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {} (PORT/BIND)", config.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    tracing::info!(address = %address, tls = config.tls.is_some(), "rack-gateway serving");
    gateway
        .serve(listener, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

//! The identity change feed of PostgreSQL: one dedicated connection per watcher (not from the
//! pool) that `LISTEN`s on [`CHANNEL`], reconnecting with backoff when it breaks.
//!
//! Triggers on `users` and `api_tokens` (see `identity.rs`), on `sessions` (see `sessions.rs`)
//! and on `settings` notify the channel, so every instance hears of a change a few milliseconds after it commits on a local
//! network.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{tls, PostgresStore};
use crate::store::{IdentityEvent, IdentityWatch, StoreError};

/// The notification channel of the identity feed.
pub(crate) const CHANNEL: &str = "rgw_identity";

/// How often a watcher checks that its idle LISTEN connection still answers.
const HEALTH_INTERVAL: Duration = Duration::from_secs(15);
/// How long that check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait between reconnection attempts of a watcher.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Events buffered per watcher.
const FEED_CAPACITY: usize = 64;

impl PostgresStore {
    /// Starts a watcher: a LISTEN connection of its own, driven by a task until the store or
    /// the receiver goes away.
    pub(super) async fn watch_changes(&self) -> Result<IdentityWatch, StoreError> {
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let (client, driver) = listen(&self.config, &self.tls, &tx).await?;
        tokio::spawn(run_watcher(
            self.config.clone(),
            self.tls.clone(),
            client,
            driver,
            tx,
            self.shutdown.subscribe(),
        ));
        Ok(rx)
    }
}

/// Drives a LISTEN connection, turning notifications into [`IdentityEvent::Changed`]; ends when
/// the connection does.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Opens a dedicated connection (not from the pool) and subscribes it to [`CHANNEL`].
async fn listen(
    config: &Config,
    tls: &MakeRustlsConnect,
    tx: &mpsc::Sender<IdentityEvent>,
) -> Result<(tokio_postgres::Client, Driver), StoreError> {
    let (client, mut connection) = config.connect(tls.clone()).await.map_err(|e| {
        StoreError::Unavailable(format!("identity feed: {}", tls::describe_error(&e)))
    })?;
    let events = tx.clone();
    let mut driver: Driver = Box::pin(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    // A full queue already holds an event that will flush caches after this
                    // change committed, so dropping this one loses nothing.
                    let _ = events.try_send(IdentityEvent::Changed);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::warn!(%error, "identity feed connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    // The connection must be driven while LISTEN runs.
    let subscribe = format!("LISTEN {CHANNEL}");
    tokio::select! {
        result = client.batch_execute(&subscribe) => {
            result.map_err(|e| StoreError::Unavailable(format!("identity feed: {e}")))?;
        }
        () = driver.as_mut() => {
            return Err(StoreError::Unavailable("identity feed: connection closed".into()));
        }
    }
    Ok((client, driver))
}

/// How a LISTEN session ended.
enum Ended {
    /// The store or the receiver is gone: stop watching.
    Stop,
    /// The connection broke: reconnect.
    Lost,
}

/// Watches until the store or the receiver goes away, reconnecting with backoff.
async fn run_watcher(
    config: Config,
    tls: MakeRustlsConnect,
    mut client: tokio_postgres::Client,
    mut driver: Driver,
    tx: mpsc::Sender<IdentityEvent>,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        if let Ended::Stop = hold(&client, &mut driver, &tx, &mut shutdown).await {
            return;
        }
        if tx.send(IdentityEvent::Disconnected).await.is_err() {
            return;
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
                () = tx.closed() => return,
            }
            let attempt = tokio::select! {
                attempt = listen(&config, &tls, &tx) => attempt,
                _ = shutdown.changed() => return,
            };
            match attempt {
                Ok((new_client, new_driver)) => {
                    client = new_client;
                    driver = new_driver;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "identity feed reconnection failed");
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        tracing::info!("identity feed resumed");
        if tx.send(IdentityEvent::Resumed).await.is_err() {
            return;
        }
    }
}

/// Keeps one LISTEN session alive, checking now and then that the server still answers.
async fn hold(
    client: &tokio_postgres::Client,
    driver: &mut Driver,
    tx: &mpsc::Sender<IdentityEvent>,
    shutdown: &mut watch::Receiver<()>,
) -> Ended {
    loop {
        tokio::select! {
            () = driver.as_mut() => return Ended::Lost,
            _ = shutdown.changed() => return Ended::Stop,
            () = tx.closed() => return Ended::Stop,
            () = tokio::time::sleep(HEALTH_INTERVAL) => {
                let check = tokio::time::timeout(HEALTH_TIMEOUT, client.simple_query("SELECT 1"));
                tokio::select! {
                    answer = check => {
                        if !matches!(answer, Ok(Ok(_))) {
                            tracing::warn!("identity feed connection stopped answering");
                            return Ended::Lost;
                        }
                    }
                    () = driver.as_mut() => return Ended::Lost,
                }
            }
        }
    }
}

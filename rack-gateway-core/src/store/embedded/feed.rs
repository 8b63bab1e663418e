//! The identity change feed of SQLite: each watcher polls the `identity_generation` counter,
//! which triggers bump on every identity or settings change, every [`POLL_INTERVAL`], over a
//! connection of its own.
//!
//! Polling works across processes sharing the file (the dev gateway and `rack-gateway token
//! revoke`), which an in-process notification would not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, watch};

use super::{db, join_error, lock, open_connection, EmbeddedStore, Shared};
use crate::store::{IdentityEvent, IdentityWatch, StoreError};

/// How often a watcher looks at the identity change counter.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Events buffered per watcher.
const FEED_CAPACITY: usize = 64;

impl EmbeddedStore {
    /// Starts a watcher: a connection of its own, polled by a task until the store or the
    /// receiver goes away.
    pub(super) async fn watch_changes(&self) -> Result<IdentityWatch, StoreError> {
        let path = self.path.clone();
        // A connection of its own, so polling never waits behind the store's calls; the
        // starting value is read before returning, so no later change can be missed.
        let (conn, seen) = tokio::task::spawn_blocking(move || {
            let conn = open_connection(&path)?;
            let seen = read_generation(&conn)?;
            Ok::<_, StoreError>((conn, seen))
        })
        .await
        .map_err(join_error)??;
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        tokio::spawn(poll_generation(
            Arc::new(Mutex::new(conn)),
            seen,
            tx,
            self.shutdown.subscribe(),
        ));
        Ok(rx)
    }
}

fn read_generation(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT value FROM identity_generation WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .map_err(db)
}

/// Sends [`IdentityEvent::Changed`] whenever the counter moves, until the store or the receiver
/// goes away; a failing read is reported as [`IdentityEvent::Disconnected`] until one succeeds.
async fn poll_generation(
    conn: Shared,
    mut seen: i64,
    tx: mpsc::Sender<IdentityEvent>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connected = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
            () = tx.closed() => return,
        }
        let conn = Arc::clone(&conn);
        let read = tokio::task::spawn_blocking(move || read_generation(&lock(&conn)))
            .await
            .map_err(join_error)
            .and_then(|read| read);
        let event = match read {
            Ok(generation) if !connected => {
                connected = true;
                seen = generation;
                tracing::info!("identity feed resumed");
                IdentityEvent::Resumed
            }
            Ok(generation) if generation != seen => {
                seen = generation;
                // A full queue already holds an event that flushes caches after this change.
                let _ = tx.try_send(IdentityEvent::Changed);
                continue;
            }
            Ok(_) => continue,
            Err(error) if connected => {
                connected = false;
                tracing::warn!(%error, "identity feed cannot read the change counter");
                IdentityEvent::Disconnected
            }
            Err(_) => continue,
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

//! What a finished websocket relay moved, reported by the forwarder to whoever records it (the
//! audit layer), through a one-shot channel carried in the request extensions.
//!
//! ```
//! use rack_gateway_layers::relay::RelayStatsSender;
//!
//! let (sender, receiver) = RelayStatsSender::channel();
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(sender);
//! # drop(receiver);
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// What a finished websocket relay moved, for the audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayStats {
    /// Bytes read from the client and written towards the rack (websocket frames, raw).
    pub client_to_rack: u64,
    /// Bytes read from the rack and written towards the client.
    pub rack_to_client: u64,
    /// From the upstream `101` until the relay ended.
    pub duration: Duration,
    /// The gateway closed the session (shutdown), not one of the two sides.
    pub closed_by_gateway: bool,
}

/// Optional request extension: where to report [`RelayStats`] when a websocket relay ends.
///
/// Sent at most once. If the upgrade is refused or fails before the relay starts, the sender is
/// dropped (the receiver sees an error) or zero counts are sent.
#[derive(Clone, Debug)]
pub struct RelayStatsSender(Arc<Mutex<Option<oneshot::Sender<RelayStats>>>>);

impl RelayStatsSender {
    /// Wraps a oneshot sender so it can live in request extensions (which need `Clone`).
    pub fn new(sender: oneshot::Sender<RelayStats>) -> Self {
        Self(Arc::new(Mutex::new(Some(sender))))
    }

    /// A sender to put in the request and the receiver to await.
    pub fn channel() -> (Self, oneshot::Receiver<RelayStats>) {
        let (sender, receiver) = oneshot::channel();
        (Self::new(sender), receiver)
    }

    /// Reports the statistics (at most once; later calls do nothing).
    pub fn send(&self, stats: RelayStats) {
        let sender = match self.0.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(sender) = sender {
            let _ = sender.send(stats);
        }
    }
}

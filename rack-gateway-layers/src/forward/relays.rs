//! The open websocket relays of one [`RackForward`](super::RackForward), so that shutdown can
//! close them cleanly instead of cutting them off.
//!
//! A relay is a detached task (it outlives the request that started it), so nothing else knows
//! it exists. Each relay registers here while it runs; [`RelayTracker::close_all`] asks every
//! relay to finish the frame in flight, send both sides a close frame ("going away") and report
//! its statistics (so its audit record is written), and waits until they have all ended.

use std::time::Duration;

use tokio::sync::watch;

/// The open relays of a forwarder. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RelayTracker {
    closing: watch::Sender<bool>,
    open: watch::Sender<usize>,
}

impl Default for RelayTracker {
    fn default() -> Self {
        RelayTracker {
            closing: watch::Sender::new(false),
            open: watch::Sender::new(0),
        }
    }
}

impl RelayTracker {
    /// How many relays are open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Asks every open (and every later) relay to close, and waits up to `limit` for all of them
    /// to end; returns how many were still open then.
    pub async fn close_all(&self, limit: Duration) -> usize {
        self.closing.send_replace(true);
        let mut open = self.open.subscribe();
        let ended = tokio::time::timeout(limit, open.wait_for(|count| *count == 0)).await;
        match ended {
            Ok(_) => 0,
            Err(_) => self.open(),
        }
    }

    /// Registers a relay for as long as the returned guard lives.
    pub(crate) fn register(&self) -> RelayGuard {
        self.open.send_modify(|count| *count += 1);
        RelayGuard {
            tracker: self.clone(),
        }
    }

    /// Resolves once shutdown asks relays to close (at once if it already has).
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// Keeps a relay counted as open until dropped.
#[derive(Debug)]
pub(crate) struct RelayGuard {
    tracker: RelayTracker,
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.tracker
            .open
            .send_modify(|count| *count = count.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_all_waits_for_registered_relays() {
        let tracker = RelayTracker::default();
        let guard = tracker.register();
        assert_eq!(tracker.open(), 1);
        let mut closing = tracker.closing();
        let relay = tokio::spawn(async move {
            let _ = closing.wait_for(|closing| *closing).await;
            drop(guard);
        });
        assert_eq!(tracker.close_all(Duration::from_secs(5)).await, 0);
        assert!(relay.await.is_ok());
        // A relay that ignores the request is reported, not waited for forever.
        let _stuck = tracker.register();
        assert_eq!(tracker.close_all(Duration::from_millis(50)).await, 1);
    }
}

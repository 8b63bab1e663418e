//! The cap on open connections, and which connection gives way when it is reached.
//!
//! A connection is *silent* from accept until its first request has been read, *busy* while a
//! request is in flight (until its response body is done), *idle* between requests, and
//! *pinned* once upgraded to a websocket. When the cap is reached (or the process runs out of
//! file descriptors), the connection that has been silent or idle the longest is told to close:
//! holding either costs its sender nothing, and a real client sends its request within
//! milliseconds of connecting, so it is never the oldest for long. (Silent connections are not
//! simply taken first: a real client's connection is silent for a moment too, and should not
//! give way to a flood of connections that each sent one request and then went idle.) Busy and
//! pinned connections are never picked; when every connection is one of those, accepting waits
//! until one closes or goes idle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

const SILENT: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;
const PINNED: u8 = 3;
const SHED: u8 = 4;

/// Counts open connections against a cap and picks which one gives way.
#[derive(Clone, Debug)]
pub(crate) struct Admission {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    state: Mutex<State>,
    /// Signalled whenever a connection closes or becomes idle.
    changed: Notify,
    /// How many connections were told to give way, ever.
    shed_total: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Permits and tickets alive: reserved or open connections.
    open: usize,
    /// Orders the queue: when each connection was accepted or last went idle.
    next_key: u64,
    /// Silent and idle connections, longest waiting first.
    waiting: BTreeMap<u64, Arc<Claim>>,
    /// Connections told to give way that have not closed yet.
    shedding: usize,
}

/// One connection's standing. Every change happens under the [`State`] lock; the atomics let
/// the connection read its own standing without taking it.
#[derive(Debug)]
struct Claim {
    state: AtomicU8,
    /// Its key in the queue of silent and idle connections.
    key: AtomicU64,
    in_flight: AtomicUsize,
    shed: Notify,
}

impl Admission {
    /// At most `limit` connections open at once (at least one).
    pub(crate) fn new(limit: usize) -> Self {
        Admission {
            shared: Arc::new(Shared {
                limit: limit.max(1),
                state: Mutex::new(State::default()),
                changed: Notify::new(),
                shed_total: AtomicU64::new(0),
            }),
        }
    }

    /// Room for one more connection if there is some now, without making any.
    pub(crate) fn try_reserve(&self) -> Option<Permit> {
        let mut state = self.shared.lock();
        self.take_room(&mut state)
    }

    /// Waits for room for one more connection, telling a silent or idle connection to close
    /// when the cap is reached; when none is either, waits for one to close or go idle.
    pub(crate) async fn reserve(&self) -> Permit {
        loop {
            // Created before looking, so a change in between is not missed.
            let changed = self.shared.changed.notified();
            {
                // One look under one lock: a close in between cannot cause a needless shed.
                let mut state = self.shared.lock();
                if let Some(permit) = self.take_room(&mut state) {
                    return permit;
                }
                self.shared.make_room(&mut state);
            }
            changed.await;
        }
    }

    fn take_room(&self, state: &mut State) -> Option<Permit> {
        if state.open >= self.shared.limit {
            return None;
        }
        state.open += 1;
        Some(Permit {
            shared: Arc::clone(&self.shared),
            admitted: false,
        })
    }

    /// Tells the connection silent or idle the longest to close, unless one is closing
    /// already; false when every open connection is busy or pinned.
    pub(crate) fn make_room(&self) -> bool {
        let mut state = self.shared.lock();
        self.shared.make_room(&mut state)
    }

    /// Resolves when a connection closes or goes idle (at once if one did since the last call).
    pub(crate) async fn changed(&self) {
        self.shared.changed.notified().await;
    }

    /// How many connections were told to give way since start-up.
    pub(crate) fn shed_total(&self) -> u64 {
        self.shared.shed_total.load(Ordering::Relaxed)
    }

    /// Connections open now (including a reserved one not accepted yet).
    pub(crate) fn open(&self) -> usize {
        self.shared.lock().open
    }

    /// The cap.
    pub(crate) fn limit(&self) -> usize {
        self.shared.limit
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is a single step, so a panicking holder cannot leave
        // the state half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn make_room(&self, state: &mut State) -> bool {
        if state.shedding > 0 {
            return true;
        }
        let Some((_, claim)) = state.waiting.pop_first() else {
            return false;
        };
        claim.state.store(SHED, Ordering::Release);
        state.shedding += 1;
        self.shed_total.fetch_add(1, Ordering::Relaxed);
        claim.shed.notify_one();
        true
    }
}

impl State {
    /// Takes `claim` out of the queue, if it is in it.
    fn dequeue(&mut self, claim: &Claim) {
        if matches!(claim.state.load(Ordering::Acquire), SILENT | IDLE) {
            self.waiting.remove(&claim.key.load(Ordering::Relaxed));
        }
    }

    /// Puts `claim`, now silent or idle, at the back of the queue.
    fn enqueue(&mut self, claim: &Arc<Claim>, standing: u8) {
        let key = self.next_key;
        self.next_key += 1;
        claim.key.store(key, Ordering::Relaxed);
        claim.state.store(standing, Ordering::Release);
        self.waiting.insert(key, Arc::clone(claim));
    }
}

/// Room for one connection, reserved before accepting it; given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    shared: Arc<Shared>,
    /// The room went to a [`Ticket`], which gives it back instead.
    admitted: bool,
}

impl Permit {
    /// The accepted connection takes the room, as the newest silent connection.
    pub(crate) fn admit(mut self) -> Ticket {
        self.admitted = true;
        let claim = Arc::new(Claim {
            state: AtomicU8::new(SILENT),
            key: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            shed: Notify::new(),
        });
        self.shared.lock().enqueue(&claim, SILENT);
        Ticket {
            shared: Arc::clone(&self.shared),
            claim,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.admitted {
            self.shared.lock().open -= 1;
            self.shared.changed.notify_one();
        }
    }
}

/// One open connection's place under the cap; given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    shared: Arc<Shared>,
    claim: Arc<Claim>,
}

impl Ticket {
    /// A request was read: the connection is busy until [`Ticket::request_finished`].
    /// False when it was told to give way first.
    pub(crate) fn request_started(&self) -> bool {
        let mut state = self.shared.lock();
        let standing = self.claim.state.load(Ordering::Acquire);
        if standing == SHED {
            return false;
        }
        let in_flight = self.claim.in_flight.load(Ordering::Relaxed);
        self.claim.in_flight.store(in_flight + 1, Ordering::Relaxed);
        if matches!(standing, SILENT | IDLE) {
            state.dequeue(&self.claim);
            self.claim.state.store(BUSY, Ordering::Release);
        }
        true
    }

    /// A response was sent in full (or abandoned); with none left in flight the connection is
    /// idle and may give way.
    pub(crate) fn request_finished(&self) {
        let went_idle = {
            let mut state = self.shared.lock();
            let left = self
                .claim
                .in_flight
                .load(Ordering::Relaxed)
                .saturating_sub(1);
            self.claim.in_flight.store(left, Ordering::Relaxed);
            let idle = left == 0 && self.claim.state.load(Ordering::Acquire) == BUSY;
            if idle {
                state.enqueue(&self.claim, IDLE);
            }
            idle
        };
        if went_idle {
            self.shared.changed.notify_one();
        }
    }

    /// The connection was handed to a websocket: it never gives way.
    pub(crate) fn pin(&self) {
        let mut state = self.shared.lock();
        if self.claim.state.load(Ordering::Acquire) != SHED {
            state.dequeue(&self.claim);
            self.claim.state.store(PINNED, Ordering::Release);
        }
    }

    /// Whether no request has been read on the connection yet.
    pub(crate) fn is_silent(&self) -> bool {
        self.claim.state.load(Ordering::Acquire) == SILENT
    }

    /// Resolves when the connection is told to give way.
    pub(crate) async fn shed(&self) {
        self.claim.shed.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.open -= 1;
            if self.claim.state.load(Ordering::Acquire) == SHED {
                state.shedding -= 1;
            } else {
                state.dequeue(&self.claim);
            }
        }
        self.shared.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn reserve_now(admission: &Admission) -> Option<Permit> {
        tokio::time::timeout(Duration::from_millis(50), admission.reserve())
            .await
            .ok()
    }

    async fn admit(admission: &Admission) -> Ticket {
        reserve_now(admission).await.expect("room").admit()
    }

    async fn was_shed(ticket: &Ticket) -> bool {
        tokio::time::timeout(Duration::from_millis(50), ticket.shed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn below_the_cap_room_is_immediate_and_given_back_on_drop() {
        let admission = Admission::new(2);
        let first = admit(&admission).await;
        let second = reserve_now(&admission).await.expect("room");
        assert_eq!(admission.open(), 2);
        assert!(admission.try_reserve().is_none());
        drop(second);
        assert_eq!(admission.open(), 1);
        drop(first);
        assert_eq!(admission.open(), 0);
        assert_eq!(admission.shed_total(), 0);
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_silent_connection_gives_way() {
        let admission = Admission::new(3);
        let oldest = admit(&admission).await;
        let busy = admit(&admission).await;
        let newer = admit(&admission).await;
        assert!(busy.request_started());

        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.reserve().await }
        });
        assert!(was_shed(&oldest).await);
        assert!(!was_shed(&newer).await, "one at a time");
        assert!(!oldest.request_started(), "too late once told to go");
        assert!(
            !waiting.is_finished(),
            "room only once the shed one is closed"
        );

        drop(oldest);
        let permit = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("room after the close")
            .expect("task");
        assert_eq!(admission.open(), 3);
        assert_eq!(admission.shed_total(), 1);
        drop(permit);
        assert!(!was_shed(&busy).await);
    }

    #[tokio::test]
    async fn the_longest_silent_or_idle_goes_first_and_a_busy_one_never() {
        let admission = Admission::new(10);
        let silent = admit(&admission).await;
        let served = admit(&admission).await;
        let busy = admit(&admission).await;
        assert!(busy.request_started());
        assert!(served.request_started());
        served.request_finished();

        assert!(admission.make_room());
        assert!(
            was_shed(&silent).await,
            "silent since before the other went idle"
        );
        drop(silent);
        assert!(admission.make_room());
        assert!(was_shed(&served).await);
        drop(served);
        assert!(!admission.make_room(), "only a busy one is left");
        assert!(!was_shed(&busy).await);
    }

    #[tokio::test]
    async fn a_connection_idle_the_longest_goes_before_a_newer_silent_one() {
        let admission = Admission::new(10);
        let idle = admit(&admission).await;
        assert!(idle.request_started());
        idle.request_finished();
        let newcomer = admit(&admission).await;
        assert!(admission.make_room());
        assert!(was_shed(&idle).await);
        assert!(!was_shed(&newcomer).await);
    }

    #[tokio::test]
    async fn a_connection_is_busy_until_its_last_response_is_done() {
        let admission = Admission::new(10);
        let ticket = admit(&admission).await;
        assert!(ticket.is_silent());
        assert!(ticket.request_started());
        assert!(ticket.request_started(), "HTTP/2 runs several at once");
        assert!(!ticket.is_silent());
        ticket.request_finished();
        assert!(!admission.make_room(), "one still in flight");
        ticket.request_finished();
        assert!(admission.make_room());
        assert!(was_shed(&ticket).await);
    }

    #[tokio::test]
    async fn a_pinned_connection_never_gives_way() {
        let admission = Admission::new(10);
        let ticket = admit(&admission).await;
        assert!(ticket.request_started());
        ticket.pin();
        ticket.request_finished();
        assert!(!admission.make_room());
        assert!(!was_shed(&ticket).await);
    }

    #[tokio::test]
    async fn going_idle_wakes_a_waiting_reserve() {
        let admission = Admission::new(1);
        let only = admit(&admission).await;
        assert!(only.request_started());
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.reserve().await }
        });
        assert!(!was_shed(&only).await, "busy");
        only.request_finished();
        assert!(was_shed(&only).await, "idle now, and someone is waiting");
        drop(only);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("room after the close")
            .expect("task");
    }

    #[tokio::test]
    async fn making_room_sheds_one_at_a_time_in_accept_order() {
        let admission = Admission::new(10);
        let first = admit(&admission).await;
        let second = admit(&admission).await;
        assert!(admission.make_room());
        assert!(admission.make_room(), "still closing: no second victim");
        assert!(was_shed(&first).await);
        assert!(!was_shed(&second).await);
        drop(first);
        admission.changed().await;
        assert!(admission.make_room());
        assert!(was_shed(&second).await);
        drop(second);
        assert!(!admission.make_room(), "nothing left");
        assert_eq!(admission.shed_total(), 2);
        assert_eq!(admission.open(), 0);
    }
}

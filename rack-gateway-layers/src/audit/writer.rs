//! The audit writer: one task per process that commits records in batches (group commit).
//!
//! Requests hand their events over a bounded channel. The task takes everything that is
//! waiting (up to a batch), appends it in one transaction, then acknowledges the waiters, so
//! batches grow by themselves under load and stay small (fast) when idle. When an append fails,
//! records that someone waits on (intents) fail at once — their requests are refused — and the
//! others are kept and retried with backoff, never dropped. A full queue makes new requests wait
//! for room, and after a bound they get 503.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rack_gateway_core::audit::{AuditEvent, AuditSink, ChainKey};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Tuning of the writer.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Records that may wait in the queue.
    pub queue_capacity: usize,
    /// Records per transaction at most.
    pub max_batch: usize,
    /// How long a request waits for room in a full queue before it gets 503.
    pub enqueue_timeout: Duration,
    /// How long a mutating request waits for its intent record to be durable.
    pub durable_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 16_384,
            max_batch: 500,
            enqueue_timeout: Duration::from_secs(2),
            durable_timeout: Duration::from_secs(5),
        }
    }
}

/// The audit trail could not take a record; the request must not go ahead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log unavailable: {0}")]
pub struct AuditUnavailable(pub String);

type Ack = oneshot::Sender<Result<u64, AuditUnavailable>>;

/// Records that go into the chain together (one append), with whoever waits for them.
struct Job {
    events: Vec<AuditEvent>,
    ack: Option<Ack>,
}

impl Job {
    /// Someone waited for these records to be durable and gave up: the request they were for
    /// will not go ahead (an intent is not forwarded, a response is withheld), so they are not
    /// written. Records nobody waits for are always written.
    fn abandoned(&self) -> bool {
        self.ack.as_ref().is_some_and(|ack| ack.is_closed())
    }
}

#[derive(Debug, Default)]
struct HealthState {
    failing: AtomicBool,
    appended: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of the writer's state, for readiness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterHealth {
    /// The last append succeeded (or none was tried yet).
    pub healthy: bool,
    /// Records appended since start.
    pub appended: u64,
    /// Records waiting in the queue.
    pub queued: usize,
    /// The last append error, if the writer is failing.
    pub last_error: Option<String>,
}

/// Hands records to the writer task. Cheap to clone; the task ends (after draining the queue)
/// when every clone is dropped.
#[derive(Clone)]
pub struct AuditWriter {
    sender: mpsc::Sender<Job>,
    config: WriterConfig,
    health: Arc<HealthState>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A reserved place in the queue: sending through it cannot fail or wait.
pub(crate) struct AuditSlot(mpsc::OwnedPermit<Job>);

impl AuditSlot {
    /// Queues the records (not waiting for durability).
    pub(crate) fn send(self, events: Vec<AuditEvent>) {
        self.0.send(Job { events, ack: None });
    }
}

/// The running writer task.
#[derive(Debug)]
pub struct WriterTask(JoinHandle<()>);

impl WriterTask {
    /// Waits until the queue is drained and the task has ended (after every writer is dropped).
    pub async fn finished(self) {
        let _ = self.0.await;
    }
}

impl AuditWriter {
    /// Starts the writer task, signing with `key`.
    pub fn spawn(
        store: Arc<dyn AuditSink>,
        key: ChainKey,
        config: WriterConfig,
    ) -> (Self, WriterTask) {
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let health = Arc::new(HealthState::default());
        let task = tokio::spawn(run(store, key, receiver, config, Arc::clone(&health)));
        (
            AuditWriter {
                sender,
                config,
                health,
            },
            WriterTask(task),
        )
    }

    /// Whether the queue has room right now (no waiting, nothing held).
    pub(crate) fn has_room(&self) -> bool {
        self.sender.capacity() > 0
    }

    /// Waits (up to the enqueue timeout) until the queue has room, without holding it: a
    /// request is admitted only while the trail keeps up, and its record takes a place only
    /// when it is written, so long-lived requests (websockets) hold no place meanwhile.
    pub(crate) async fn wait_for_room(&self) -> Result<(), AuditUnavailable> {
        self.reserve().await.map(drop)
    }

    /// Queues `events` without waiting for room: at once when there is room, else from a task
    /// that waits as long as it takes. Never dropped (unless the writer has stopped, which is
    /// logged); for records of requests that already happened.
    pub(crate) fn record_detached(&self, events: Vec<AuditEvent>) {
        if events.is_empty() {
            return;
        }
        if let Some(slot) = self.try_reserve() {
            slot.send(events);
            return;
        }
        let sender = self.sender.clone();
        tokio::spawn(async move {
            match sender.reserve_owned().await {
                Ok(permit) => AuditSlot(permit).send(events),
                Err(_) => tracing::error!(
                    records = events.len(),
                    "audit records lost: the audit writer has stopped"
                ),
            }
        });
    }

    /// Reserves room in the queue, waiting up to the enqueue timeout.
    pub(crate) async fn reserve(&self) -> Result<AuditSlot, AuditUnavailable> {
        match tokio::time::timeout(
            self.config.enqueue_timeout,
            self.sender.clone().reserve_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(AuditSlot(permit)),
            Ok(Err(_)) => Err(AuditUnavailable("the audit writer has stopped".into())),
            Err(_) => Err(AuditUnavailable("the audit queue is full".into())),
        }
    }

    /// Queues a record without waiting for it to be durable (it is never dropped); fails when
    /// the queue stays full for the enqueue timeout.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        self.reserve().await?.send(vec![event]);
        Ok(())
    }

    /// Queues a record and waits until it is durable; returns its seq.
    pub async fn record_durable(&self, event: AuditEvent) -> Result<u64, AuditUnavailable> {
        self.record_durable_batch(vec![event]).await
    }

    /// Queues records to be appended together (contiguous in the chain, in one transaction)
    /// and waits until they are durable; returns the seq of the first. Once this call has
    /// given up (timeout, or its future dropped) the records are not written any more, since
    /// what they announce will not happen.
    pub async fn record_durable_batch(
        &self,
        events: Vec<AuditEvent>,
    ) -> Result<u64, AuditUnavailable> {
        if events.is_empty() {
            return Err(AuditUnavailable("nothing to record".into()));
        }
        let slot = self.reserve().await?;
        let (ack, done) = oneshot::channel();
        slot.0.send(Job {
            events,
            ack: Some(ack),
        });
        match tokio::time::timeout(self.config.durable_timeout, done).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(AuditUnavailable("the audit writer has stopped".into())),
            // Dropping `done` tells the writer not to write the records any more.
            Err(_) => Err(AuditUnavailable(
                "the audit store did not confirm in time".into(),
            )),
        }
    }

    /// The writer's state now.
    pub fn health(&self) -> WriterHealth {
        let failing = self.health.failing.load(Ordering::SeqCst);
        WriterHealth {
            healthy: !failing,
            appended: self.health.appended.load(Ordering::Relaxed),
            queued: self.sender.max_capacity() - self.sender.capacity(),
            last_error: if failing {
                self.health
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            } else {
                None
            },
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn run(
    store: Arc<dyn AuditSink>,
    key: ChainKey,
    mut receiver: mpsc::Receiver<Job>,
    config: WriterConfig,
    health: Arc<HealthState>,
) {
    let mut pending: Vec<Job> = Vec::with_capacity(config.max_batch);
    let mut backoff = FIRST_BACKOFF;
    let mut closed = false;
    loop {
        if pending.is_empty() {
            if closed {
                break;
            }
            match receiver.recv().await {
                Some(job) => pending.push(job),
                None => break,
            }
        }
        while events_in(&pending) < config.max_batch {
            match receiver.try_recv() {
                Ok(job) => pending.push(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        // A requester that gave up will not be forwarded: do not record an intent for it.
        pending.retain(|job| !job.abandoned());
        if pending.is_empty() {
            continue;
        }
        // After an outage `pending` can hold more than a batch: commit it a batch at a time,
        // never splitting a job (its records belong together).
        let mut jobs = 0;
        let mut count = 0;
        for job in &pending {
            if jobs > 0 && count + job.events.len() > config.max_batch {
                break;
            }
            jobs += 1;
            count += job.events.len();
        }
        let events: Vec<AuditEvent> = pending[..jobs]
            .iter()
            .flat_map(|job| job.events.iter().cloned())
            .collect();
        match store.append_audit(&key, events).await {
            Ok(records) => {
                health
                    .appended
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                health.failing.store(false, Ordering::SeqCst);
                let mut seqs = records.iter().map(|record| record.seq);
                for job in pending.drain(..jobs) {
                    let first = seqs.next();
                    for _ in 1..job.events.len() {
                        seqs.next();
                    }
                    if let (Some(ack), Some(seq)) = (job.ack, first) {
                        let _ = ack.send(Ok(seq));
                    }
                }
                backoff = FIRST_BACKOFF;
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(error = %message, records = pending.len(), "audit append failed; will retry");
                *health
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
                health.failing.store(true, Ordering::SeqCst);
                fail_waiters(&mut pending, &message);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Meanwhile refuse new intents at once, and keep the other records (bounded).
                while pending.len() < config.queue_capacity {
                    match receiver.try_recv() {
                        Ok(job) => pending.push(job),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                fail_waiters(&mut pending, &message);
            }
        }
    }
}

fn events_in(jobs: &[Job]) -> usize {
    jobs.iter().map(|job| job.events.len()).sum()
}

/// Answers every waiting job with the failure and removes it; keeps the others.
fn fail_waiters(pending: &mut Vec<Job>, message: &str) {
    pending.retain_mut(|job| match job.ack.take() {
        Some(ack) => {
            let _ = ack.send(Err(AuditUnavailable(message.to_owned())));
            false
        }
        None => true,
    });
}

impl AuditWriter {
    /// Room in the queue if there is some right now (no waiting, no allocation).
    pub(crate) fn try_reserve(&self) -> Option<AuditSlot> {
        self.sender.clone().try_reserve_owned().ok().map(AuditSlot)
    }
}

//! One bound on the bytes the redaction layer holds in memory, across all requests.
//!
//! Masking needs a whole response in memory (it is parsed, masked and re-encoded), and so do a
//! release-create form and the current env read from the rack. Each is capped per request, but
//! a per-request cap alone lets many concurrent large listings take the process's memory. Every
//! such buffer takes its size from this budget as it grows, and gives it back only when the
//! bytes are gone (for a masked response: once it has been sent). When the budget is spent, a
//! request waits a little for room, then gets 503.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget of bytes buffered for redaction (64 MiB by default).
pub const DEFAULT_BUFFER_BUDGET: usize = 64 * 1024 * 1024;
/// How long a request waits for room in the budget before it gets 503 (5 s by default).
pub const DEFAULT_BUFFER_WAIT: Duration = Duration::from_secs(5);

/// Bytes that buffers may hold at once, shared by every request of one layer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BufferBudget {
    semaphore: Arc<Semaphore>,
    total: usize,
    wait: Duration,
}

impl Default for BufferBudget {
    fn default() -> Self {
        BufferBudget::new(DEFAULT_BUFFER_BUDGET, DEFAULT_BUFFER_WAIT)
    }
}

impl BufferBudget {
    /// At most `bytes` buffered at once; a request waits up to `wait` for room.
    pub fn new(bytes: usize, wait: Duration) -> Self {
        let bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        BufferBudget {
            semaphore: Arc::new(Semaphore::new(bytes)),
            total: bytes,
            wait,
        }
    }

    /// The whole budget in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How long a request waits for room.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Bytes free right now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// An empty claim, to grow with [`Claim::grow`].
    pub(crate) fn claim(&self) -> Claim {
        Claim {
            budget: self.clone(),
            deadline: tokio::time::Instant::now() + self.wait,
            held: None,
        }
    }
}

/// Bytes taken from a [`BufferBudget`] by one buffer; given back when dropped.
#[derive(Debug)]
pub(crate) struct Claim {
    budget: BufferBudget,
    deadline: tokio::time::Instant,
    held: Option<OwnedSemaphorePermit>,
}

/// The budget stayed spent for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BudgetSpent;

impl Claim {
    /// Takes `bytes` more, waiting until the claim's deadline (set when it was made).
    pub(crate) async fn grow(&mut self, bytes: usize) -> Result<(), BudgetSpent> {
        if bytes == 0 {
            return Ok(());
        }
        // Larger than the whole budget: could never be granted.
        let wanted = u32::try_from(bytes)
            .ok()
            .filter(|_| bytes <= self.budget.total)
            .ok_or(BudgetSpent)?;
        let acquire = Arc::clone(&self.budget.semaphore).acquire_many_owned(wanted);
        let permit = tokio::time::timeout_at(self.deadline, acquire)
            .await
            .map_err(|_| BudgetSpent)?
            .map_err(|_| BudgetSpent)?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn claims_wait_for_room_then_give_up() {
        let budget = BufferBudget::new(100, Duration::from_secs(1));
        let mut first = budget.claim();
        assert!(first.grow(60).await.is_ok());
        assert!(first.grow(30).await.is_ok());
        assert_eq!(budget.available(), 10);
        let mut second = budget.claim();
        assert_eq!(second.grow(20).await, Err(BudgetSpent));
        // Room comes back when the first claim is dropped.
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.claim().grow(20).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(first);
        assert_eq!(waiter.await.ok(), Some(Ok(())));
        assert_eq!(budget.available(), 100);
        // More than the whole budget is refused at once.
        assert_eq!(budget.claim().grow(101).await, Err(BudgetSpent));
    }

    #[tokio::test]
    async fn a_held_body_gives_the_bytes_back_when_dropped() {
        let budget = BufferBudget::new(100, Duration::from_secs(1));
        let mut claim = budget.claim();
        assert!(claim.grow(40).await.is_ok());
        let body: crate::body::GatewayBody<()> = crate::body::GatewayBody::own_keeping("x", claim);
        assert_eq!(budget.available(), 60);
        drop(body);
        assert_eq!(budget.available(), 100);
    }
}

//! Backpressure: each node has a byte budget for the messages it printed
//! that Ladon still holds (in the router's inbox, on the simulated wire,
//! held by a partition, queued for a peer that is not initialised yet, or
//! waiting to be written to a peer's stdin). Every such message carries a
//! [`Credit`] for its bytes; the credit is returned when the last copy is
//! written or dropped. While a node is over its budget, Ladon stops reading
//! its stdout, so a node that floods a slow peer blocks on its own writes
//! instead of growing Ladon's memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Bytes one node's messages may occupy inside Ladon before its stdout is
/// paused (a batch read before the pause may add up to one more line).
pub const NODE_BUDGET: usize = 16 << 20;

#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    cap: usize,
    room: Notify,
    pauses: AtomicU64,
}

impl Budget {
    pub fn new(cap: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            cap,
            room: Notify::new(),
            pauses: AtomicU64::new(0),
        })
    }

    /// Bytes currently held.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// How many times reading this node's stdout was paused.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }

    /// Charges `bytes` to the budget (never waits: call [`Budget::room`] first).
    pub fn charge(self: &Arc<Self>, bytes: usize) -> Credit {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        Credit {
            budget: Some(self.clone()),
            bytes,
        }
    }

    /// Waits until the budget has room; `true` if it had to wait (a pause),
    /// in which case `on_pause` ran first.
    pub async fn room(&self, on_pause: impl FnOnce()) -> bool {
        if self.used() <= self.cap {
            return false;
        }
        self.pauses.fetch_add(1, Ordering::Relaxed);
        on_pause();
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.used() <= self.cap {
                return true;
            }
            notified.await;
        }
    }

    fn release(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        if before > self.cap && before - bytes <= self.cap {
            self.room.notify_waiters();
        }
    }
}

/// Bytes charged to a [`Budget`], returned on drop.
#[derive(Debug, Default)]
pub struct Credit {
    budget: Option<Arc<Budget>>,
    bytes: usize,
}

impl Credit {
    /// A credit charged to nothing (lines Ladon made itself).
    pub fn none() -> Credit {
        Credit::default()
    }

    /// Moves up to `bytes` of this credit into a new one.
    pub fn take(&mut self, bytes: usize) -> Credit {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Credit {
            budget: self.budget.clone(),
            bytes,
        }
    }
}

impl Drop for Credit {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            if self.bytes > 0 {
                b.release(self.bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_budget_pauses_until_credits_come_back() {
        let b = Budget::new(100);
        assert!(!b.room(|| panic!("no pause")).await, "empty: no pause");
        let mut c = b.charge(150);
        let part = c.take(100);
        assert_eq!(b.used(), 150);
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.room(|| ()).await })
        };
        tokio::task::yield_now().await;
        drop(c); // 100 left: at the cap, which is room
        assert!(waiter.await.unwrap(), "it paused");
        assert_eq!((b.used(), b.pauses()), (100, 1));
        drop(part);
        assert_eq!(b.used(), 0);
    }
}

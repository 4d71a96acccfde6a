//! [`Shutdown`]: the daemon's decision to stop, passed to every loop that must end with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use warm_runtime::sync::Recover;

/// A one-way switch with a reason. Cloning shares it; the first reason given wins.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
    /// Mirrors the token for the per-request check: `CancellationToken::is_cancelled` takes
    /// a lock, and every request asks.
    triggered: Arc<AtomicBool>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the shutdown, recording why (ignored if it had already started).
    pub fn trigger(&self, reason: impl Into<String>) {
        {
            let mut slot = self.reason.recover();
            if slot.is_none() {
                *slot = Some(reason.into());
            }
        }
        self.triggered.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }

    /// Completes once the shutdown has started.
    ///
    /// # Cancellation safety
    /// Safe to use in `select!`: dropping it loses nothing.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }

    /// Why the daemon is stopping, once it is.
    pub fn reason(&self) -> Option<String> {
        self.reason.recover().clone()
    }

    /// A token cancelled with the shutdown, for code that takes one.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_triggered());
        shutdown.clone().trigger("idle");
        shutdown.trigger("signal");
        assert!(shutdown.is_triggered());
        assert_eq!(shutdown.reason().as_deref(), Some("idle"));
    }
}

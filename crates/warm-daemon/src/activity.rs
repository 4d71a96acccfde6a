//! [`Activity`]: what keeps the daemon alive, and the idle-TTL decision.
//!
//! The daemon is idle when no service request is in flight, no lease is held, and nothing has
//! happened for `ttl`. Every request renews; `ttl = 0` means never idle.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use warm_runtime::sync::Recover;

#[derive(Debug)]
struct State {
    ttl: Duration,
    last_activity: Instant,
    in_flight: u64,
    leases: u64,
}

/// Shared activity counters, read by the idle watcher.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    /// Wakes the idle watcher when the deadline may have moved earlier or the daemon became
    /// idle; one watcher, so `notify_one`'s stored permit means no wake-up is ever lost.
    changed: Notify,
}

impl Activity {
    pub fn new(ttl: Duration) -> Activity {
        Activity {
            state: Mutex::new(State {
                ttl,
                last_activity: Instant::now(),
                in_flight: 0,
                leases: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-update of plain counters; the
        // counters are still meaningful, so keep going.
        let mut state = self.state.recover();
        f(&mut state)
    }

    /// Something happened: restart the idle countdown.
    pub fn touch(&self) {
        self.with(|s| s.last_activity = Instant::now());
    }

    /// A service request started.
    pub fn begin_request(&self) {
        self.with(|s| {
            s.in_flight = s.in_flight.saturating_add(1);
            s.last_activity = Instant::now();
        });
    }

    /// A service request finished.
    pub fn end_request(&self) {
        let idle = self.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last_activity = Instant::now();
            s.in_flight == 0
        });
        if idle {
            self.changed.notify_one();
        }
    }

    pub fn lease_acquired(&self) -> u64 {
        self.with(|s| {
            s.leases = s.leases.saturating_add(1);
            s.last_activity = Instant::now();
            s.leases
        })
    }

    pub fn lease_released(&self, count: u64) -> u64 {
        let left = self.with(|s| {
            s.leases = s.leases.saturating_sub(count);
            s.last_activity = Instant::now();
            s.leases
        });
        self.changed.notify_one();
        left
    }

    pub fn set_ttl(&self, ttl: Duration) {
        self.with(|s| {
            s.ttl = ttl;
            s.last_activity = Instant::now();
        });
        self.changed.notify_one();
    }

    pub fn ttl(&self) -> Duration {
        self.with(|s| s.ttl)
    }

    pub fn in_flight(&self) -> u64 {
        self.with(|s| s.in_flight)
    }

    pub fn leases(&self) -> u64 {
        self.with(|s| s.leases)
    }

    /// Time left before the daemon would exit for idleness; `None` when the TTL is 0. While a
    /// request or a lease holds the daemon, the full TTL is left (the countdown restarts when
    /// they end).
    pub fn remaining(&self) -> Option<Duration> {
        self.with(|s| {
            if s.ttl.is_zero() {
                None
            } else if s.in_flight > 0 || s.leases > 0 {
                Some(s.ttl)
            } else {
                // Checked: a TTL is bounded where it enters, and this never panics anyway.
                let deadline = s.last_activity.checked_add(s.ttl)?;
                Some(deadline.saturating_duration_since(Instant::now()))
            }
        })
    }

    /// The instant the daemon becomes idle, if nothing changes; `None` while it cannot.
    fn idle_deadline(&self) -> Option<Instant> {
        self.with(|s| {
            (!s.ttl.is_zero() && s.in_flight == 0 && s.leases == 0)
                .then(|| s.last_activity.checked_add(s.ttl))
                .flatten()
        })
    }

    /// Completes when the daemon has been idle for its TTL.
    ///
    /// # Cancellation safety
    /// Safe: it holds no state across awaits that dropping would lose.
    pub async fn idle_expired(&self) {
        loop {
            match self.idle_deadline() {
                None => self.changed.notified().await,
                Some(deadline) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {
                            // Activity since we computed the deadline moves it later.
                            if self.idle_deadline().is_some_and(|d| d <= Instant::now()) {
                                return;
                            }
                        }
                        _ = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_after_ttl_but_not_while_a_request_runs() {
        let activity = std::sync::Arc::new(Activity::new(Duration::from_secs(2)));
        activity.begin_request();
        let watcher = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_expired().await }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !watcher.is_finished(),
            "expired while a request was in flight"
        );
        activity.end_request();
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert!(!watcher.is_finished(), "expired before the TTL");
        tokio::time::sleep(Duration::from_millis(200)).await;
        tokio::task::yield_now().await;
        assert!(watcher.is_finished(), "did not expire after the TTL");
    }

    /// Whether `remaining()` drops below the full TTL within a second: at once when idle.
    fn counts_down(activity: &Activity, ttl: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            if activity.remaining().is_some_and(|left| left < ttl) {
                return true;
            }
        }
        false
    }

    #[test]
    fn a_request_or_a_lease_reports_the_full_ttl_and_idleness_counts_down() {
        let ttl = Duration::from_secs(100);
        let activity = Activity::new(ttl);
        assert_eq!(activity.in_flight(), 0);
        assert!(counts_down(&activity, ttl), "idle from the start");
        activity.begin_request();
        assert_eq!(activity.in_flight(), 1);
        assert_eq!(
            activity.remaining(),
            Some(ttl),
            "a request holds the full TTL"
        );
        activity.end_request();
        assert_eq!(activity.in_flight(), 0);
        assert!(counts_down(&activity, ttl), "idle again once it ends");
        activity.lease_acquired();
        assert_eq!(
            activity.remaining(),
            Some(ttl),
            "a lease holds the full TTL"
        );
        activity.lease_released(1);
        assert!(counts_down(&activity, ttl), "idle again once released");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_never_expires_and_lease_holds() {
        let activity = std::sync::Arc::new(Activity::new(Duration::ZERO));
        assert_eq!(activity.remaining(), None);
        let watcher = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_expired().await }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!watcher.is_finished());
        activity.lease_acquired();
        activity.set_ttl(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!watcher.is_finished(), "expired while a lease was held");
        activity.lease_released(1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        tokio::task::yield_now().await;
        assert!(watcher.is_finished());
    }
}

//! Locks that recover from poisoning.
//!
//! A `Mutex` is poisoned when a thread panicked while holding it. warm's daemons catch panics
//! (a panicking request is answered with an internal error and the daemon serves on), so a
//! poisoned lock is a real possibility, and skipping the work behind it is the worst answer: a
//! request whose waiter is never registered waits for its timeout, a shutdown reason is lost.
//!
//! Recovering is sound for every lock in warm because no critical section leaves its data
//! half-updated across a point that can panic: each one inserts, removes or replaces whole
//! values in std collections (which stay valid when a panic unwinds through them) or copies a
//! value out. A new lock whose critical section breaks that rule must not use these helpers.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A mutex's `lock` that takes the guard of a poisoned mutex instead of failing.
pub trait Recover<T: ?Sized> {
    fn recover(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Recover<T> for Mutex<T> {
    fn recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The read and write halves of an `RwLock`, poisoned or not.
pub trait RecoverRw<T: ?Sized> {
    fn read_recover(&self) -> RwLockReadGuard<'_, T>;
    fn write_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RecoverRw<T> for RwLock<T> {
    fn read_recover(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_recover(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, RwLock};

    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let mutex = Arc::new(Mutex::new(vec![1]));
        let rwlock = Arc::new(RwLock::new(1));
        let (m, r) = (mutex.clone(), rwlock.clone());
        let panicked = std::thread::spawn(move || {
            let _m = m.lock();
            let _r = r.write();
            panic!("poison both");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned() && rwlock.is_poisoned());
        mutex.recover().push(2);
        assert_eq!(*mutex.recover(), [1, 2]);
        *rwlock.write_recover() += 1;
        assert_eq!(*rwlock.read_recover(), 2);
    }
}

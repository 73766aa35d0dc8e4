//! Locks that a panic elsewhere does not take down with it.
//!
//! A `std` lock is *poisoned* when a thread panics while holding it, and `lock()`
//! returns an error ever after. Everything spanlab guards with a lock is either
//! aggregates that stay valid whatever point an update stopped at (counters, maps of
//! them, queues of finished records), or state rebuilt on its next use; and a report
//! must still come out of a run whose thread panicked — that is when it matters most.
//! So every lock in the crate ignores poisoning, through this one spelling.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `Mutex::lock`, ignoring poisoning (see the module docs).
pub(crate) trait LockUnpoisoned<T: ?Sized> {
    /// Locks, whether or not a panic poisoned the mutex.
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockUnpoisoned<T> for Mutex<T> {
    #[inline]
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `RwLock::read` and `RwLock::write`, ignoring poisoning (see the module docs).
pub(crate) trait RwUnpoisoned<T: ?Sized> {
    /// Reads, whether or not a panic poisoned the lock.
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T>;
    /// Writes, whether or not a panic poisoned the lock.
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwUnpoisoned<T> for RwLock<T> {
    #[inline]
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_still_opens() {
        let counter = std::sync::Arc::new(Mutex::new(1));
        let held = counter.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("poisons the lock");
        })
        .join();
        assert!(counter.is_poisoned());
        *counter.lock_unpoisoned() += 1;
        assert_eq!(*counter.lock_unpoisoned(), 2);
        let table = std::sync::Arc::new(RwLock::new(1));
        let held = table.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.write().unwrap();
            panic!("poisons the lock");
        })
        .join();
        assert!(table.is_poisoned());
        *table.write_unpoisoned() += 1;
        assert_eq!(*table.read_unpoisoned(), 2);
    }
}

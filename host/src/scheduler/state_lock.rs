//! The lock around the scheduler's [`super::State`], with one rule a plain mutex lacks: a chain
//! activation waiting for it goes before every placement waiting for it. Under load dozens of
//! placement handlers queue for the state (64 handler slots by default); behind all of them a
//! swap took over 1 s on a loaded 2-core machine, past the 1 s the acceptance allows.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Who holds the lock and how many activations wait.
#[derive(Default)]
struct Turn {
    held: bool,
    first_waiting: usize,
}

/// A mutex whose [`PriorityLock::lock_first`] callers overtake [`PriorityLock::lock`] callers.
pub struct PriorityLock<T> {
    turn: Mutex<Turn>,
    freed: Condvar,
    value: Mutex<T>,
}

/// Access to the value; the lock is handed on when dropped.
pub struct Guard<'a, T> {
    lock: &'a PriorityLock<T>,
    value: Option<MutexGuard<'a, T>>,
}

impl<T> PriorityLock<T> {
    pub fn new(value: T) -> Self {
        PriorityLock {
            turn: Mutex::new(Turn::default()),
            freed: Condvar::new(),
            value: Mutex::new(value),
        }
    }

    fn turn(&self) -> MutexGuard<'_, Turn> {
        self.turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acquire(&self, first: bool) -> Guard<'_, T> {
        let mut turn = self.turn();
        if first {
            turn.first_waiting += 1;
        }
        while turn.held || (!first && turn.first_waiting > 0) {
            turn = self.freed.wait(turn).unwrap_or_else(|p| p.into_inner());
        }
        if first {
            turn.first_waiting -= 1;
        }
        turn.held = true;
        drop(turn);
        // Uncontended: only the holder of the turn gets here.
        let value = self.value.lock().unwrap_or_else(|p| p.into_inner());
        Guard {
            lock: self,
            value: Some(value),
        }
    }

    /// Wait for the lock behind any activation waiting for it.
    pub fn lock(&self) -> Guard<'_, T> {
        self.acquire(false)
    }

    /// Wait for the lock ahead of every [`Self::lock`] caller.
    pub fn lock_first(&self) -> Guard<'_, T> {
        self.acquire(true)
    }
}

impl<T> std::ops::Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("held until drop")
    }
}

impl<T> std::ops::DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("held until drop")
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.value = None;
        self.lock.turn().held = false;
        self.lock.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn an_activation_overtakes_queued_placements() {
        let lock = Arc::new(PriorityLock::new(Vec::<&str>::new()));
        let held = lock.lock();
        let mut threads = Vec::new();
        for _ in 0..8 {
            let l = lock.clone();
            threads.push(std::thread::spawn(move || l.lock().push("placement")));
        }
        // The placements are queued before the activation arrives.
        std::thread::sleep(Duration::from_millis(100));
        let l = lock.clone();
        threads.push(std::thread::spawn(move || {
            l.lock_first().push("activation")
        }));
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        for t in threads {
            t.join().unwrap();
        }
        let order = lock.lock().clone();
        assert_eq!(order.len(), 9);
        assert_eq!(order[0], "activation", "{order:?}");
    }
}

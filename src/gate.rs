//! A budget of bytes in flight from several producer threads to one consumer: a producer takes
//! what it hands over before handing it over, and waits while the budget is spent; the consumer
//! gives it back once it has passed the bytes on. A channel bounded in items alone lets items of
//! 2 MiB queue 2 MiB each; this bounds what they weigh. One hand-over larger than the whole
//! budget still passes, alone, so no message is ever too large to move. The number of
//! hand-overs in flight is bounded too: many small ones within the byte budget would only add
//! latency and spread the consumer's work over more memory.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The budget.
#[derive(Debug)]
pub(crate) struct Gate {
    capacity: usize,
    max_hand_overs: usize,
    state: Mutex<State>,
    room: Condvar,
}

#[derive(Debug, Default)]
struct State {
    used: usize,
    hand_overs: usize,
    closed: bool,
}

impl Gate {
    /// A budget of `capacity` bytes in at most `max_hand_overs` hand-overs.
    pub(crate) fn new(capacity: usize, max_hand_overs: usize) -> Gate {
        Gate {
            capacity,
            max_hand_overs,
            state: Mutex::new(State::default()),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `n` bytes of the budget, waiting while what others hold leaves no room for them.
    /// False once the gate is closed (the consumer is gone).
    pub(crate) fn take(&self, n: usize) -> bool {
        let mut state = self.lock();
        while !state.closed
            && state.used > 0
            && (state.used.saturating_add(n) > self.capacity
                || state.hand_overs >= self.max_hand_overs)
        {
            state = self.room.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.closed {
            return false;
        }
        state.used += n;
        state.hand_overs += 1;
        true
    }

    /// Gives back one hand-over of `n` bytes taken earlier.
    pub(crate) fn give(&self, n: usize) {
        let mut state = self.lock();
        state.used = state.used.saturating_sub(n);
        state.hand_overs = state.hand_overs.saturating_sub(1);
        drop(state);
        self.room.notify_all();
    }

    /// Ends the budget: every `take`, waiting or to come, returns false.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_producer_waits_while_the_budget_is_spent_and_a_giant_passes_alone() {
        let gate = Arc::new(Gate::new(100, 8));
        assert!(gate.take(60));
        // 60 + 60 > 100: the second waits until the first is given back.
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.take(60))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "took past the budget");
        gate.give(60);
        assert!(waiter.join().unwrap());
        gate.give(60);
        // Larger than the budget: passes when nothing else is in flight.
        assert!(gate.take(1000));
        gate.give(1000);
    }

    #[test]
    fn hand_overs_are_bounded_in_number_too() {
        let gate = Arc::new(Gate::new(1000, 2));
        assert!(gate.take(1));
        assert!(gate.take(1));
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.take(1))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a third hand-over of two allowed");
        gate.give(1);
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn closing_releases_every_waiting_producer() {
        let gate = Arc::new(Gate::new(10, 8));
        assert!(gate.take(10));
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.take(1))
        };
        gate.close();
        assert!(!waiter.join().unwrap());
        assert!(!gate.take(1));
    }
}

/*!
The hand-off from capture threads to the sensor's loop: a bounded queue that the loop empties
all at once.

A channel costs a wake-up per packet when the loop keeps up (at 100 000 packets/s that is
most of a core in futex calls). Here the capture threads append under a lock and wake the
loop only when it is waiting; the loop swaps the whole batch out. Nothing is delayed: a
packet is handed over as soon as the loop asks. When the queue is full the capture threads
wait (and the kernel ring fills and drops, counted by libpcap), never the loop.
*/

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug)]
struct State<T> {
    items: Vec<T>,
    /// The loop is waiting for items.
    taker_waiting: bool,
    /// Capture threads waiting for room.
    pushers_waiting: usize,
    /// The loop has stopped taking: pushes fail.
    closed: bool,
}

/// A bounded many-to-one queue emptied in batches.
#[derive(Debug)]
pub struct Queue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl<T> Queue<T> {
    /// A queue holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: Vec::new(),
                taker_waiting: false,
                pushers_waiting: 0,
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A thread that panicked holding the lock left the items consistent: a push or a
        // swap is one step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an item, waiting while the queue is full; false once the queue is closed.
    pub fn push(&self, item: T) -> bool {
        let mut s = self.lock();
        while s.items.len() >= self.capacity && !s.closed {
            s.pushers_waiting += 1;
            s = self.not_full.wait(s).unwrap_or_else(|e| e.into_inner());
            s.pushers_waiting -= 1;
        }
        if s.closed {
            return false;
        }
        s.items.push(item);
        if s.taker_waiting {
            s.taker_waiting = false;
            self.not_empty.notify_one();
        }
        true
    }

    /// Moves every waiting item to `out` (emptied first), waiting up to `timeout` for one.
    pub fn take(&self, timeout: Duration, out: &mut Vec<T>) {
        out.clear();
        let mut s = self.lock();
        if s.items.is_empty() {
            s.taker_waiting = true;
            s = self
                .not_empty
                .wait_timeout(s, timeout)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
            s.taker_waiting = false;
        }
        std::mem::swap(out, &mut s.items);
        if s.pushers_waiting > 0 {
            self.not_full.notify_all();
        }
    }

    /// Stops taking: waiting and later pushes return false.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.items.clear();
        self.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn items_from_several_threads_all_arrive_in_each_threads_order() {
        let q = Arc::new(Queue::new(16));
        let pushers: Vec<_> = (0..3u64)
            .map(|t| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        assert!(q.push((t, i)));
                    }
                })
            })
            .collect();
        let mut last = [None::<u64>; 3];
        let mut seen = 0;
        let mut batch = Vec::new();
        while seen < 30_000 {
            q.take(Duration::from_millis(100), &mut batch);
            assert!(batch.len() <= 16);
            for &(t, i) in &batch {
                let prev = last[t as usize].replace(i);
                assert_eq!(prev.map_or(0, |p| p + 1), i);
                seen += 1;
            }
        }
        for p in pushers {
            p.join().expect("pusher");
        }
    }

    #[test]
    fn closing_releases_a_pusher_waiting_on_a_full_queue() {
        let q = Arc::new(Queue::new(1));
        assert!(q.push(1));
        let pusher = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || q.push(2))
        };
        std::thread::sleep(Duration::from_millis(50));
        q.close();
        assert!(!pusher.join().expect("pusher"));
        assert!(!q.push(3));
    }

    #[test]
    fn take_returns_empty_after_the_timeout() {
        let q: Queue<u8> = Queue::new(4);
        let mut out = vec![9];
        q.take(Duration::from_millis(10), &mut out);
        assert!(out.is_empty());
    }
}

/*!
Puts finished exchanges back in the order their first message began.

Exchanges finish out of order (a slow response, a pipelined request, another connection,
another thread), so they wait here until no unfinished message can sort before them: the
low water of every producer has passed them. At most `max` wait, holding at most
`max_bytes` of heads and bodies; past either the oldest goes out early, bending the order
to keep memory bounded (counted: one upload that never ends must not pin everything after
it).
*/

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::exchange::{Exchange, Order};

/// A held exchange behind a pointer, with its order, the bytes it holds and the producer
/// it came from beside it: the heap moves an entry at every level it sifts through, and an
/// exchange is some 500 bytes, while the merger of `--threads` holds thousands at a time.
struct Ordered(Order, usize, usize, Box<Exchange>);

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Ordered {}
impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// Exchanges waiting for earlier ones.
pub struct Reorder {
    held: BinaryHeap<Reverse<Ordered>>,
    max: usize,
    max_bytes: usize,
    bytes: usize,
    /// Exchanges released before their turn because a cap was reached.
    pub released_early: u64,
}

impl Reorder {
    /// An empty buffer that holds at most `max` exchanges and `max_bytes` of them.
    pub fn new(max: usize, max_bytes: usize) -> Self {
        Reorder {
            held: BinaryHeap::new(),
            max,
            max_bytes,
            bytes: 0,
            released_early: 0,
        }
    }

    /// Exchanges waiting.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when none wait.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Releases to `sink`, in order, every exchange below `low_water` (all of them for
    /// `None`: the input has ended), and the oldest past the cap. A buffer that may hold
    /// none (`max` 0: a sensor, whose inventory does not depend on the order) does not
    /// order: everything goes out, and nothing counts as early.
    pub fn release(&mut self, low_water: Option<Order>, sink: &mut dyn FnMut(Exchange)) {
        self.release_from(low_water, &mut |_, ex| sink(ex));
    }

    /// [`Reorder::release`], giving `sink` each exchange with the producer it was added
    /// from ([`Reorder::add`]).
    pub fn release_from(
        &mut self,
        low_water: Option<Order>,
        sink: &mut dyn FnMut(usize, Exchange),
    ) {
        let low_water = low_water.filter(|_| self.max > 0);
        while let Some(Reverse(Ordered(top, _, _, _))) = self.held.peek() {
            let due = low_water.is_none_or(|lw| *top < lw);
            if !due {
                if self.held.len() <= self.max && self.bytes <= self.max_bytes {
                    break;
                }
                self.released_early += 1;
            }
            if let Some(Reverse(Ordered(_, bytes, source, ex))) = self.held.pop() {
                self.bytes -= bytes;
                sink(source, *ex);
            }
        }
    }

    /// Adds exchanges finished by producer `source` (a shard), which
    /// [`Reorder::release_from`] gives back with each.
    pub fn add(&mut self, source: usize, exchanges: impl IntoIterator<Item = Exchange>) {
        for ex in exchanges {
            let bytes = ex.heap_bytes();
            self.bytes += bytes;
            self.held
                .push(Reverse(Ordered(ex.order, bytes, source, Box::new(ex))));
        }
    }
}

impl Extend<Exchange> for Reorder {
    /// Adds exchanges of producer 0.
    fn extend<I: IntoIterator<Item = Exchange>>(&mut self, iter: I) {
        self.add(0, iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Body, Head, Message, Proto, StartLine};

    /// An exchange at position `at` whose response keeps `body` bytes.
    fn exchange(at: u64, body: usize) -> Exchange {
        let head = Head::new(
            b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            StartLine::Response {
                version: (0, 8),
                status: 200,
                reason: (13, 15),
            },
            vec![],
        );
        Exchange {
            order: Order { at, flow: 0, n: 0 },
            proto: Proto::H1,
            client: "10.0.0.1:1".parse().expect("addr"),
            server: "10.0.0.2:80".parse().expect("addr"),
            stream: None,
            request: None,
            response: Some(Message {
                head,
                body: Body {
                    data: vec![7; body],
                    ..Body::default()
                },
                first_ts: 0,
                last_ts: 0,
            }),
            notes: vec![],
            tls: None,
            grpc_messages: None,
            websocket: None,
        }
    }

    fn positions(out: &[Exchange]) -> Vec<u64> {
        out.iter().map(|e| e.order.at).collect()
    }

    #[test]
    fn releases_in_order_below_the_low_water_only() {
        let mut r = Reorder::new(100, 1 << 20);
        r.extend([5, 1, 3].map(|at| exchange(at, 10)));
        let mut out = Vec::new();
        r.release(
            Some(Order {
                at: 4,
                flow: 0,
                n: 0,
            }),
            &mut |e| out.push(e),
        );
        assert_eq!(positions(&out), [1, 3]);
        r.release(None, &mut |e| out.push(e));
        assert_eq!(positions(&out), [1, 3, 5]);
        assert_eq!(r.released_early, 0);
        assert!(r.is_empty());
    }

    #[test]
    fn a_stalled_low_water_cannot_pin_more_than_the_byte_cap() {
        // An upload that never ends keeps the low water at 0; bodies keep coming.
        let mut r = Reorder::new(1_000_000, 64 * 1024);
        let stalled = Some(Order::default());
        let mut out = Vec::new();
        for at in 1..=1000 {
            r.extend([exchange(at, 4096)]);
            r.release(stalled, &mut |e| out.push(e));
            let held: usize = (1..=at)
                .skip(out.len())
                .map(|_| exchange(0, 4096).heap_bytes())
                .sum();
            assert!(held <= 64 * 1024 + exchange(0, 4096).heap_bytes(), "{held}");
        }
        assert!(r.len() < 20, "{} held", r.len());
        assert_eq!(r.released_early, out.len() as u64);
        // What goes out early still goes out oldest first.
        assert!(positions(&out).windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_buffer_that_may_hold_none_does_not_order_and_counts_nothing_early() {
        let mut r = Reorder::new(0, 1 << 20);
        r.extend([5, 1, 3].map(|at| exchange(at, 10)));
        let mut out = Vec::new();
        r.release(Some(Order::default()), &mut |e| out.push(e));
        assert_eq!(out.len(), 3);
        assert_eq!(r.released_early, 0);
        assert!(r.is_empty());
    }
}

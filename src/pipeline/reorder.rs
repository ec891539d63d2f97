/*!
Puts finished exchanges back in the order their first message began.

Exchanges finish out of order (a slow response, a pipelined request, another connection,
another thread), so they wait here until no unfinished message can sort before them: the
low water of every producer has passed them. At most `max` wait; past that the oldest goes
out early, bending the order to keep memory bounded.
*/

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::exchange::{Exchange, Order};

struct Ordered(Exchange);

impl PartialEq for Ordered {
    fn eq(&self, other: &Self) -> bool {
        self.0.order == other.0.order
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
        self.0.order.cmp(&other.0.order)
    }
}

/// Exchanges waiting for earlier ones.
pub struct Reorder {
    held: BinaryHeap<Reverse<Ordered>>,
    max: usize,
}

impl Reorder {
    /// An empty buffer that holds at most `max` exchanges.
    pub fn new(max: usize) -> Self {
        Reorder {
            held: BinaryHeap::new(),
            max,
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
    /// `None`: the input has ended), and the oldest past the cap.
    pub fn release(&mut self, low_water: Option<Order>, sink: &mut dyn FnMut(Exchange)) {
        while let Some(Reverse(Ordered(top))) = self.held.peek() {
            let ready = low_water.is_none_or(|lw| top.order < lw) || self.held.len() > self.max;
            if !ready {
                break;
            }
            if let Some(Reverse(Ordered(ex))) = self.held.pop() {
                sink(ex);
            }
        }
    }
}

impl Extend<Exchange> for Reorder {
    fn extend<I: IntoIterator<Item = Exchange>>(&mut self, iter: I) {
        self.held
            .extend(iter.into_iter().map(|ex| Reverse(Ordered(ex))));
    }
}

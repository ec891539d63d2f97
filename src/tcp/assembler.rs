/*!
Per-direction TCP stream reassembly, sans-IO.

Segments go in with their sequence number; contiguous bytes come out in order, and holes
that will never be filled come out as [`Delivery::Gap`] so the application layer can
resynchronise instead of waiting forever.

Sequence numbers are unwrapped into 64-bit stream offsets relative to the stream's start,
so wraparound at 2^32 is invisible to the rest of the code.

Overlap policy: **first copy wins**. Bytes already delivered are never changed; bytes
already buffered out of order are kept when a later segment overlaps them with different
content (the conflict is counted). This is what tshark does, and it keeps the stream stable
against retransmissions that try to rewrite history (the classic IDS evasion); Suricata can
emulate per-OS policies, which a passive inventory does not need.

Holes are declared lost when (a) the out-of-order buffer of the direction passes its cap,
(b) the receiver acknowledges bytes beyond the hole (it had them, we did not), or (c) the
flow ends. Bytes cut off by the snap length are holes known at once.
*/

use std::collections::BTreeMap;

/// What the assembler hands to the application layer, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// In-order bytes.
    Data(&'a [u8]),
    /// This many bytes are missing from the stream here.
    Gap(u64),
    /// The sender closed its direction (FIN), after all data before it.
    Fin,
}

#[derive(Debug)]
enum Piece {
    Data(Vec<u8>),
    Lost(u64),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Data(d) => d.len() as u64,
            Piece::Lost(n) => *n,
        }
    }
}

/// What one held piece costs besides its bytes: its B-tree entry (an offset and a
/// 32-byte piece, in nodes about two-thirds full) and its allocation's header. It is
/// charged against the buffer cap so that a flood of 1-byte segments ahead of 1-byte
/// holes (100 000 of them cost 10 MB for 100 KB of data) fills the cap as fast as its
/// memory does; quinn's assembler limits chunk counts for the same attack.
pub const PIECE_OVERHEAD: usize = 96;

/// Counters the assembler updates.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AssemblerEvents {
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub overflows: u64,
    pub conflicts: u64,
    pub delivered: u64,
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Assembler {
    /// Sequence number of stream offset 0; None until the first SYN or data.
    base: Option<u32>,
    /// Offset of the next byte to deliver.
    next: u64,
    /// Out-of-order pieces by offset; never overlapping each other, all beyond `next`.
    pending: BTreeMap<u64, Piece>,
    /// Data bytes held in `pending`.
    pending_bytes: usize,
    /// Offset of the FIN, once seen.
    fin: Option<u64>,
    fin_delivered: bool,
    /// Counters since creation.
    pub events: AssemblerEvents,
}

impl Assembler {
    /// A direction whose start is not known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the stream start is known (SYN or first data).
    pub fn is_started(&self) -> bool {
        self.base.is_some()
    }

    /// Bytes held out of order (without [`PIECE_OVERHEAD`]).
    pub fn buffered(&self) -> usize {
        self.pending_bytes
    }

    /// Stream offset of the next byte expected.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// The SYN (or SYN+ACK) fixes the stream start: data begins at `isn + 1`.
    pub fn syn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// Maps a sequence number to a stream offset near `next` (handles wraparound).
    fn offset_of(&self, seq: u32) -> Option<i64> {
        let base = self.base?;
        let next_seq = base.wrapping_add(self.next as u32);
        let diff = seq.wrapping_sub(next_seq) as i32 as i64;
        Some(self.next as i64 + diff)
    }

    /// Feeds a segment. `missing` bytes follow `data` on the wire but were not captured.
    /// Calls `out` with whatever became deliverable. `max_buffer` caps out-of-order bytes.
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        missing: u32,
        fin: bool,
        max_buffer: usize,
        out: &mut dyn FnMut(Delivery<'_>),
    ) {
        if self.base.is_none() {
            if data.is_empty() && missing == 0 {
                return;
            }
            // Caught midstream: the first byte we see is offset 0.
            self.base = Some(seq);
        }
        let Some(start) = self.offset_of(seq) else {
            return;
        };
        let total = data.len() as u64 + missing as u64;
        if fin {
            let at = start + total as i64;
            if at >= self.next as i64 && self.fin.is_none() {
                self.fin = Some(at as u64);
            }
        }
        if total > 0 {
            let end = start + total as i64;
            if end <= self.next as i64 {
                self.events.retransmissions += 1;
            } else {
                // Trim what was already delivered.
                let skip = (self.next as i64 - start).max(0) as u64;
                let start = start.max(self.next as i64) as u64;
                let (data, missing) = if skip as usize >= data.len() {
                    (&data[data.len()..], total - skip)
                } else {
                    (&data[skip as usize..], missing as u64)
                };
                if start == self.next && self.pending.is_empty() {
                    // The common case: in order, nothing waiting. Deliver without copying.
                    if !data.is_empty() {
                        self.next += data.len() as u64;
                        self.events.delivered += data.len() as u64;
                        out(Delivery::Data(data));
                    }
                    if missing > 0 {
                        self.next += missing;
                        self.events.gaps += 1;
                        self.events.gap_bytes += missing;
                        out(Delivery::Gap(missing));
                    }
                } else {
                    if start > self.next {
                        self.events.out_of_order += 1;
                    }
                    self.insert(start, data);
                    if missing > 0 {
                        self.insert_lost(start + data.len() as u64, missing);
                    }
                    self.drain(out);
                    while self.pending_bytes + self.pending.len() * PIECE_OVERHEAD > max_buffer {
                        self.events.overflows += 1;
                        self.skip_hole(out);
                    }
                }
            }
        }
        self.deliver_fin(out);
    }

    /// The peer acknowledged `ack`: everything before it reached the receiver, so a hole
    /// before it that has data buffered after it will never be filled by the capture.
    pub fn peer_ack(&mut self, ack: u32, out: &mut dyn FnMut(Delivery<'_>)) {
        let Some(acked) = self.offset_of(ack) else {
            return;
        };
        while let Some((&first, _)) = self.pending.first_key_value() {
            if acked >= first as i64 && first > self.next {
                self.skip_hole(out);
            } else {
                break;
            }
        }
        self.deliver_fin(out);
    }

    /// The flow is ending: give up on every hole and deliver everything held. When the
    /// peer acknowledged more than we saw (`acked`), the missing tail is a gap too.
    pub fn flush(&mut self, acked: Option<u32>, out: &mut dyn FnMut(Delivery<'_>)) {
        while !self.pending.is_empty() {
            self.skip_hole(out);
        }
        if let Some(ack) = acked {
            if let Some(acked) = self.offset_of(ack) {
                let end = self.fin.map_or(acked, |f| acked.min(f as i64));
                if end > self.next as i64 && end - (self.next as i64) < (1 << 30) {
                    let n = end as u64 - self.next;
                    self.next = end as u64;
                    self.events.gaps += 1;
                    self.events.gap_bytes += n;
                    out(Delivery::Gap(n));
                }
            }
        }
        self.deliver_fin(out);
    }

    fn deliver_fin(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        if !self.fin_delivered && self.fin == Some(self.next) {
            self.fin_delivered = true;
            out(Delivery::Fin);
        }
    }

    /// Declares the hole before the first pending piece lost and delivers what follows.
    fn skip_hole(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        if let Some((&first, _)) = self.pending.first_key_value() {
            if first > self.next {
                let n = first - self.next;
                self.events.gaps += 1;
                self.events.gap_bytes += n;
                self.next = first;
                out(Delivery::Gap(n));
            }
        }
        self.drain(out);
    }

    fn drain(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let piece = entry.remove();
            self.next += piece.len();
            match piece {
                Piece::Data(d) => {
                    self.pending_bytes -= d.len();
                    self.events.delivered += d.len() as u64;
                    out(Delivery::Data(&d));
                }
                Piece::Lost(n) => {
                    self.events.gaps += 1;
                    self.events.gap_bytes += n;
                    out(Delivery::Gap(n));
                }
            }
        }
    }

    /// Inserts `data` at `start`, keeping bytes already held (first copy wins).
    fn insert(&mut self, start: u64, data: &[u8]) {
        let mut cursor = start;
        let end = start + data.len() as u64;
        while cursor < end {
            // The piece that covers `cursor`, or the next one after it.
            let covering = self
                .pending
                .range(..=cursor)
                .next_back()
                .filter(|(k, p)| **k + p.len() > cursor)
                .map(|(k, _)| *k);
            if let Some(k) = covering {
                let piece_end = k + self.pending[&k].len();
                let overlap_end = piece_end.min(end);
                if let Piece::Data(held) = &self.pending[&k] {
                    let a = &held[(cursor - k) as usize..(overlap_end - k) as usize];
                    let b = &data[(cursor - start) as usize..(overlap_end - start) as usize];
                    if a != b {
                        self.events.conflicts += 1;
                    }
                }
                self.events.retransmissions += 1;
                cursor = overlap_end;
                continue;
            }
            let next_start = self
                .pending
                .range(cursor..)
                .next()
                .map(|(k, _)| *k)
                .unwrap_or(u64::MAX);
            let piece_end = next_start.min(end);
            let bytes = data[(cursor - start) as usize..(piece_end - start) as usize].to_vec();
            self.pending_bytes += bytes.len();
            self.pending.insert(cursor, Piece::Data(bytes));
            cursor = piece_end;
        }
    }

    fn insert_lost(&mut self, start: u64, len: u64) {
        let free = self
            .pending
            .range(start..)
            .next()
            .map_or(len, |(k, _)| (*k - start).min(len));
        let covered = self
            .pending
            .range(..=start)
            .next_back()
            .is_some_and(|(k, p)| *k + p.len() > start);
        if free > 0 && !covered {
            self.pending.insert(start, Piece::Lost(free));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects deliveries as a readable string: data as text, gaps as `[gap N]`.
    fn run(steps: &[(u32, &[u8])], isn: Option<u32>, max: usize) -> (String, Assembler) {
        let mut a = Assembler::new();
        if let Some(isn) = isn {
            a.syn(isn);
        }
        let mut s = String::new();
        for (seq, data) in steps {
            a.segment(*seq, data, 0, false, max, &mut |d| push(&mut s, d));
        }
        (s, a)
    }

    fn push(s: &mut String, d: Delivery<'_>) {
        match d {
            Delivery::Data(b) => s.push_str(&String::from_utf8_lossy(b)),
            Delivery::Gap(n) => s.push_str(&format!("[gap {n}]")),
            Delivery::Fin => s.push_str("[fin]"),
        }
    }

    #[test]
    fn tiny_pieces_ahead_of_holes_are_charged_their_overhead() {
        // 100 000 1-byte segments, each after a 1-byte hole: 100 KB of data under a
        // 256 KiB cap, but 100 000 pieces (about 10 MB) unless each piece is charged.
        let max = 256 * 1024;
        let mut a = Assembler::new();
        a.syn(0);
        let mut most = 0;
        for k in 0..100_000u32 {
            a.segment(2 * k + 2, b"x", 0, false, max, &mut |_| {});
            most = most.max(a.pending.len());
        }
        assert!(most <= max / PIECE_OVERHEAD, "{most} pieces held");
        assert!(a.events.overflows > 0);
        assert!(a.events.gaps > 0);
    }

    #[test]
    fn in_order() {
        let (s, _) = run(&[(1, b"hello "), (7, b"world")], Some(0), 1 << 20);
        assert_eq!(s, "hello world");
    }

    #[test]
    fn out_of_order_is_held_then_delivered() {
        let (s, a) = run(&[(7, b"world"), (1, b"hello ")], Some(0), 1 << 20);
        assert_eq!(s, "hello world");
        assert_eq!(a.events.out_of_order, 1);
        assert_eq!(a.buffered(), 0);
    }

    #[test]
    fn retransmission_is_dropped() {
        let (s, a) = run(&[(1, b"abc"), (1, b"abc"), (4, b"def")], Some(0), 1 << 20);
        assert_eq!(s, "abcdef");
        assert_eq!(a.events.retransmissions, 1);
    }

    #[test]
    fn overlap_first_copy_wins() {
        // "XYZ" arrives first out of order at offset 4..7; a later segment covering
        // 2..8 with different bytes must not replace it.
        let (s, a) = run(&[(5, b"XYZ"), (3, b"cdEFGh"), (1, b"ab")], Some(0), 1 << 20);
        assert_eq!(s, "abcdXYZh");
        assert_eq!(a.events.conflicts, 1);
    }

    #[test]
    fn partial_retransmission_is_trimmed() {
        let (s, _) = run(&[(1, b"abcd"), (3, b"cdef")], Some(0), 1 << 20);
        assert_eq!(s, "abcdef");
    }

    #[test]
    fn wraparound() {
        let isn = u32::MAX - 2;
        let (s, _) = run(
            &[(u32::MAX - 1, b"ab"), (0, b"cd"), (2, b"ef")],
            Some(isn),
            1 << 20,
        );
        assert_eq!(s, "abcdef");
    }

    #[test]
    fn gap_by_overflow() {
        let (s, a) = run(&[(1, b"ab"), (10, b"0123456789")], Some(0), 4);
        assert_eq!(s, "ab[gap 7]0123456789");
        assert_eq!(a.events.gaps, 1);
        assert_eq!(a.events.overflows, 1);
    }

    #[test]
    fn gap_by_peer_ack() {
        let mut a = Assembler::new();
        a.syn(0);
        let mut s = String::new();
        a.segment(1, b"ab", 0, false, 1 << 20, &mut |d| push(&mut s, d));
        a.segment(6, b"fg", 0, false, 1 << 20, &mut |d| push(&mut s, d));
        // The receiver acknowledged up to 8: bytes 3..6 reached it but not us.
        a.peer_ack(8, &mut |d| push(&mut s, d));
        assert_eq!(s, "ab[gap 3]fg");
    }

    #[test]
    fn flush_gives_up_holes_and_reports_unseen_tail() {
        let mut a = Assembler::new();
        a.syn(100);
        let mut s = String::new();
        a.segment(101, b"ab", 0, false, 1 << 20, &mut |d| push(&mut s, d));
        a.segment(105, b"ef", 0, false, 1 << 20, &mut |d| push(&mut s, d));
        a.flush(Some(110), &mut |d| push(&mut s, d));
        assert_eq!(s, "ab[gap 2]ef[gap 3]");
    }

    #[test]
    fn snaplen_cut_is_a_gap() {
        let mut a = Assembler::new();
        a.syn(0);
        let mut s = String::new();
        a.segment(1, b"GET", 5, false, 1 << 20, &mut |d| push(&mut s, d));
        a.segment(9, b"xy", 0, true, 1 << 20, &mut |d| push(&mut s, d));
        assert_eq!(s, "GET[gap 5]xy[fin]");
    }

    #[test]
    fn fin_waits_for_data_before_it() {
        let mut a = Assembler::new();
        a.syn(0);
        let mut s = String::new();
        a.segment(3, b"cd", 0, true, 1 << 20, &mut |d| push(&mut s, d));
        assert_eq!(s, "");
        a.segment(1, b"ab", 0, false, 1 << 20, &mut |d| push(&mut s, d));
        assert_eq!(s, "abcd[fin]");
    }

    #[test]
    fn midstream_starts_at_first_data() {
        let (s, _) = run(
            &[(5000, b"HTTP/1.1 200 OK"), (5015, b"\r\n")],
            None,
            1 << 20,
        );
        assert_eq!(s, "HTTP/1.1 200 OK\r\n");
    }

    /// Random segmentations, orders and duplicates of one stream must deliver exactly
    /// that stream: a bitmap-free oracle, since with no losses the output is the input.
    #[test]
    fn random_orders_reassemble_exactly() {
        let stream: Vec<u8> = (0..4000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut seed = 0x2545_f491_u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _round in 0..200 {
            let isn = rand(u32::MAX as u64) as u32;
            let mut cuts = vec![0usize];
            while *cuts.last().unwrap_or(&0) < stream.len() {
                let last = *cuts.last().unwrap_or(&0);
                cuts.push((last + 1 + rand(300) as usize).min(stream.len()));
            }
            let mut segs: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
            // Duplicate some and shuffle locally (bounded reordering).
            let extra: Vec<(usize, usize)> =
                segs.iter().filter(|_| rand(5) == 0).cloned().collect();
            segs.extend(extra);
            for i in (1..segs.len()).rev() {
                let j = i.saturating_sub(rand(4) as usize);
                segs.swap(i, j);
            }
            let mut a = Assembler::new();
            a.syn(isn);
            let mut got = Vec::new();
            for (s, e) in segs {
                let seq = isn.wrapping_add(1).wrapping_add(s as u32);
                a.segment(seq, &stream[s..e], 0, false, 1 << 20, &mut |d| {
                    if let Delivery::Data(b) = d {
                        got.extend_from_slice(b)
                    }
                });
            }
            a.flush(None, &mut |d| {
                if let Delivery::Data(b) = d {
                    got.extend_from_slice(b)
                }
            });
            assert_eq!(got.len(), stream.len());
            assert!(got == stream);
        }
    }
}

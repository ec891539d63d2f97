/*!
TCP: a flow table of connections, each with two reassembled directions.

Segments from [`crate::decode`] go in; per-flow [`FlowEvent`]s (in-order data, gaps, FINs,
the close) come out to a [`StreamApp`] that the caller supplies per flow (the HTTP parser).
The table is bounded: at most [`Limits::max_flows`] connections (the oldest are evicted,
and counted), at most [`Limits::max_buffer_per_direction`] out-of-order bytes per
direction, idle flows closed after [`Limits::idle_timeout`] of packet time. Flows are
created only by a SYN or by a segment with payload, so stray ACKs and RSTs cost nothing.
*/

pub mod assembler;

use std::collections::HashMap;
use std::net::IpAddr;

use crate::decode::{flags, TcpSegment};
use crate::source::Timestamp;
pub use assembler::{Assembler, AssemblerEvents, Delivery};

/// One side of a connection: `A` sent the first packet we saw, `B` is its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A = 0,
    B = 1,
}

impl Side {
    /// The peer.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
    fn idx(self) -> usize {
        self as usize
    }
}

/// Why a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides sent FIN.
    Fin,
    /// A side sent RST.
    Reset,
    /// No packet for longer than the idle timeout.
    Timeout,
    /// Evicted to make room in a full table.
    Evicted,
    /// The input ended.
    EndOfInput,
}

/// What the table knows about a connection.
#[derive(Debug, Clone)]
pub struct FlowInfo {
    /// The input position of the step that created the flow: unique, growing in order of
    /// creation, and the same however flows are spread over tables.
    pub id: u64,
    /// The input position of the step being handled now (see [`crate::exchange::Order`]).
    pub at: u64,
    /// Address and port of side A and side B.
    pub addrs: [(IpAddr, u16); 2],
    /// VLAN/tunnel context.
    pub context: u64,
    /// The side that opened the connection, when the handshake was seen.
    pub client: Option<Side>,
    /// Time of the first and the latest packet.
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
}

impl FlowInfo {
    /// Address of a side.
    pub fn addr(&self, side: Side) -> (IpAddr, u16) {
        self.addrs[side.idx()]
    }
}

/// What a flow hands to its application handler.
#[derive(Debug)]
pub enum FlowEvent<'a> {
    /// In-order bytes from `side`, carried by the packet of time `ts`.
    Data {
        side: Side,
        ts: Timestamp,
        bytes: &'a [u8],
    },
    /// `len` bytes from `side` are missing here.
    Gap { side: Side, ts: Timestamp, len: u64 },
    /// `side` finished sending.
    Fin { side: Side, ts: Timestamp },
    /// The flow is gone; no more events.
    Close { ts: Timestamp, reason: CloseReason },
}

/// The per-flow consumer of reassembled streams. The table makes one with `Default` when
/// a flow first has something to say.
pub trait StreamApp {
    /// Shared context handed to every call (output queues, counters).
    type Ctx;
    /// Handles one event of the flow described by `info`.
    fn on_event(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Self::Ctx);
}

/// Caps and timeouts of the table.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections tracked at once.
    pub max_flows: usize,
    /// Out-of-order bytes held per direction before the hole is given up.
    pub max_buffer_per_direction: usize,
    /// Packet-time inactivity after which a flow is closed (Zeek's default: 5 minutes).
    pub idle_timeout: Timestamp,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: 100_000,
            max_buffer_per_direction: 256 * 1024,
            idle_timeout: 300_000_000_000,
        }
    }
}

/// Table-level counters (the assemblers' are summed in as flows end).
#[derive(Debug, Default, Clone, Copy)]
pub struct TableCounters {
    pub flows: u64,
    pub midstream: u64,
    pub evicted: u64,
    pub timed_out: u64,
    pub assembler: AssemblerEvents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
    context: u64,
}

impl FlowKey {
    fn of(seg: &TcpSegment<'_>) -> FlowKey {
        let (lo, hi) = if seg.src <= seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        FlowKey {
            lo,
            hi,
            context: seg.context,
        }
    }
}

struct Flow<A> {
    info: FlowInfo,
    dirs: [Assembler; 2],
    /// Highest acknowledgement each side sent.
    acked: [Option<u32>; 2],
    fin_done: [bool; 2],
    /// Made at the first event: a flow that never carries data (a lone SYN, a scan)
    /// costs no application state.
    app: Option<Box<A>>,
}

/// The flow table.
pub struct FlowTable<A> {
    limits: Limits,
    /// foldhash: fast, and seeded at random so crafted addresses cannot force collisions.
    /// Flows are boxed so the table itself stays small: hashbrown may grow it to twice
    /// the cap when removals leave tombstones, and it should cost pointers, not flows.
    flows: HashMap<FlowKey, Box<Flow<A>>, foldhash::fast::RandomState>,
    /// The input position of the step being handled.
    at: u64,
    /// Positions and sweeps when the table numbers its own steps ([`FlowTable::segment`]).
    next_at: u64,
    sweep: SweepClock,
    /// Counters of flows that have ended, plus table events.
    pub counters: TableCounters,
}

fn add_events(sum: &mut AssemblerEvents, e: &AssemblerEvents) {
    sum.retransmissions += e.retransmissions;
    sum.out_of_order += e.out_of_order;
    sum.gaps += e.gaps;
    sum.gap_bytes += e.gap_bytes;
    sum.overflows += e.overflows;
    sum.conflicts += e.conflicts;
    sum.delivered += e.delivered;
}

/// How often (packet time) idle flows are looked for.
const SWEEP_INTERVAL: Timestamp = 5_000_000_000;

/// When to look for idle flows: every [`SWEEP_INTERVAL`] of packet time, at the first
/// segment past it. Whoever numbers the input's steps keeps one, so that every table
/// sweeps at the same positions.
#[derive(Debug, Clone, Copy)]
pub struct SweepClock {
    next: Timestamp,
}

impl Default for SweepClock {
    fn default() -> Self {
        SweepClock {
            next: Timestamp::MIN,
        }
    }
}

impl SweepClock {
    /// True when a segment of time `ts` should be preceded by a sweep at `ts`.
    pub fn due(&mut self, ts: Timestamp) -> bool {
        if ts < self.next {
            return false;
        }
        let first = self.next == Timestamp::MIN;
        self.next = ts.saturating_add(SWEEP_INTERVAL);
        !first
    }
}

/// Which of `shards` tables the connection of `seg` belongs to: both directions of a
/// connection give the same answer, and so does every run.
pub fn shard_of(seg: &TcpSegment<'_>, shards: usize) -> usize {
    use std::hash::BuildHasher;
    if shards <= 1 {
        return 0;
    }
    let hash = foldhash::fast::FixedState::with_seed(0x5bec_7e12).hash_one(FlowKey::of(seg));
    // Multiply-shift maps the hash onto 0..shards without a division.
    ((u128::from(hash) * shards as u128) >> 64) as usize
}

impl<A: StreamApp + Default> FlowTable<A> {
    /// An empty table.
    pub fn new(limits: Limits) -> Self {
        FlowTable {
            limits,
            flows: HashMap::default(),
            at: 0,
            next_at: 0,
            sweep: SweepClock::default(),
            counters: TableCounters::default(),
        }
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Counters including the flows still open.
    pub fn totals(&self) -> TableCounters {
        let mut c = self.counters;
        for f in self.flows.values() {
            add_events(&mut c.assembler, &f.dirs[0].events);
            add_events(&mut c.assembler, &f.dirs[1].events);
        }
        c
    }

    /// Feeds one segment, numbering the steps itself and sweeping idle flows every
    /// [`SWEEP_INTERVAL`] of packet time: for a caller whose table sees the whole input.
    pub fn segment(&mut self, seg: &TcpSegment<'_>, ctx: &mut A::Ctx) {
        if self.sweep.due(seg.ts) {
            let at = self.next_at;
            self.next_at += 1;
            self.expire(at, seg.ts, ctx);
        }
        let at = self.next_at;
        self.next_at += 1;
        self.segment_at(at, seg, ctx);
    }

    /// Feeds the segment at input position `at`. Idle flows are not swept here: the caller
    /// numbers the steps and calls [`FlowTable::expire`] when its [`SweepClock`] says.
    pub fn segment_at(&mut self, at: u64, seg: &TcpSegment<'_>, ctx: &mut A::Ctx) {
        self.at = at;
        let key = FlowKey::of(seg);
        let syn = seg.flags & flags::SYN != 0;
        let has_payload = !seg.payload.is_empty() || seg.missing > 0;

        // A fresh SYN on a flow that already finished is a new connection (port reuse).
        if syn && seg.flags & flags::ACK == 0 {
            let reuse = self.flows.get(&key).is_some_and(|f| {
                f.fin_done[0] || f.fin_done[1] || f.dirs.iter().any(|d| d.next_offset() > 0)
            });
            if reuse {
                self.close(&key, seg.ts, CloseReason::Fin, ctx);
            }
        }
        if !self.flows.contains_key(&key) {
            if !syn && !has_payload {
                return;
            }
            if self.flows.len() >= self.limits.max_flows {
                self.evict(seg.ts, ctx);
            }
            let info = FlowInfo {
                id: at,
                at,
                addrs: [seg.src, seg.dst],
                context: seg.context,
                client: None,
                first_ts: seg.ts,
                last_ts: seg.ts,
            };
            self.counters.flows += 1;
            if !syn {
                self.counters.midstream += 1;
            }
            self.flows.insert(
                key,
                Box::new(Flow {
                    info,
                    dirs: [Assembler::new(), Assembler::new()],
                    acked: [None, None],
                    fin_done: [false, false],
                    app: None,
                }),
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let Flow {
            info,
            dirs,
            acked,
            fin_done,
            app,
        } = &mut **flow;
        info.at = at;
        info.last_ts = info.last_ts.max(seg.ts);
        let side = if seg.src == info.addrs[0] {
            Side::A
        } else {
            Side::B
        };
        let ts = seg.ts;
        let mut data_seq = seg.seq;
        if syn {
            if info.client.is_none() {
                info.client = Some(if seg.flags & flags::ACK == 0 {
                    side
                } else {
                    side.other()
                });
            }
            dirs[side.idx()].syn(seg.seq);
            data_seq = seg.seq.wrapping_add(1);
        }
        let max = self.limits.max_buffer_per_direction;
        let fin = seg.flags & flags::FIN != 0;
        if has_payload || fin {
            let (dir, fd) = (&mut dirs[side.idx()], &mut fin_done[side.idx()]);
            dir.segment(data_seq, seg.payload, seg.missing, fin, max, &mut |d| {
                deliver(app, info, side, ts, d, fd, ctx)
            });
        }
        if seg.flags & flags::ACK != 0 {
            let other = side.other();
            acked[side.idx()] = Some(seg.ack);
            let (dir, fd) = (&mut dirs[other.idx()], &mut fin_done[other.idx()]);
            dir.peer_ack(seg.ack, &mut |d| deliver(app, info, other, ts, d, fd, ctx));
        }
        if seg.flags & flags::RST != 0 {
            self.close(&key, ts, CloseReason::Reset, ctx);
        } else if fin_done[0] && fin_done[1] {
            self.close(&key, ts, CloseReason::Fin, ctx);
        }
    }

    /// Closes flows idle for longer than the timeout as of `now`, at input position `at`.
    pub fn expire(&mut self, at: u64, now: Timestamp, ctx: &mut A::Ctx) {
        self.at = at;
        let timeout = self.limits.idle_timeout;
        let mut idle: Vec<(u64, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| now.saturating_sub(f.info.last_ts) > timeout)
            .map(|(k, f)| (f.info.id, *k))
            .collect();
        idle.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in idle {
            self.counters.timed_out += 1;
            self.close(&key, now, CloseReason::Timeout, ctx);
        }
    }

    /// Makes room by closing the least recently active sixteenth of the table.
    fn evict(&mut self, now: Timestamp, ctx: &mut A::Ctx) {
        let n = (self.flows.len() / 16).max(1);
        self.close_oldest(n, now, ctx);
    }

    /// Closes the `n` least recently active flows (a live sensor over its memory budget
    /// sheds them) as part of the step at `at`; each counts as evicted. Returns how many
    /// were closed.
    pub fn shed(&mut self, at: u64, n: usize, now: Timestamp, ctx: &mut A::Ctx) -> usize {
        self.at = at;
        self.close_oldest(n, now, ctx)
    }

    fn close_oldest(&mut self, n: usize, now: Timestamp, ctx: &mut A::Ctx) -> usize {
        let mut by_age: Vec<(Timestamp, u64, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.info.last_ts, f.info.id, *k))
            .collect();
        let n = n.min(by_age.len());
        if n == 0 {
            return 0;
        }
        by_age.select_nth_unstable(n - 1);
        let mut victims: Vec<_> = by_age[..n].to_vec();
        victims.sort_unstable();
        for (_, _, key) in victims {
            self.counters.evicted += 1;
            self.close(&key, now, CloseReason::Evicted, ctx);
        }
        n
    }

    /// Closes every flow, oldest first (end of input, the last position).
    pub fn finish(&mut self, ctx: &mut A::Ctx) {
        self.finish_in_chunks(usize::MAX, ctx, &mut |_| {});
    }

    /// [`FlowTable::finish`], calling `after` with the context after each `chunk` flows
    /// so that what they released can be passed on before the next ones close.
    pub fn finish_in_chunks(
        &mut self,
        chunk: usize,
        ctx: &mut A::Ctx,
        after: &mut dyn FnMut(&mut A::Ctx),
    ) {
        self.at = u64::MAX;
        let mut all: Vec<(u64, Timestamp, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.info.id, f.info.last_ts, *k))
            .collect();
        all.sort_unstable_by_key(|(id, _, _)| *id);
        for part in all.chunks(chunk.max(1)) {
            for (_, ts, key) in part {
                self.close(key, *ts, CloseReason::EndOfInput, ctx);
            }
            after(ctx);
        }
    }

    fn close(&mut self, key: &FlowKey, ts: Timestamp, reason: CloseReason, ctx: &mut A::Ctx) {
        let Some(mut flow) = self.flows.remove(key) else {
            return;
        };
        flow.info.at = self.at;
        let Flow {
            info,
            dirs,
            acked,
            fin_done,
            app,
        } = &mut *flow;
        for side in [Side::A, Side::B] {
            let peer_ack = acked[side.other().idx()];
            let (dir, fd) = (&mut dirs[side.idx()], &mut fin_done[side.idx()]);
            dir.flush(peer_ack, &mut |d| deliver(app, info, side, ts, d, fd, ctx));
        }
        if let Some(app) = app {
            app.on_event(info, FlowEvent::Close { ts, reason }, ctx);
        }
        add_events(&mut self.counters.assembler, &dirs[0].events);
        add_events(&mut self.counters.assembler, &dirs[1].events);
    }
}

fn deliver<A: StreamApp + Default>(
    app: &mut Option<Box<A>>,
    info: &FlowInfo,
    side: Side,
    ts: Timestamp,
    d: Delivery<'_>,
    fin_done: &mut bool,
    ctx: &mut A::Ctx,
) {
    let event = match d {
        Delivery::Data(bytes) => FlowEvent::Data { side, ts, bytes },
        Delivery::Gap(len) => FlowEvent::Gap { side, ts, len },
        Delivery::Fin => {
            *fin_done = true;
            FlowEvent::Fin { side, ts }
        }
    };
    app.get_or_insert_with(Box::default)
        .on_event(info, event, ctx);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records events as text per flow.
    #[derive(Default)]
    struct Recorder(String);

    impl StreamApp for Recorder {
        type Ctx = Vec<String>;
        fn on_event(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Vec<String>) {
            match event {
                FlowEvent::Data { side, bytes, .. } => self
                    .0
                    .push_str(&format!("{side:?}:{}", String::from_utf8_lossy(bytes))),
                FlowEvent::Gap { side, len, .. } => {
                    self.0.push_str(&format!("{side:?}:[gap {len}]"))
                }
                FlowEvent::Fin { side, .. } => self.0.push_str(&format!("{side:?}:[fin]")),
                FlowEvent::Close { reason, .. } => ctx.push(format!(
                    "flow {} client {:?} {} {reason:?}",
                    info.id, info.client, self.0
                )),
            }
        }
    }

    fn seg<'a>(
        ts: i64,
        from_client: bool,
        seq: u32,
        ack: u32,
        fl: u8,
        payload: &'a [u8],
    ) -> TcpSegment<'a> {
        let c = (IpAddr::from([10, 0, 0, 1]), 40000);
        let s = (IpAddr::from([10, 0, 0, 2]), 80);
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        TcpSegment {
            ts,
            src,
            dst,
            context: 0,
            seq,
            ack,
            flags: fl,
            payload,
            missing: 0,
        }
    }

    use crate::decode::flags::{ACK, FIN, RST, SYN};

    #[test]
    fn handshake_data_and_close() {
        let mut t: FlowTable<Recorder> = FlowTable::new(Limits::default());
        let mut out = Vec::new();
        t.segment(&seg(1, true, 100, 0, SYN, b""), &mut out);
        t.segment(&seg(2, false, 500, 101, SYN | ACK, b""), &mut out);
        t.segment(&seg(3, true, 101, 501, ACK, b"GET"), &mut out);
        t.segment(&seg(4, false, 501, 104, ACK, b"200"), &mut out);
        t.segment(&seg(5, true, 104, 504, FIN | ACK, b""), &mut out);
        t.segment(&seg(6, false, 504, 105, FIN | ACK, b""), &mut out);
        assert_eq!(
            out,
            vec!["flow 0 client Some(A) A:GETB:200A:[fin]B:[fin] Fin"]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn stray_acks_make_no_flows_and_rst_closes() {
        let mut t: FlowTable<Recorder> = FlowTable::new(Limits::default());
        let mut out = Vec::new();
        t.segment(&seg(1, true, 1, 1, ACK, b""), &mut out);
        assert!(t.is_empty());
        t.segment(&seg(2, false, 9, 1, ACK, b"HTTP"), &mut out);
        t.segment(&seg(3, true, 1, 13, RST, b""), &mut out);
        assert_eq!(out, vec!["flow 1 client None A:HTTP Reset"]);
    }

    #[test]
    fn a_million_syns_stay_within_the_cap() {
        let limits = Limits {
            max_flows: 1000,
            ..Limits::default()
        };
        let mut t: FlowTable<Recorder> = FlowTable::new(limits);
        let mut out = Vec::new();
        for i in 0..1_000_000u32 {
            let mut s = seg(i as i64, true, i, 0, SYN, b"");
            s.src.1 = (i % 60000) as u16;
            s.src.0 = IpAddr::from((i / 60000).to_be_bytes());
            t.segment(&s, &mut out);
            assert!(t.len() <= 1000);
        }
        assert!(t.counters.evicted >= 999_000);
    }

    #[test]
    fn idle_flows_time_out_in_packet_time() {
        let mut t: FlowTable<Recorder> = FlowTable::new(Limits::default());
        let mut out = Vec::new();
        t.segment(&seg(0, true, 1, 1, ACK, b"x"), &mut out);
        let mut later = seg(400_000_000_000, true, 1, 1, ACK, b"y");
        later.src.1 = 40001;
        t.segment(&later, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].ends_with("Timeout"));
        assert_eq!(t.len(), 1);
    }
}

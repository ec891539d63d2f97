/*!
Packet decoding: from a captured frame to the TCP segment inside it.

Link layers come from [`link`], tunnels and label stacks from [`tunnel`], IPv4/IPv6 headers
(with IPv6 extension headers) and TCP headers from etherparse's lax slices, which accept
frames cut by the snap length. IP fragments are put back together in a bounded pool
([`defrag`]). The decoder keeps a context value per packet (VLAN ids, tunnel ids) so that
flows which share addresses in different VLANs or tunnels stay apart.
*/

pub mod defrag;
pub mod link;
pub mod tunnel;

use std::net::IpAddr;

use etherparse::{ip_number, LaxIpSlice, TcpSlice};

use crate::source::Timestamp;
use crate::stats::Stats;
use link::{ethertype, LinkError, Next};

/// How many encapsulations deep we follow (VLAN in GRE in VXLAN...).
const MAX_DEPTH: usize = 8;

/// TCP flag bits we use.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// One TCP segment, borrowed from the packet (or from a reassembled datagram).
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    /// Capture time of the packet.
    pub ts: Timestamp,
    /// Source address and port.
    pub src: (IpAddr, u16),
    /// Destination address and port.
    pub dst: (IpAddr, u16),
    /// VLAN and tunnel identifiers mixed into one value; 0 when there are none.
    pub context: u64,
    /// Sequence number of the first payload byte (of the SYN for a SYN).
    pub seq: u32,
    /// Acknowledgement number (meaningful when `flags & ACK`).
    pub ack: u32,
    /// TCP flags byte.
    pub flags: u8,
    /// The captured payload.
    pub payload: &'a [u8],
    /// Payload bytes the IP header announces but the capture does not hold (snap length).
    pub missing: u32,
}

/// Turns frames into TCP segments. Holds only the fragment pool as state.
#[derive(Debug)]
pub struct Decoder {
    defrag: defrag::Pool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(defrag::Limits::default())
    }
}

fn mix(context: u64, value: u64) -> u64 {
    (context ^ value.wrapping_add(0x9e37_79b9_7f4a_7c15))
        .wrapping_mul(0xbf58_476d_1ce4_e5b9)
        .rotate_left(31)
}

impl Decoder {
    /// A decoder whose fragment pool obeys `limits`.
    pub fn new(limits: defrag::Limits) -> Self {
        Decoder {
            defrag: defrag::Pool::new(limits),
        }
    }

    /// Decodes one frame; calls `on_segment` for the TCP segment it carries, if any.
    pub fn decode(
        &mut self,
        ts: Timestamp,
        linktype: u32,
        data: &[u8],
        stats: &mut Stats,
        on_segment: &mut dyn FnMut(&TcpSegment<'_>, &mut Stats),
    ) {
        match link::strip(linktype, data) {
            Ok(next) => self.next(ts, next, 0, 0, stats, on_segment),
            Err(LinkError::UnsupportedLinkType(_)) => {
                Stats::bump(&mut stats.undecodable, "unsupported link type")
            }
            Err(LinkError::Truncated) => {
                Stats::bump(&mut stats.undecodable, "truncated link header")
            }
            Err(LinkError::NotData) => Stats::bump(&mut stats.undecodable, "802.11 non-data"),
            Err(LinkError::NotIp) => Stats::bump(&mut stats.undecodable, "not IP"),
        }
    }

    fn next(
        &mut self,
        ts: Timestamp,
        mut next: Next<'_>,
        mut context: u64,
        depth: usize,
        stats: &mut Stats,
        on_segment: &mut dyn FnMut(&TcpSegment<'_>, &mut Stats),
    ) {
        // Follow Ethernet and VLAN/MPLS headers iteratively; recurse only into tunnels.
        for _ in 0..MAX_DEPTH {
            match next {
                Next::Ethernet(frame) => {
                    let Some(proto) = frame.get(12..14) else {
                        Stats::bump(&mut stats.undecodable, "truncated link header");
                        return;
                    };
                    let proto = u16::from_be_bytes([proto[0], proto[1]]);
                    next = Next::EtherType(proto, &frame[14..]);
                }
                Next::EtherType(ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD, d) => {
                    let (Some(tci), Some(inner)) = (d.get(0..4), d.get(4..)) else {
                        Stats::bump(&mut stats.undecodable, "truncated VLAN tag");
                        return;
                    };
                    let vid = u16::from_be_bytes([tci[0], tci[1]]) & 0x0fff;
                    context = mix(context, 0x1_0000 | vid as u64);
                    next = Next::EtherType(u16::from_be_bytes([tci[2], tci[3]]), inner);
                }
                Next::EtherType(ethertype::MPLS | ethertype::MPLS_MULTICAST, d) => {
                    match tunnel::mpls(d) {
                        Some(n) => next = n,
                        None => {
                            Stats::bump(&mut stats.undecodable, "MPLS without IP");
                            return;
                        }
                    }
                }
                Next::EtherType(ethertype::IPV4 | ethertype::IPV6, d) => next = Next::Ip(d),
                Next::EtherType(ethertype::TRANSPARENT_ETHERNET, d) => next = Next::Ethernet(d),
                Next::EtherType(_, _) => {
                    Stats::bump(&mut stats.undecodable, "not IP");
                    return;
                }
                Next::Ip(d) => {
                    self.ip(ts, d, context, depth, stats, on_segment);
                    return;
                }
            }
        }
        Stats::bump(&mut stats.undecodable, "too deeply nested");
    }

    fn ip(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        context: u64,
        depth: usize,
        stats: &mut Stats,
        on_segment: &mut dyn FnMut(&TcpSegment<'_>, &mut Stats),
    ) {
        let ip = match LaxIpSlice::from_slice(data) {
            Ok((ip, _ext_error)) => ip,
            Err(_) => {
                Stats::bump(&mut stats.undecodable, "bad IP header");
                return;
            }
        };
        let src = ip.source_addr();
        let dst = ip.destination_addr();
        let payload = ip.payload();
        let proto = payload.ip_number;
        // Bytes announced by the IP header beyond what was captured.
        let claimed = match &ip {
            LaxIpSlice::Ipv4(v4) => v4.header().total_len() as usize,
            LaxIpSlice::Ipv6(v6) => 40 + v6.header().payload_length() as usize,
        };
        let missing = claimed.saturating_sub(data.len()) as u32;

        if payload.fragmented {
            stats.ip_fragments += 1;
            let Some(key) = defrag::Key::of(&ip, context) else {
                Stats::bump(&mut stats.undecodable, "bad fragment header");
                return;
            };
            let (offset, more) = match &ip {
                LaxIpSlice::Ipv4(v4) => {
                    (v4.header().fragments_offset(), v4.header().more_fragments())
                }
                LaxIpSlice::Ipv6(v6) => match defrag::ipv6_fragment(v6) {
                    Some(f) => f,
                    None => return,
                },
            };
            if let Some(whole) =
                self.defrag
                    .add(ts, key, proto, offset, more, payload.payload, stats)
            {
                stats.ip_reassembled += 1;
                self.transport(
                    ts, src, dst, proto, &whole, 0, context, depth, stats, on_segment,
                );
                self.defrag.recycle(whole);
            }
            return;
        }
        self.transport(
            ts,
            src,
            dst,
            proto,
            payload.payload,
            missing,
            context,
            depth,
            stats,
            on_segment,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        ts: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        proto: etherparse::IpNumber,
        payload: &[u8],
        missing: u32,
        context: u64,
        depth: usize,
        stats: &mut Stats,
        on_segment: &mut dyn FnMut(&TcpSegment<'_>, &mut Stats),
    ) {
        match proto {
            ip_number::TCP => {
                let Ok(tcp) = TcpSlice::from_slice(payload) else {
                    Stats::bump(&mut stats.undecodable, "truncated TCP header");
                    return;
                };
                let mut flag_bits = 0;
                if tcp.fin() {
                    flag_bits |= flags::FIN;
                }
                if tcp.syn() {
                    flag_bits |= flags::SYN;
                }
                if tcp.rst() {
                    flag_bits |= flags::RST;
                }
                if tcp.ack() {
                    flag_bits |= flags::ACK;
                }
                stats.tcp_segments += 1;
                on_segment(
                    &TcpSegment {
                        ts,
                        src: (src, tcp.source_port()),
                        dst: (dst, tcp.destination_port()),
                        context,
                        seq: tcp.sequence_number(),
                        ack: tcp.acknowledgment_number(),
                        flags: flag_bits,
                        payload: tcp.payload(),
                        missing,
                    },
                    stats,
                );
            }
            ip_number::UDP => {
                let (Some(ports), Some(inner)) = (payload.get(0..4), payload.get(8..)) else {
                    stats.not_tcp += 1;
                    return;
                };
                let sport = u16::from_be_bytes([ports[0], ports[1]]);
                let dport = u16::from_be_bytes([ports[2], ports[3]]);
                let is = |p: u16| sport == p || dport == p;
                let tunnelled = if is(tunnel::VXLAN_PORT) {
                    tunnel::vxlan(inner).map(|(n, id)| (n, mix(context, 0x2_0000_0000 | id as u64)))
                } else if is(tunnel::GENEVE_PORT) {
                    tunnel::geneve(inner)
                        .map(|(n, id)| (n, mix(context, 0x3_0000_0000 | id as u64)))
                } else if is(tunnel::TEREDO_PORT) {
                    tunnel::teredo(inner).map(|n| (n, mix(context, 0x4_0000_0000)))
                } else {
                    None
                };
                match tunnelled {
                    Some((next, ctx)) => self.enter_tunnel(ts, next, ctx, depth, stats, on_segment),
                    None => stats.not_tcp += 1,
                }
            }
            ip_number::GRE => match tunnel::gre(payload) {
                Some((next, id)) => {
                    let ctx = mix(context, 0x5_0000_0000 | id as u64);
                    self.enter_tunnel(ts, next, ctx, depth, stats, on_segment)
                }
                None => Stats::bump(&mut stats.undecodable, "unsupported GRE"),
            },
            ip_number::IPV4 | ip_number::IPV6 => {
                let ctx = mix(context, 0x6_0000_0000);
                self.enter_tunnel(ts, Next::Ip(payload), ctx, depth, stats, on_segment)
            }
            _ => stats.not_tcp += 1,
        }
    }

    fn enter_tunnel(
        &mut self,
        ts: Timestamp,
        next: Next<'_>,
        context: u64,
        depth: usize,
        stats: &mut Stats,
        on_segment: &mut dyn FnMut(&TcpSegment<'_>, &mut Stats),
    ) {
        if depth >= MAX_DEPTH {
            Stats::bump(&mut stats.undecodable, "too deeply nested");
            return;
        }
        stats.tunnelled += 1;
        self.next(ts, next, context, depth + 1, stats, on_segment);
    }

    /// Drops fragment sets older than the pool's timeout, as of `now`.
    pub fn expire(&mut self, now: Timestamp, stats: &mut Stats) {
        self.defrag.expire(now, stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(payload: &[u8], more_fragments: bool, frag_offset8: u16) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0x12,
            0x34,
            0,
            0,
            64,
            6,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        let frag = frag_offset8 | if more_fragments { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn tcp_header(seq: u32, data: &[u8]) -> Vec<u8> {
        let mut t = vec![0x30, 0x39, 0, 80];
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(data);
        t
    }

    fn segments(d: &mut Decoder, linktype: u32, frame: &[u8]) -> Vec<(u32, Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut stats = Stats::default();
        d.decode(0, linktype, frame, &mut stats, &mut |s, _| {
            out.push((s.seq, s.payload.to_vec(), s.context))
        });
        out
    }

    #[test]
    fn raw_ipv4_tcp() {
        let pkt = ipv4_tcp(&tcp_header(7, b"GET /"), false, 0);
        let got = segments(&mut Decoder::default(), link::linktype::RAW, &pkt);
        assert_eq!(got, vec![(7, b"GET /".to_vec(), 0)]);
    }

    #[test]
    fn vlan_changes_context() {
        let pkt = ipv4_tcp(&tcp_header(7, b"x"), false, 0);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        frame.extend_from_slice(&pkt);
        let got = segments(&mut Decoder::default(), link::linktype::ETHERNET, &frame);
        assert_eq!(got.len(), 1);
        assert_ne!(got[0].2, 0);
    }

    #[test]
    fn fragments_are_reassembled_in_any_order() {
        let tcp = tcp_header(1, &[b'a'; 40]);
        let (first, second) = tcp.split_at(24);
        let f1 = ipv4_tcp(first, true, 0);
        let f2 = ipv4_tcp(second, false, 3);
        let mut d = Decoder::default();
        assert!(segments(&mut d, link::linktype::RAW, &f2).is_empty());
        let got = segments(&mut d, link::linktype::RAW, &f1);
        assert_eq!(got, vec![(1, vec![b'a'; 40], 0)]);
    }

    fn ipv6_fragment(payload: &[u8], offset8: u16, more: bool) -> Vec<u8> {
        let len = 8 + payload.len();
        let mut p = vec![0x60, 0, 0, 0, (len >> 8) as u8, len as u8, 44, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let frag = (offset8 << 3) | u16::from(more);
        p.extend_from_slice(&[6, 0]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn ipv6_fragments_are_reassembled() {
        let tcp = tcp_header(9, &[b'z'; 30]);
        let (first, second) = tcp.split_at(16);
        let mut d = Decoder::default();
        assert!(segments(&mut d, link::linktype::RAW, &ipv6_fragment(first, 0, true)).is_empty());
        let got = segments(
            &mut d,
            link::linktype::RAW,
            &ipv6_fragment(second, 2, false),
        );
        assert_eq!(got, vec![(9, vec![b'z'; 30], 0)]);
    }

    #[test]
    fn snaplen_cut_payload_is_reported_missing() {
        let mut pkt = ipv4_tcp(&tcp_header(7, &[b'x'; 100]), false, 0);
        pkt.truncate(20 + 20 + 30);
        let mut d = Decoder::default();
        let mut stats = Stats::default();
        let mut seen = Vec::new();
        d.decode(0, link::linktype::RAW, &pkt, &mut stats, &mut |s, _| {
            seen.push((s.payload.len(), s.missing))
        });
        assert_eq!(seen, vec![(30, 70)]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut d = Decoder::default();
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let frame: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            for lt in [0, 1, 101, 113, 127, 239, 276] {
                segments(&mut d, lt, &frame);
            }
        }
    }
}

/*!
Counters of what the pipeline saw and what it skipped, and why.

Every layer that drops or cuts something counts it here, so `--stats` (and later the
sensor's status line) can say what the tool could not see instead of staying silent.
*/

use std::collections::BTreeMap;
use std::fmt;

/// All counters of one run. Plain integers: the hot path only increments them.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    /// Capture files (or streams) opened.
    pub files: u64,
    /// Files that stopped with an error before their end.
    pub files_failed: u64,
    /// Packet records read.
    pub packets: u64,
    /// Bytes of capture read.
    pub bytes: u64,
    /// Packets the kernel or the interface dropped before a live sensor could read them
    /// (libpcap's counters): traffic the inventory never saw.
    pub capture_dropped: u64,
    /// Packets by LINKTYPE.
    pub packets_by_linktype: BTreeMap<u32, u64>,
    /// Packets that could not be decoded to IP, by reason.
    pub undecodable: BTreeMap<&'static str, u64>,
    /// IP packets that carry something else than TCP (UDP without a tunnel, ICMP...).
    pub not_tcp: u64,
    /// Packets that came out of a tunnel (VXLAN, Geneve, GRE/ERSPAN, Teredo, IP-in-IP).
    pub tunnelled: u64,
    /// IP fragments seen.
    pub ip_fragments: u64,
    /// Datagrams rebuilt from fragments.
    pub ip_reassembled: u64,
    /// Fragment sets dropped (timeout, overlap conflict, table full).
    pub ip_fragments_dropped: u64,
    /// TCP segments seen.
    pub tcp_segments: u64,
    /// TCP flows created.
    pub flows: u64,
    /// Flows whose start (the SYN) was never seen.
    pub flows_midstream: u64,
    /// Flows evicted because the flow table was full (or shed by a live sensor over its
    /// memory budget, counted again in `flows_shed`).
    pub flows_evicted: u64,
    /// Flows a live sensor closed early to stay within `--max-memory`.
    pub flows_shed: u64,
    /// Flows closed by idle timeout.
    pub flows_timed_out: u64,
    /// Segments that repeated data already received.
    pub tcp_retransmissions: u64,
    /// Segments that arrived ahead of a hole.
    pub tcp_out_of_order: u64,
    /// Holes in a byte stream that were never filled.
    pub tcp_gaps: u64,
    /// Bytes lost in those holes (including bytes cut by the snap length).
    pub tcp_gap_bytes: u64,
    /// Out-of-order bytes dropped because a direction's buffer was full.
    pub tcp_buffer_overflows: u64,
    /// Overlapping segments whose bytes differed from what was already held.
    pub tcp_overlap_conflicts: u64,
    /// TCP payload bytes delivered in order to the application layer.
    pub tcp_payload_bytes: u64,
    /// Flows whose payload is not HTTP (by destination port).
    pub non_http_flows_by_port: BTreeMap<u16, u64>,
    /// Connections that speak HTTP/2 (prior knowledge, h2c upgrade, or recognised frames).
    pub h2_connections: u64,
    /// TLS connections (not looked into without keys).
    pub tls_connections: u64,
    /// TLS connections decrypted with their session keys (application data reached the
    /// HTTP parser).
    pub tls_decrypted: u64,
    /// Application bytes decrypted.
    pub tls_decrypted_bytes: u64,
    /// TLS connections not decrypted (or no longer), by reason: `no_key`,
    /// `resumed_no_key`, `unsupported_suite`, `bad_key`, `bad_tag`, `record_too_long`,
    /// `midstream`, `gap`.
    pub tls_not_decrypted: BTreeMap<&'static str, u64>,
    /// Records whose tag did not verify.
    pub tls_bad_records: u64,
    /// Records announcing more than 2^14+256 bytes.
    pub tls_records_too_long: u64,
    /// Records cut short by the end of the connection.
    pub tls_truncated_records: u64,
    /// Key log lines that did not parse (pcapng secrets and `--keylog`).
    pub tls_keylog_bad_lines: u64,
    /// HTTP/2 streams seen.
    pub http2_streams: u64,
    /// HTTP/2 header blocks with fields lost to an HPACK table never seen in full.
    pub hpack_desync: u64,
    /// HTTP/1 requests parsed.
    pub http_requests: u64,
    /// HTTP/1 responses parsed.
    pub http_responses: u64,
    /// HTTP exchanges emitted.
    pub exchanges: u64,
    /// Exchanges released ahead of an earlier-starting one still in progress, because
    /// the exchanges held back for ordering reached their cap (count or bytes).
    pub exchanges_released_early: u64,
    /// HTTP parse errors, by kind.
    pub http_errors: BTreeMap<&'static str, u64>,
    /// Bytes skipped while looking for the next HTTP message.
    pub http_resync_bytes: u64,
    /// Bodies kept only in part because of the body limit.
    pub bodies_truncated: u64,
    /// Bodies whose Content-Encoding could not be decoded.
    pub bodies_undecodable: u64,
    /// Connections that switched protocols (101) or tunnelled (CONNECT).
    pub upgrades: u64,
}

/// A counter two runs' values of which add up, and whose growth since a snapshot can be
/// taken: plain counts and keyed counts.
trait Counter {
    fn add(&mut self, other: &Self);
    fn since(&self, earlier: &Self) -> Self;
}

impl Counter for u64 {
    fn add(&mut self, other: &Self) {
        *self += other;
    }

    fn since(&self, earlier: &Self) -> Self {
        self.saturating_sub(*earlier)
    }
}

impl<K: Ord + Copy> Counter for BTreeMap<K, u64> {
    fn add(&mut self, other: &Self) {
        for (k, v) in other {
            *self.entry(*k).or_default() += v;
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        self.iter()
            .map(|(k, v)| (*k, v.saturating_sub(earlier.get(k).copied().unwrap_or(0))))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// [`Stats::merge`] and [`Stats::since`] from one list of every field. `since` builds a
/// `Stats` literal, so a counter added to the struct and not to the list does not compile.
macro_rules! merge_and_since {
    ($($field:ident),* $(,)?) => {
        impl Stats {
            /// Adds another run's counters to these.
            pub fn merge(&mut self, other: &Stats) {
                $(Counter::add(&mut self.$field, &other.$field);)*
            }

            /// What these cumulative counters added since `earlier` (a snapshot of the
            /// same run): a live sensor records each flush interval's share, so sums over
            /// runs stay true.
            pub fn since(&self, earlier: &Stats) -> Stats {
                Stats {
                    $($field: Counter::since(&self.$field, &earlier.$field),)*
                }
            }
        }
    };
}

merge_and_since!(
    files,
    files_failed,
    packets,
    bytes,
    capture_dropped,
    packets_by_linktype,
    undecodable,
    not_tcp,
    tunnelled,
    ip_fragments,
    ip_reassembled,
    ip_fragments_dropped,
    tcp_segments,
    flows,
    flows_midstream,
    flows_evicted,
    flows_shed,
    flows_timed_out,
    tcp_retransmissions,
    tcp_out_of_order,
    tcp_gaps,
    tcp_gap_bytes,
    tcp_buffer_overflows,
    tcp_overlap_conflicts,
    tcp_payload_bytes,
    non_http_flows_by_port,
    h2_connections,
    tls_connections,
    tls_decrypted,
    tls_decrypted_bytes,
    tls_not_decrypted,
    tls_bad_records,
    tls_records_too_long,
    tls_truncated_records,
    tls_keylog_bad_lines,
    http2_streams,
    hpack_desync,
    http_requests,
    http_responses,
    exchanges,
    exchanges_released_early,
    http_errors,
    http_resync_bytes,
    bodies_truncated,
    bodies_undecodable,
    upgrades,
);

impl Stats {
    /// Adds one to a keyed counter.
    pub fn bump(map: &mut BTreeMap<&'static str, u64>, key: &'static str) {
        *map.entry(key).or_default() += 1;
    }
}

fn linktype_name(lt: u32) -> &'static str {
    match lt {
        0 => "null",
        1 => "ethernet",
        12 | 14 | 101 => "raw-ip",
        105 => "802.11",
        108 => "loop",
        113 => "linux-sll",
        127 => "802.11-radiotap",
        228 => "ipv4",
        229 => "ipv6",
        239 => "nflog",
        274 => "ethernet-mpacket",
        276 => "linux-sll2",
        _ => "other",
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row =
            |f: &mut fmt::Formatter<'_>, name: &str, v: u64| writeln!(f, "  {name:<38} {v:>12}");
        writeln!(f, "input")?;
        row(f, "files", self.files)?;
        row(f, "files stopped by an error", self.files_failed)?;
        row(f, "packets", self.packets)?;
        row(f, "bytes", self.bytes)?;
        if self.capture_dropped > 0 {
            row(f, "dropped by kernel or interface", self.capture_dropped)?;
        }
        for (lt, n) in &self.packets_by_linktype {
            row(
                f,
                &format!("packets on linktype {lt} ({})", linktype_name(*lt)),
                *n,
            )?;
        }
        writeln!(f, "decode")?;
        for (why, n) in &self.undecodable {
            row(f, &format!("undecodable: {why}"), *n)?;
        }
        row(f, "not TCP", self.not_tcp)?;
        row(f, "tunnelled packets", self.tunnelled)?;
        row(f, "IP fragments", self.ip_fragments)?;
        row(f, "IP datagrams reassembled", self.ip_reassembled)?;
        row(f, "IP fragment sets dropped", self.ip_fragments_dropped)?;
        writeln!(f, "tcp")?;
        row(f, "segments", self.tcp_segments)?;
        row(f, "flows", self.flows)?;
        row(f, "flows caught midstream (no SYN)", self.flows_midstream)?;
        row(f, "flows evicted (table full)", self.flows_evicted)?;
        if self.flows_shed > 0 {
            row(f, "flows shed (memory budget)", self.flows_shed)?;
        }
        row(f, "flows timed out", self.flows_timed_out)?;
        row(f, "retransmitted segments", self.tcp_retransmissions)?;
        row(f, "out-of-order segments", self.tcp_out_of_order)?;
        row(f, "gaps", self.tcp_gaps)?;
        row(f, "bytes lost in gaps", self.tcp_gap_bytes)?;
        row(f, "buffer overflows", self.tcp_buffer_overflows)?;
        row(
            f,
            "overlaps with conflicting data",
            self.tcp_overlap_conflicts,
        )?;
        row(f, "payload bytes delivered", self.tcp_payload_bytes)?;
        for (port, n) in &self.non_http_flows_by_port {
            row(f, &format!("non-HTTP flows to port {port}"), *n)?;
        }
        writeln!(f, "http")?;
        row(f, "HTTP/2 connections", self.h2_connections)?;
        row(f, "HTTP/2 streams", self.http2_streams)?;
        row(f, "HPACK blocks with unknown fields", self.hpack_desync)?;
        row(f, "requests", self.http_requests)?;
        row(f, "responses", self.http_responses)?;
        row(f, "exchanges", self.exchanges)?;
        if self.exchanges_released_early > 0 {
            row(
                f,
                "exchanges released out of order (cap)",
                self.exchanges_released_early,
            )?;
        }
        for (why, n) in &self.http_errors {
            row(f, &format!("parse errors: {why}"), *n)?;
        }
        row(f, "bytes skipped to resynchronise", self.http_resync_bytes)?;
        row(f, "bodies truncated by the limit", self.bodies_truncated)?;
        row(
            f,
            "bodies with undecodable encoding",
            self.bodies_undecodable,
        )?;
        row(f, "protocol switches and tunnels", self.upgrades)?;
        writeln!(f, "tls")?;
        row(f, "connections", self.tls_connections)?;
        row(f, "connections decrypted", self.tls_decrypted)?;
        row(f, "application bytes decrypted", self.tls_decrypted_bytes)?;
        for (why, n) in &self.tls_not_decrypted {
            row(f, &format!("not decrypted: {why}"), *n)?;
        }
        row(f, "records failing their tag", self.tls_bad_records)?;
        row(f, "records too long", self.tls_records_too_long)?;
        row(f, "records cut short", self.tls_truncated_records)?;
        row(f, "bad key log lines", self.tls_keylog_bad_lines)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_what_merge_added() {
        let mut earlier = Stats {
            packets: 10,
            flows_shed: 1,
            ..Default::default()
        };
        Stats::bump(&mut earlier.undecodable, "not IP");
        let mut later = earlier.clone();
        let mut more = Stats {
            packets: 5,
            capture_dropped: 2,
            ..Default::default()
        };
        Stats::bump(&mut more.undecodable, "not IP");
        Stats::bump(&mut more.http_errors, "bad head");
        later.merge(&more);
        let d = later.since(&earlier);
        assert_eq!(d.packets, 5);
        assert_eq!(d.capture_dropped, 2);
        assert_eq!(d.flows_shed, 0);
        assert_eq!(d.undecodable.get("not IP"), Some(&1));
        assert_eq!(d.http_errors.get("bad head"), Some(&1));
        assert!(d.packets_by_linktype.is_empty());
    }
}

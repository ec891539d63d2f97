/*!
Live capture from a network interface through libpcap (cargo feature `live`).

Opening checks everything a user can get wrong before the sensor starts, and names the
interface in the error: an interface that does not exist or may not be opened (no
CAP_NET_RAW), a BPF filter that does not compile, a link type the decoder does not know.
The capture runs in immediate mode (packets are handed over as they arrive, not when the
kernel's block fills) with a short read timeout so a stop request is seen on an idle link.
Kernel and interface drops are read from libpcap's counters about once a second.
*/

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap::{Active, Capture};

use super::source::{linktype_supported, Captured, Counters, OwnedPacket, PacketSource};

/// How to open an interface.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Kernel capture buffer in bytes.
    pub buffer_size: u32,
    /// A BPF filter (tcpdump syntax).
    pub filter: Option<String>,
}

/// How long a read waits on an idle link before the stop flag is looked at again.
const READ_TIMEOUT_MS: i32 = 100;
/// How long a stopping capture keeps reading what the kernel still holds.
const DRAIN: Duration = Duration::from_secs(1);
/// How often libpcap's drop counters are read.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// An opened interface.
pub struct LiveSource {
    iface: String,
    cap: Capture<Active>,
    linktype: u32,
    counters: Arc<Counters>,
}

impl LiveSource {
    /// Opens `iface` and applies the filter; errors name the interface (and the filter).
    pub fn open(iface: &str, opts: &LiveOptions) -> Result<LiveSource, String> {
        let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let cap = Capture::from_device(iface)
            .map_err(|e| format!("interface {iface}: {e}"))?
            .promisc(true)
            .snaplen(clamp(opts.snaplen))
            .buffer_size(clamp(opts.buffer_size))
            .immediate_mode(true)
            .timeout(READ_TIMEOUT_MS)
            .open()
            .map_err(|e| {
                let hint = if e.to_string().contains("ermission") {
                    " (capturing needs root or CAP_NET_RAW and CAP_NET_ADMIN; see docs/deploy.md)"
                } else {
                    ""
                };
                format!("interface {iface}: cannot capture: {e}{hint}")
            })?;
        let mut cap = cap;
        let dl = cap.get_datalink();
        let linktype = dl.0 as u32;
        if !linktype_supported(linktype) {
            let name = dl.get_name().unwrap_or_else(|_| "unknown".into());
            return Err(format!(
                "interface {iface}: link type {linktype} ({name}) cannot be decoded (supported: Ethernet, Linux cooked v1/v2, BSD loopback, raw IP, 802.11, NFLOG)"
            ));
        }
        if let Some(f) = &opts.filter {
            cap.filter(f, true)
                .map_err(|e| format!("interface {iface}: bad --filter {f:?}: {e}"))?;
        }
        Ok(LiveSource {
            iface: iface.to_string(),
            cap,
            linktype,
            counters: Arc::default(),
        })
    }
}

/// Adds the growth of a libpcap 32-bit counter (which wraps on long runs) to a total.
fn add_wrapping(total: &std::sync::atomic::AtomicU64, last: &mut u32, now: u32) {
    let grew = now.wrapping_sub(*last);
    *last = now;
    total.fetch_add(u64::from(grew), Ordering::Relaxed);
}

impl PacketSource for LiveSource {
    fn name(&self) -> String {
        self.iface.clone()
    }

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    fn run(
        self: Box<Self>,
        out: &mut dyn FnMut(Captured) -> bool,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        let LiveSource {
            iface,
            mut cap,
            linktype,
            counters,
        } = *self;
        let (mut last_drop, mut last_ifdrop) = (0u32, 0u32);
        let mut next_stats = Instant::now() + STATS_EVERY;
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                drain_until = Some(Instant::now() + DRAIN);
            }
            match cap.next_packet() {
                Ok(p) => {
                    let h = p.header;
                    // time_t and suseconds_t are 32 bits on some targets.
                    #[allow(clippy::unnecessary_cast)]
                    let ts = (h.ts.tv_sec as i64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(h.ts.tv_usec as i64 * 1000);
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                    let packet = OwnedPacket {
                        ts,
                        linktype,
                        orig_len: h.len,
                        data: p.data.to_vec(),
                    };
                    if !out(Captured::Packet(packet)) {
                        break;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    if drain_until.is_some() {
                        break;
                    }
                }
                Err(e) => return Err(format!("interface {iface}: {e}")),
            }
            let now = Instant::now();
            if now >= next_stats || drain_until.is_some_and(|d| now >= d) {
                next_stats = now + STATS_EVERY;
                if let Ok(s) = cap.stats() {
                    add_wrapping(&counters.kernel_dropped, &mut last_drop, s.dropped);
                    add_wrapping(&counters.interface_dropped, &mut last_ifdrop, s.if_dropped);
                }
            }
            if drain_until.is_some_and(|d| now >= d) {
                break;
            }
        }
        if let Ok(s) = cap.stats() {
            add_wrapping(&counters.kernel_dropped, &mut last_drop, s.dropped);
            add_wrapping(&counters.interface_dropped, &mut last_ifdrop, s.if_dropped);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_counters_keep_counting() {
        let total = std::sync::atomic::AtomicU64::new(0);
        let mut last = u32::MAX - 1;
        add_wrapping(&total, &mut last, 3);
        assert_eq!(total.load(Ordering::Relaxed), 5);
        add_wrapping(&total, &mut last, 3);
        assert_eq!(total.load(Ordering::Relaxed), 5);
    }
}

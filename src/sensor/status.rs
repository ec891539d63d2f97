/*!
What a running sensor shows: a [`Snapshot`] of its counters, rates computed between two
snapshots by a [`Meter`] (time is an argument, so it is tested without clocks), the
one-line status a terminal shows, and the process's resident memory from /proc.
*/

use std::fmt;
use std::time::Duration;

/// Counters of a running sensor at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Time since the sensor started.
    pub uptime: Duration,
    /// Packets analysed.
    pub packets: u64,
    /// Bytes of those packets (as captured).
    pub bytes: u64,
    /// Connections tracked now.
    pub flows_open: usize,
    /// Connections seen since the start.
    pub flows: u64,
    /// Exchanges inventoried since the start.
    pub exchanges: u64,
    /// Endpoints in the inventory at the last flush.
    pub endpoints: usize,
    /// Packets the kernel dropped (buffer full), all interfaces.
    pub kernel_dropped: u64,
    /// Packets the interfaces or drivers dropped.
    pub interface_dropped: u64,
    /// Flows evicted from a full table and shed to stay within the budget.
    pub flows_evicted: u64,
    /// Of those, shed for memory.
    pub flows_shed: u64,
    /// Resident memory now, when the platform says.
    pub rss: Option<u64>,
    /// The most resident memory so far.
    pub peak_rss: Option<u64>,
    /// The memory budget.
    pub budget: u64,
    /// Flushes done.
    pub flushes: u64,
    /// Writes of the inventory that failed in a row (the database is unreachable, say):
    /// what was observed since the last good one is held and written with the next.
    pub failed_writes: u64,
}

/// Rates between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Packets per second.
    pub packets: f64,
    /// Megabits per second.
    pub mbit: f64,
    /// Exchanges per second.
    pub exchanges: f64,
}

/// Computes rates from successive snapshots.
#[derive(Debug, Default)]
pub struct Meter {
    last: Option<(Duration, u64, u64, u64)>,
    rates: Rates,
}

impl Meter {
    /// Takes a snapshot; returns the rates since the previous one (zero at first).
    pub fn sample(&mut self, s: &Snapshot) -> Rates {
        if let Some((t, p, b, e)) = self.last {
            let dt = s.uptime.saturating_sub(t).as_secs_f64();
            if dt > 0.0 {
                self.rates = Rates {
                    packets: s.packets.saturating_sub(p) as f64 / dt,
                    mbit: s.bytes.saturating_sub(b) as f64 * 8.0 / dt / 1e6,
                    exchanges: s.exchanges.saturating_sub(e) as f64 / dt,
                };
            }
        }
        self.last = Some((s.uptime, s.packets, s.bytes, s.exchanges));
        self.rates
    }
}

fn mib(n: u64) -> String {
    format!("{:.0}M", n as f64 / (1 << 20) as f64)
}

/// The status line: `12.3k pkt/s 45.6 Mbit/s | 1234 flows | 56 ex/s | 34 endpoints |
/// drops 0 kernel 0 if | mem 40M/256M`.
pub struct Line<'a>(pub &'a Snapshot, pub Rates);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, r) = (self.0, self.1);
        write!(
            f,
            "{:.0} pkt/s {:.1} Mbit/s | {} flows | {:.0} ex/s, {} exchanges | {} endpoints | drops {} kernel {} if",
            r.packets, r.mbit, s.flows_open, r.exchanges, s.exchanges, s.endpoints, s.kernel_dropped, s.interface_dropped
        )?;
        if s.flows_shed > 0 {
            write!(f, ", {} flows shed", s.flows_shed)?;
        }
        if s.failed_writes > 0 {
            write!(
                f,
                " | NOT SAVED: {} writes failed, retrying",
                s.failed_writes
            )?;
        }
        match s.rss {
            Some(rss) => write!(f, " | mem {}/{}", mib(rss), mib(s.budget)),
            None => write!(f, " | budget {}", mib(s.budget)),
        }
    }
}

/// Resident and peak resident memory of this process in bytes (Linux; None elsewhere).
pub fn memory() -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_between_snapshots() {
        let mut m = Meter::default();
        let mut s = Snapshot::default();
        assert_eq!(m.sample(&s), Rates::default());
        s.uptime = Duration::from_secs(2);
        s.packets = 2000;
        s.bytes = 250_000;
        s.exchanges = 10;
        let r = m.sample(&s);
        assert_eq!(r.packets, 1000.0);
        assert_eq!(r.mbit, 1.0);
        assert_eq!(r.exchanges, 5.0);
        // No time passed: the last rates stand.
        assert_eq!(m.sample(&s), r);
    }

    #[test]
    fn the_line_says_drops_and_memory() {
        let s = Snapshot {
            flows_open: 3,
            endpoints: 34,
            kernel_dropped: 7,
            rss: Some(40 << 20),
            budget: 256 << 20,
            ..Default::default()
        };
        let line = Line(&s, Rates::default()).to_string();
        assert!(line.contains("34 endpoints"), "{line}");
        assert!(line.contains("drops 7 kernel 0 if"), "{line}");
        assert!(line.contains("mem 40M/256M"), "{line}");
        assert!(!line.contains("NOT SAVED"), "{line}");
        let failing = Snapshot {
            failed_writes: 3,
            ..s
        };
        let line = Line(&failing, Rates::default()).to_string();
        assert!(line.contains("NOT SAVED: 3 writes failed"), "{line}");
    }

    #[test]
    fn memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let (rss, peak) = memory();
            assert!(rss.unwrap() > 0 && peak.unwrap() >= rss.unwrap());
        }
    }
}

/*!
The signals a sensor answers: SIGINT and SIGTERM ask it to flush and exit, SIGHUP to
reopen its log file (after logrotate moved it). Handlers only set flags (signal-hook);
the capture loop looks at them between packets.
*/

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Flags set by signal handlers.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    stop: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers (SIGINT, SIGTERM, SIGHUP).
    pub fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let s = Signals::default();
        signal_hook::flag::register(SIGINT, Arc::clone(&s.stop))?;
        signal_hook::flag::register(SIGTERM, Arc::clone(&s.stop))?;
        signal_hook::flag::register(SIGHUP, Arc::clone(&s.hup))?;
        Ok(s)
    }

    /// True once SIGINT or SIGTERM arrived (or [`Signals::request_stop`] was called).
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Asks the sensor to stop, as SIGTERM would.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True once per SIGHUP (or burst of them): the flag is cleared by reading it.
    pub fn take_hup(&self) -> bool {
        self.hup.swap(false, Ordering::Relaxed)
    }
}

//! The pump's side of the round-trip breakdown (`crates/core`'s `trace`): whether pumps
//! trace, the clock they read, and what JS reads back. On when the process starts with
//! `ALKDEV_IROH_TRACE=1`; each pump decides once, at creation, so a pump that does not
//! trace pays one `Option` check per hand-over.

use std::sync::{Mutex, OnceLock};

use alkdev_iroh_core::trace::{Stage, StageLog};
use napi_derive::napi;

static ENABLED: OnceLock<bool> = OnceLock::new();

pub(crate) fn enabled() -> bool {
    *ENABLED.get_or_init(|| std::env::var_os("ALKDEV_IROH_TRACE").is_some_and(|v| v == "1"))
}

/// Whether event pumps stamp their hand-overs (`ALKDEV_IROH_TRACE=1` at start). Read once
/// by `lib/trace.js`.
#[napi(catch_unwind)]
pub fn pump_trace_enabled() -> bool {
    enabled()
}

/// CLOCK_MONOTONIC in nanoseconds: on Linux the clock of Node's `process.hrtime`, shared by
/// every process of the machine, so stamps of both ends of a connection compare.
#[cfg(unix)]
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write into; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Elsewhere only stamps of one process compare.
#[cfg(not(unix))]
pub(crate) fn now_ns() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}

/// A tracing pump's log.
#[derive(Default)]
pub(crate) struct PumpTrace(Mutex<StageLog>);

impl PumpTrace {
    pub fn record(&self, stage: Stage, at_ns: u64, frames: usize) {
        if frames > 0 {
            if let Ok(mut log) = self.0.lock() {
                log.record(stage, at_ns, frames);
            }
        }
    }

    pub fn stamps(&self) -> PumpTraceStamps {
        let Ok(log) = self.0.lock() else { return PumpTraceStamps::default() };
        let of = |stage| log.stamps(stage).iter().map(|&t| t as f64).collect();
        PumpTraceStamps { taken: of(Stage::Taken), written: of(Stage::Written), read: of(Stage::Read), posted: of(Stage::Posted) }
    }
}

/// A pump's stamps so far, in CLOCK_MONOTONIC nanoseconds, one per frame in frame order.
#[napi(object, object_from_js = false)]
#[derive(Default)]
pub struct PumpTraceStamps {
    /// Frames sent: when the writer took each from the outbox.
    pub taken: Vec<f64>,
    /// Frames sent: when QUIC accepted the write that held it.
    pub written: Vec<f64>,
    /// Frames received: when the reader got the bytes that completed it.
    pub read: Vec<f64>,
    /// Frames received: when the reader handed its batch to the JS thread.
    pub posted: Vec<f64>,
}

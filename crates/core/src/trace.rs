//! Per-frame timestamps of the pump's hand-overs, for the benchmark's round-trip
//! breakdown (`BENCH_RTT_TRACE`, bench/README.md). Off unless asked for: a pump that does
//! not trace holds no log and pays one `Option` check per hand-over.
//!
//! Frames of one direction of one stream pass every stage in order, so the k-th stamp of
//! each stage belongs to the k-th frame: a hand-over of n frames at once records its time
//! n times, and stamps of different stages (and of the peer's JS) join by position.

use bytes::Bytes;

use crate::codec;

/// Where a frame was when it was stamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The writer took it from the outbox.
    Taken = 0,
    /// QUIC accepted the write that held it (in its send buffer, not yet on the wire).
    Written = 1,
    /// The reader got the bytes that completed it.
    Read = 2,
    /// The reader handed the batch that holds it to the JS thread.
    Posted = 3,
}

const STAGES: usize = 4;
/// A log keeps at most this many stamps per stage (8 MiB each), so a trace left on during
/// a flood stops recording rather than growing without bound.
pub const MAX_STAMPS: usize = 1 << 20;

/// One pump's stamps, in nanoseconds of whatever clock the caller reads.
#[derive(Debug, Default)]
pub struct StageLog {
    stamps: [Vec<u64>; STAGES],
}

impl StageLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stamps `frames` frames as having passed `stage` at `at_ns`.
    pub fn record(&mut self, stage: Stage, at_ns: u64, frames: usize) {
        let log = &mut self.stamps[stage as usize];
        let n = frames.min(MAX_STAMPS - log.len());
        log.resize(log.len() + n, at_ns);
    }

    /// The stamps of `stage`, one per frame, in frame order.
    pub fn stamps(&self, stage: Stage) -> &[u64] {
        &self.stamps[stage as usize]
    }
}

/// How many frames the writer took: the outbox's runs each hold whole frames.
pub fn frames_in(runs: &[Bytes]) -> usize {
    runs.iter().map(|run| codec::check_frames(run, usize::MAX).unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Bytes {
        let mut out = bytes::BytesMut::new();
        for p in payloads {
            codec::encode_frame(p, usize::MAX, &mut out).unwrap();
        }
        out.freeze()
    }

    #[test]
    fn a_hand_over_of_n_frames_stamps_each_of_them() {
        let mut log = StageLog::new();
        log.record(Stage::Taken, 10, 2);
        log.record(Stage::Taken, 20, 1);
        log.record(Stage::Taken, 30, 0);
        log.record(Stage::Read, 15, 3);
        assert_eq!(log.stamps(Stage::Taken), [10, 10, 20]);
        assert_eq!(log.stamps(Stage::Read), [15, 15, 15]);
        assert!(log.stamps(Stage::Written).is_empty());
        assert!(log.stamps(Stage::Posted).is_empty());
    }

    #[test]
    fn a_full_log_stops_recording() {
        let mut log = StageLog::new();
        log.record(Stage::Posted, 1, MAX_STAMPS - 1);
        log.record(Stage::Posted, 2, 5);
        log.record(Stage::Posted, 3, 1);
        let stamps = log.stamps(Stage::Posted);
        assert_eq!(stamps.len(), MAX_STAMPS);
        assert_eq!(stamps[MAX_STAMPS - 1], 2);
    }

    #[test]
    fn counts_the_frames_of_every_run() {
        let runs = [frames(&[b"a", b"", b"ccc"]), frames(&[b"dd"]), Bytes::new()];
        assert_eq!(frames_in(&runs), 4);
        assert_eq!(frames_in(&[]), 0);
    }
}

//! The runs a member keeps to answer its neighbours' repair requests: every run it sent or
//! received, bounded by bytes and by age (both options), oldest dropped first.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;

use super::envelope::{Run, StreamKey};

#[derive(Debug, Clone, Copy)]
pub struct RetentionLimits {
    pub max_bytes: usize,
    pub max_age_ms: u64,
}

impl Default for RetentionLimits {
    fn default() -> Self {
        RetentionLimits { max_bytes: 64 * 1024 * 1024, max_age_ms: 120_000 }
    }
}

#[derive(Debug)]
struct Kept {
    end: u64,
    message: Bytes,
}

#[derive(Debug, Default)]
pub struct RetentionLog {
    limits: RetentionLimits,
    streams: HashMap<StreamKey, BTreeMap<u64, Kept>>,
    /// (stored at, stream, first), oldest first.
    order: VecDeque<(u64, StreamKey, u64)>,
    bytes: usize,
}

impl RetentionLog {
    pub fn new(limits: RetentionLimits) -> Self {
        RetentionLog { limits, ..Default::default() }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps `run` (its message as gossiped), stored at `now_ms`.
    pub fn keep(&mut self, run: &Run, now_ms: u64) {
        let runs = self.streams.entry(run.key).or_default();
        if runs.contains_key(&run.first) {
            return;
        }
        runs.insert(run.first, Kept { end: run.end(), message: run.message.clone() });
        self.bytes += run.message.len();
        self.order.push_back((now_ms, run.key, run.first));
        self.evict(now_ms);
    }

    /// Drops what is older than the age limit at `now_ms` or past the byte limit.
    pub fn evict(&mut self, now_ms: u64) {
        while let Some(&(at, key, first)) = self.order.front() {
            let too_old = now_ms.saturating_sub(at) > self.limits.max_age_ms;
            if !too_old && self.bytes <= self.limits.max_bytes {
                break;
            }
            self.order.pop_front();
            if let Some(runs) = self.streams.get_mut(&key) {
                if let Some(kept) = runs.remove(&first) {
                    self.bytes -= kept.message.len();
                }
                if runs.is_empty() {
                    self.streams.remove(&key);
                }
            }
        }
    }

    /// The kept runs of `key` that hold any sequence number in `from..to`, in order.
    pub fn range(&self, key: &StreamKey, from: u64, to: u64) -> Vec<Bytes> {
        let Some(runs) = self.streams.get(key) else { return Vec::new() };
        // A run that starts before `from` may still reach into it.
        let start = runs.range(..=from).next_back().map_or(from, |(first, _)| *first);
        runs.range(start..)
            .take_while(|(first, _)| **first < to)
            .filter(|(_, k)| k.end > from)
            .map(|(_, k)| k.message.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: u64, count: u64, size: usize) -> Run {
        let message = Bytes::from(vec![first as u8; size]);
        Run { key: StreamKey { author: [1; 32], session: 1 }, first, count, frames: message.clone(), message }
    }

    fn firsts(log: &RetentionLog, from: u64, to: u64) -> Vec<u8> {
        log.range(&StreamKey { author: [1; 32], session: 1 }, from, to).iter().map(|m| m[0]).collect()
    }

    #[test]
    fn serves_the_runs_that_overlap_a_range() {
        let mut log = RetentionLog::new(RetentionLimits::default());
        for first in [0, 3, 6, 9] {
            log.keep(&run(first, 3, 10), 0);
        }
        assert_eq!(firsts(&log, 4, 7), [3, 6]);
        assert_eq!(firsts(&log, 0, u64::MAX), [0, 3, 6, 9]);
        assert_eq!(firsts(&log, 12, u64::MAX), Vec::<u8>::new());
        assert!(log.range(&StreamKey { author: [2; 32], session: 1 }, 0, 9).is_empty());
    }

    #[test]
    fn drops_the_oldest_past_the_byte_limit() {
        let mut log = RetentionLog::new(RetentionLimits { max_bytes: 25, max_age_ms: u64::MAX });
        for first in [0, 3, 6] {
            log.keep(&run(first, 3, 10), 0);
        }
        assert_eq!(firsts(&log, 0, u64::MAX), [3, 6]);
        assert_eq!(log.bytes(), 20);
    }

    #[test]
    fn drops_what_is_too_old() {
        let mut log = RetentionLog::new(RetentionLimits { max_bytes: usize::MAX, max_age_ms: 100 });
        log.keep(&run(0, 1, 10), 0);
        log.keep(&run(1, 1, 10), 50);
        log.evict(120);
        assert_eq!(firsts(&log, 0, u64::MAX), [1]);
        log.evict(200);
        assert_eq!(log.bytes(), 0);
    }

    #[test]
    fn keeping_a_run_twice_counts_it_once() {
        let mut log = RetentionLog::new(RetentionLimits::default());
        log.keep(&run(0, 1, 10), 0);
        log.keep(&run(0, 1, 10), 0);
        assert_eq!(log.bytes(), 10);
    }
}

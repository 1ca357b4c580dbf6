//! One author session as a receiver sees it: runs in, events out exactly once and in
//! order. Runs that arrive early are held; what is missing is a range the member asks its
//! neighbours for (see `topic::repair`); a range nobody has any more is skipped, and the
//! caller reports it as a gap.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::envelope::Run;
use crate::codec::HEADER_LEN;

#[derive(Debug)]
pub struct Stream {
    /// The next sequence number to deliver.
    next: u64,
    /// Runs at or past `next` that cannot be delivered yet, by first sequence number.
    ahead: BTreeMap<u64, Run>,
    ahead_bytes: usize,
    /// One past the highest sequence number known to exist (from runs and heads).
    known_end: u64,
}

/// Drops the first `n` frames of `frames` (wire format, whole frames).
fn skip_frames(frames: &Bytes, n: u64) -> Bytes {
    let mut at = 0;
    for _ in 0..n {
        let Some(header) = frames.get(at..at + HEADER_LEN) else { break };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        at += HEADER_LEN + len;
    }
    frames.slice(at.min(frames.len())..)
}

impl Stream {
    /// A session first heard of at `seq`: what came before was dispatched before this
    /// member knew of it, and is not delivered.
    pub fn starting_at(seq: u64) -> Self {
        Stream { next: seq, ahead: BTreeMap::new(), ahead_bytes: 0, known_end: seq }
    }

    pub fn next(&self) -> u64 {
        self.next
    }

    pub fn known_end(&self) -> u64 {
        self.known_end
    }

    /// Bytes held in runs that wait for an earlier one.
    pub fn held_bytes(&self) -> usize {
        self.ahead_bytes
    }

    /// Takes a run; returns the events now deliverable, in order, as wire-format frames
    /// (one `Bytes` per run). Empty for a duplicate or a run held for later.
    pub fn accept(&mut self, run: Run) -> Vec<Bytes> {
        self.known_end = self.known_end.max(run.end());
        if run.end() <= self.next || self.ahead.contains_key(&run.first) {
            return Vec::new();
        }
        if run.first > self.next {
            self.ahead_bytes += run.frames.len();
            self.ahead.insert(run.first, run);
            return Vec::new();
        }
        let mut out = vec![skip_frames(&run.frames, self.next - run.first)];
        self.next = run.end();
        self.release(&mut out);
        out
    }

    /// Delivers held runs that have become contiguous.
    fn release(&mut self, out: &mut Vec<Bytes>) {
        while let Some(entry) = self.ahead.first_entry() {
            let run = entry.get();
            if run.first > self.next {
                break;
            }
            let run = entry.remove();
            self.ahead_bytes -= run.frames.len();
            if run.end() > self.next {
                out.push(skip_frames(&run.frames, self.next - run.first));
                self.next = run.end();
            }
        }
    }

    /// The author announced it has published `next` events.
    pub fn note_end(&mut self, next: u64) {
        self.known_end = self.known_end.max(next);
    }

    /// The first range this member lacks: `next` up to the next held run, or up to the
    /// known end.
    pub fn missing(&self) -> Option<(u64, u64)> {
        let to = self.ahead.keys().next().copied().unwrap_or(self.known_end);
        (to > self.next).then_some((self.next, to))
    }

    /// Gives up on everything before `to` (nobody has it any more) and returns what is
    /// deliverable after it.
    pub fn skip_to(&mut self, to: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        if to > self.next {
            self.next = to;
            self.known_end = self.known_end.max(to);
            self.release(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_frame;
    use crate::topic::envelope::StreamKey;
    use bytes::BytesMut;

    fn run(first: u64, count: u64) -> Run {
        let mut frames = BytesMut::new();
        for seq in first..first + count {
            encode_frame(format!("{{\"type\":\"e\",\"detail\":{seq}}}").as_bytes(), 1024, &mut frames).unwrap();
        }
        let frames = frames.freeze();
        Run { key: StreamKey { author: [1; 32], session: 1 }, first, count, message: frames.clone(), frames }
    }

    /// The sequence numbers in delivered frames.
    fn seqs(out: &[Bytes]) -> Vec<u64> {
        let mut seqs = Vec::new();
        for frames in out {
            let mut at = 0;
            while at < frames.len() {
                let len = u32::from_be_bytes(frames[at..at + 4].try_into().unwrap()) as usize;
                let text = std::str::from_utf8(&frames[at + 4..at + 4 + len]).unwrap();
                let detail = text.trim_end_matches('}').rsplit(':').next().unwrap();
                seqs.push(detail.parse().unwrap());
                at += 4 + len;
            }
        }
        seqs
    }

    #[test]
    fn in_order_runs_are_delivered_at_once() {
        let mut s = Stream::starting_at(0);
        assert_eq!(seqs(&s.accept(run(0, 3))), [0, 1, 2]);
        assert_eq!(seqs(&s.accept(run(3, 1))), [3]);
        assert_eq!(s.missing(), None);
    }

    #[test]
    fn an_early_run_waits_and_the_hole_is_missing() {
        let mut s = Stream::starting_at(0);
        assert!(s.accept(run(5, 2)).is_empty());
        assert_eq!(s.missing(), Some((0, 5)));
        assert_eq!(seqs(&s.accept(run(0, 2))), [0, 1]);
        assert_eq!(s.missing(), Some((2, 5)));
        assert_eq!(seqs(&s.accept(run(2, 3))), [2, 3, 4, 5, 6]);
        assert_eq!((s.missing(), s.held_bytes()), (None, 0));
    }

    #[test]
    fn duplicates_and_replays_are_not_delivered_twice() {
        let mut s = Stream::starting_at(0);
        s.accept(run(0, 2));
        assert!(s.accept(run(0, 2)).is_empty());
        assert!(s.accept(run(4, 1)).is_empty());
        assert!(s.accept(run(4, 1)).is_empty());
        assert_eq!(seqs(&s.accept(run(2, 2))), [2, 3, 4]);
    }

    #[test]
    fn a_run_that_overlaps_what_was_delivered_is_trimmed() {
        let mut s = Stream::starting_at(3);
        assert_eq!(seqs(&s.accept(run(1, 4))), [3, 4]);
    }

    #[test]
    fn heads_reveal_a_lost_last_run() {
        let mut s = Stream::starting_at(0);
        s.accept(run(0, 2));
        s.note_end(5);
        assert_eq!(s.missing(), Some((2, 5)));
    }

    #[test]
    fn a_gap_is_skipped_and_delivery_goes_on() {
        let mut s = Stream::starting_at(0);
        s.accept(run(0, 1));
        assert!(s.accept(run(10, 2)).is_empty());
        assert_eq!(seqs(&s.skip_to(10)), [10, 11]);
        assert_eq!(s.next(), 12);
        assert_eq!(seqs(&s.accept(run(12, 1))), [12]);
    }
}

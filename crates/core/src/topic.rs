//! Topics: many members, no hub. iroh-gossip fans each message out; what it does not
//! promise (every event once, in order per author, or a reported gap) is built here:
//! signed runs of events (`envelope`), per-author sequencing (`stream`) and the log that
//! answers repair requests (`retention`). The binding's `src/topic.rs` runs them.

pub mod envelope;
pub mod retention;
pub mod stream;

use crate::codec::HEADER_LEN;

/// The gossip message size every member uses: a run carries as many events as fit.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A topic's id from its name: the same name is the same topic on every member.
pub fn topic_id(name: &str) -> envelope::TopicId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"alkdev-iroh topic\0");
    hasher.update(name.as_bytes());
    *hasher.finalize().as_bytes()
}

/// Cuts staged frames (whole frames, wire format) into runs whose frames take at most
/// `max_run` bytes each; a frame larger than that is a run of its own. Returns byte ranges
/// and their frame counts.
pub fn cut_runs(frames: &[u8], max_run: usize) -> Vec<(std::ops::Range<usize>, u64)> {
    let mut runs = Vec::new();
    let (mut start, mut at, mut count) = (0, 0, 0u64);
    while at + HEADER_LEN <= frames.len() {
        let len = u32::from_be_bytes([frames[at], frames[at + 1], frames[at + 2], frames[at + 3]]) as usize;
        let end = (at + HEADER_LEN + len).min(frames.len());
        if count > 0 && end - start > max_run {
            runs.push((start..at, count));
            (start, count) = (at, 0);
        }
        count += 1;
        at = end;
    }
    if count > 0 {
        runs.push((start..at, count));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_frame;
    use bytes::BytesMut;

    #[test]
    fn names_map_to_distinct_stable_ids() {
        assert_eq!(topic_id("a"), topic_id("a"));
        assert_ne!(topic_id("a"), topic_id("b"));
    }

    #[test]
    fn runs_hold_as_many_frames_as_fit() {
        let mut frames = BytesMut::new();
        for size in [10, 10, 10, 50, 10] {
            encode_frame(&vec![b'x'; size], 1024, &mut frames).unwrap();
        }
        let runs = cut_runs(&frames, 30);
        assert_eq!(runs.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [2, 1, 1, 1]);
        assert_eq!(runs.last().unwrap().0.end, frames.len());
        assert!(runs.windows(2).all(|w| w[0].0.end == w[1].0.start));
    }
}

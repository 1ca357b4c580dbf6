//! What a topic member puts into one gossip message, and what a repair request asks for.
//!
//! A *run* is a range of one author's consecutive events, signed once: verifying one
//! signature per event would cap each receiver at its verification rate. A *heads*
//! announcement says how far an author's session has got, so that a member that lost the
//! last run of a burst notices. Both carry the author's node id; the signature covers the
//! topic too, so a run cannot be replayed into another topic.
//!
//! ```text
//! run:    0x01 | author [32] | session u64 | first u64 | frames ... | signature [64]
//! heads:  0x02 | author [32] | session u64 | next u64  | nonce u64  | signature [64]
//! ```
//! Integers are big-endian; `frames` are events in the stream wire format (4-byte length,
//! then the JSON text), the same bytes JS staged.

use bytes::{BufMut, Bytes, BytesMut};
use iroh_base::{PublicKey, SecretKey, Signature};

use crate::codec::{self, FrameError, HEADER_LEN};

const RUN: u8 = 1;
const HEADS: u8 = 2;
const KEY_LEN: usize = 32;
const SIGNATURE_LEN: usize = 64;
/// kind, author, session, first sequence.
const RUN_HEADER: usize = 1 + KEY_LEN + 8 + 8;
const HEADS_LEN: usize = 1 + KEY_LEN + 8 + 8 + 8 + SIGNATURE_LEN;
const RUN_CONTEXT: &[u8] = b"alkdev-iroh/topic/run\0";
const HEADS_CONTEXT: &[u8] = b"alkdev-iroh/topic/heads\0";

/// Bytes a run adds around its frames.
pub const RUN_OVERHEAD: usize = RUN_HEADER + SIGNATURE_LEN;

/// A topic's id: 32 bytes, the same on every member.
pub type TopicId = [u8; 32];

/// One author's session: a member numbers its events from 0 each time it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub author: [u8; 32],
    pub session: u64,
}

/// A decoded run: `count` events numbered from `first`, and the message it came in (the
/// bytes a repair hands on unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub key: StreamKey,
    pub first: u64,
    pub count: u64,
    /// The events, in wire format.
    pub frames: Bytes,
    pub message: Bytes,
}

impl Run {
    /// One past the last sequence number it carries.
    pub fn end(&self) -> u64 {
        self.first + self.count
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub key: StreamKey,
    /// The number of events the session has published: the next sequence number.
    pub next: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    Run(Run),
    Heads(Heads),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not a message of this protocol, or cut short.
    Malformed(String),
    /// Well formed, but the signature is not the author's over this topic.
    BadSignature { author: [u8; 32] },
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::Malformed(why) => write!(f, "malformed topic message: {why}"),
            EnvelopeError::BadSignature { author } => {
                write!(f, "a topic message claiming author {} has a signature that does not verify", hex(author))
            }
        }
    }
}

impl std::error::Error for EnvelopeError {}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn signed_run(topic: &TopicId, session: u64, first: u64, frames: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(RUN_CONTEXT.len() + 32 + 16 + frames.len());
    m.extend_from_slice(RUN_CONTEXT);
    m.extend_from_slice(topic);
    m.extend_from_slice(&session.to_be_bytes());
    m.extend_from_slice(&first.to_be_bytes());
    m.extend_from_slice(frames);
    m
}

fn signed_heads(topic: &TopicId, session: u64, next: u64, nonce: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADS_CONTEXT.len() + 32 + 24);
    m.extend_from_slice(HEADS_CONTEXT);
    m.extend_from_slice(topic);
    m.extend_from_slice(&session.to_be_bytes());
    m.extend_from_slice(&next.to_be_bytes());
    m.extend_from_slice(&nonce.to_be_bytes());
    m
}

/// Encodes and signs a run of `frames` (whole frames in wire format, at least one).
pub fn encode_run(topic: &TopicId, key: &SecretKey, session: u64, first: u64, frames: &[u8]) -> Bytes {
    let signature = key.sign(&signed_run(topic, session, first, frames));
    let mut out = BytesMut::with_capacity(RUN_OVERHEAD + frames.len());
    out.put_u8(RUN);
    out.put_slice(key.public().as_bytes());
    out.put_u64(session);
    out.put_u64(first);
    out.put_slice(frames);
    out.put_slice(&signature.to_bytes());
    out.freeze()
}

/// Encodes and signs a heads announcement; `nonce` makes each one unique (gossip drops a
/// message identical to one it saw lately).
pub fn encode_heads(topic: &TopicId, key: &SecretKey, session: u64, next: u64, nonce: u64) -> Bytes {
    let signature = key.sign(&signed_heads(topic, session, next, nonce));
    let mut out = BytesMut::with_capacity(HEADS_LEN);
    out.put_u8(HEADS);
    out.put_slice(key.public().as_bytes());
    out.put_u64(session);
    out.put_u64(next);
    out.put_u64(nonce);
    out.put_slice(&signature.to_bytes());
    out.freeze()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(b)
}

fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&bytes[at..at + N]);
    b
}

fn verify(author: [u8; 32], signed: &[u8], signature: [u8; 64]) -> Result<(), EnvelopeError> {
    let key = PublicKey::from_bytes(&author).map_err(|_| EnvelopeError::BadSignature { author })?;
    key.verify(signed, &Signature::from_bytes(&signature)).map_err(|_| EnvelopeError::BadSignature { author })
}

/// Decodes and verifies one message of `topic`. `max_frame` bounds each event.
pub fn decode(topic: &TopicId, message: Bytes, max_frame: usize) -> Result<Envelope, EnvelopeError> {
    let malformed = |why: &str| EnvelopeError::Malformed(why.to_string());
    match message.first() {
        Some(&RUN) => {
            if message.len() < RUN_OVERHEAD + HEADER_LEN {
                return Err(malformed("a run shorter than its header, one frame and its signature"));
            }
            let author = array_at::<32>(&message, 1);
            let session = u64_at(&message, 1 + KEY_LEN);
            let first = u64_at(&message, 1 + KEY_LEN + 8);
            let frames_end = message.len() - SIGNATURE_LEN;
            let frames = message.slice(RUN_HEADER..frames_end);
            let count = codec::check_frames(&frames, max_frame).map_err(|e| match e {
                FrameError::TooLarge { len, max } => {
                    EnvelopeError::Malformed(format!("an event of {len} bytes in a run, more than maxEventBytes ({max})"))
                }
                other => EnvelopeError::Malformed(format!("a run's events are not whole frames: {other}")),
            })? as u64;
            if first.checked_add(count).is_none() {
                return Err(malformed("a run's sequence numbers overflow"));
            }
            verify(author, &signed_run(topic, session, first, &frames), array_at::<64>(&message, frames_end))?;
            Ok(Envelope::Run(Run { key: StreamKey { author, session }, first, count, frames, message }))
        }
        Some(&HEADS) => {
            if message.len() != HEADS_LEN {
                return Err(malformed("a heads announcement of the wrong length"));
            }
            let author = array_at::<32>(&message, 1);
            let session = u64_at(&message, 1 + KEY_LEN);
            let next = u64_at(&message, 1 + KEY_LEN + 8);
            let nonce = u64_at(&message, 1 + KEY_LEN + 16);
            verify(author, &signed_heads(topic, session, next, nonce), array_at::<64>(&message, 1 + KEY_LEN + 24))?;
            Ok(Envelope::Heads(Heads { key: StreamKey { author, session }, next }))
        }
        Some(other) => Err(EnvelopeError::Malformed(format!("unknown message kind {other}"))),
        None => Err(malformed("an empty message")),
    }
}

/// A repair request: the runs of `key` that hold any of `from..to` (`to` `u64::MAX`: all
/// from `from` on). The answer is the runs as they were gossiped, each as one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairRequest {
    pub topic: TopicId,
    pub key: StreamKey,
    pub from: u64,
    pub to: u64,
}

pub const REPAIR_REQUEST_LEN: usize = 32 + 32 + 8 + 8 + 8;

impl RepairRequest {
    pub fn encode(&self) -> [u8; REPAIR_REQUEST_LEN] {
        let mut out = [0u8; REPAIR_REQUEST_LEN];
        out[..32].copy_from_slice(&self.topic);
        out[32..64].copy_from_slice(&self.key.author);
        out[64..72].copy_from_slice(&self.key.session.to_be_bytes());
        out[72..80].copy_from_slice(&self.from.to_be_bytes());
        out[80..88].copy_from_slice(&self.to.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8; REPAIR_REQUEST_LEN]) -> Self {
        RepairRequest {
            topic: array_at::<32>(bytes, 0),
            key: StreamKey { author: array_at::<32>(bytes, 32), session: u64_at(bytes, 64) },
            from: u64_at(bytes, 72),
            to: u64_at(bytes, 80),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: TopicId = [7; 32];

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_bytes(&[seed; 32])
    }

    fn frames(texts: &[&str]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for t in texts {
            codec::encode_frame(t.as_bytes(), 1 << 20, &mut out).unwrap();
        }
        out.to_vec()
    }

    #[test]
    fn a_run_round_trips_with_its_signature() {
        let f = frames(&[r#"{"type":"a"}"#, r#"{"type":"b","detail":1}"#]);
        let message = encode_run(&TOPIC, &key(1), 9, 40, &f);
        let Envelope::Run(run) = decode(&TOPIC, message.clone(), 1 << 20).unwrap() else { panic!("not a run") };
        assert_eq!(run.key, StreamKey { author: *key(1).public().as_bytes(), session: 9 });
        assert_eq!((run.first, run.count, run.end()), (40, 2, 42));
        assert_eq!(&run.frames[..], &f[..]);
        assert_eq!(run.message, message);
    }

    #[test]
    fn heads_round_trip() {
        let message = encode_heads(&TOPIC, &key(2), 3, 100, 5);
        assert_eq!(
            decode(&TOPIC, message, 1024).unwrap(),
            Envelope::Heads(Heads { key: StreamKey { author: *key(2).public().as_bytes(), session: 3 }, next: 100 })
        );
    }

    #[test]
    fn a_changed_byte_or_another_topic_fails_the_signature() {
        let f = frames(&[r#"{"type":"a"}"#]);
        let message = encode_run(&TOPIC, &key(1), 1, 0, &f);
        let mut forged = message.to_vec();
        // The sequence number: a replay under another number.
        forged[1 + 32 + 8 + 7] ^= 1;
        assert!(matches!(decode(&TOPIC, forged.into(), 1024), Err(EnvelopeError::BadSignature { .. })));
        assert!(matches!(decode(&[8; 32], message, 1024), Err(EnvelopeError::BadSignature { .. })));
        // Another author's key over the same body.
        let mut other = encode_run(&TOPIC, &key(1), 1, 0, &f).to_vec();
        other[1..33].copy_from_slice(key(3).public().as_bytes());
        assert!(matches!(decode(&TOPIC, other.into(), 1024), Err(EnvelopeError::BadSignature { .. })));
    }

    #[test]
    fn malformed_messages_are_refused_without_panicking() {
        assert!(matches!(decode(&TOPIC, Bytes::new(), 1024), Err(EnvelopeError::Malformed(_))));
        assert!(matches!(decode(&TOPIC, Bytes::from_static(&[9, 1, 2]), 1024), Err(EnvelopeError::Malformed(_))));
        assert!(matches!(decode(&TOPIC, Bytes::from_static(&[RUN; 40]), 1024), Err(EnvelopeError::Malformed(_))));
        let f = frames(&[r#"{"type":"a"}"#]);
        let good = encode_run(&TOPIC, &key(1), 1, 0, &f);
        // A frame length that runs past the end.
        let mut bad = good.to_vec();
        bad[RUN_HEADER + 3] = 200;
        assert!(matches!(decode(&TOPIC, bad.into(), 1024), Err(EnvelopeError::Malformed(_))));
        // An event larger than the limit.
        assert!(matches!(decode(&TOPIC, good, 4), Err(EnvelopeError::Malformed(_))));
        let heads = encode_heads(&TOPIC, &key(1), 1, 1, 1);
        assert!(matches!(decode(&TOPIC, heads.slice(..HEADS_LEN - 1), 1024), Err(EnvelopeError::Malformed(_))));
    }

    #[test]
    fn repair_requests_round_trip() {
        let r = RepairRequest { topic: TOPIC, key: StreamKey { author: [3; 32], session: 4 }, from: 5, to: u64::MAX };
        assert_eq!(RepairRequest::decode(&r.encode()), r);
    }
}

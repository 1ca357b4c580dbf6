//! The wire format: each message is a 4-byte big-endian length N followed by N bytes of
//! UTF-8 JSON `{"type": string, "detail"?: any}`. Pure Rust, no napi.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::IgnoredAny;
use serde::Deserialize;

pub const HEADER_LEN: usize = 4;
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// The smallest allocation the decoder makes for frames: small frames share one.
const MIN_ALLOCATION: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announces more than the configured limit.
    TooLarge { len: u64, max: usize },
    /// The stream ended inside a frame.
    Truncated { have: usize, want: usize },
    /// The payload is not a JSON object with a string `type`.
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds maxFrameBytes ({max})")
            }
            FrameError::Truncated { have, want } => {
                write!(f, "stream ended inside a frame ({have} of {want} bytes received)")
            }
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends one frame (header and payload) to `out`.
pub fn encode_frame(payload: &[u8], max: usize, out: &mut BytesMut) -> Result<(), FrameError> {
    if payload.len() > max || payload.len() > u32::MAX as usize {
        return Err(FrameError::TooLarge { len: payload.len() as u64, max });
    }
    out.reserve(HEADER_LEN + payload.len());
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    Ok(())
}

/// Checks bytes that claim to be whole frames back to back (frames JS encoded itself):
/// every length fits `max` and the last frame ends exactly at the end. Returns the count.
pub fn check_frames(mut bytes: &[u8], max: usize) -> Result<usize, FrameError> {
    let mut count = 0;
    while !bytes.is_empty() {
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(FrameError::Truncated { have: bytes.len(), want: HEADER_LEN });
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > max {
            return Err(FrameError::TooLarge { len: len as u64, max });
        }
        if rest.len() < len {
            return Err(FrameError::Truncated { have: rest.len(), want: len });
        }
        bytes = &rest[len..];
        count += 1;
    }
    Ok(count)
}

/// Cuts complete frames out of a byte stream that arrives in arbitrary pieces.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    /// Frames completed by `extend` before the bytes after them went into a new allocation.
    done: VecDeque<BytesMut>,
    max: usize,
}

impl FrameDecoder {
    pub fn new(max: usize) -> Self {
        Self { buf: BytesMut::new(), done: VecDeque::new(), max }
    }

    pub fn extend(&mut self, mut chunk: &[u8]) {
        // A frame that got an allocation of its own size is finished in it and set aside,
        // and what follows it starts a new one: growing that allocation would double it
        // (BytesMut's growth rule), and a Buffer over the frame would keep the double alive.
        while let Some(missing) = self.missing_from_front() {
            if chunk.len() <= missing || self.buf.len() + chunk.len() <= self.buf.capacity() {
                break;
            }
            let (rest_of_frame, after) = chunk.split_at(missing);
            self.buf.extend_from_slice(rest_of_frame);
            self.done.push_back(std::mem::take(&mut self.buf));
            chunk = after;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.done.iter().map(BytesMut::len).sum::<usize>()
    }

    /// How many bytes the frame at the front of `buf` still lacks, when its length is in
    /// (and allowed) and it is not complete.
    fn missing_from_front(&self) -> Option<usize> {
        let header = self.buf.first_chunk::<HEADER_LEN>()?;
        let len = u32::from_be_bytes(*header) as usize;
        let whole = HEADER_LEN + len;
        (len <= self.max && self.buf.len() < whole).then(|| whole - self.buf.len())
    }

    /// The next complete payload, `None` when more bytes are needed. An oversized length
    /// is reported as soon as the header is in, before any of the payload is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(mut frame) = self.done.pop_front() {
            frame.advance(HEADER_LEN);
            return Ok(Some(frame.freeze()));
        }
        let Some(len) = self.complete_frame()? else { return Ok(None) };
        self.buf.advance(HEADER_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// The next complete frame as it was on the wire, header included, still sharing the
    /// decoder's allocation: frames cut one after another stay adjacent, so a batch of them
    /// can be rejoined (`BytesMut::unsplit`) and handed on without a copy.
    pub fn next_wire_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        if let Some(frame) = self.done.pop_front() {
            return Ok(Some(frame));
        }
        let Some(len) = self.complete_frame()? else { return Ok(None) };
        Ok(Some(self.buf.split_to(HEADER_LEN + len)))
    }

    /// The payload length of the frame at the front once all of it is in.
    fn complete_frame(&mut self) -> Result<Option<usize>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len: len as u64, max: self.max });
        }
        let whole = HEADER_LEN + len;
        if self.buf.len() < whole {
            // One allocation of exactly the frame's size, so its bytes are copied once out of
            // QUIC's receive buffers and a Buffer over them holds nothing else. (Not
            // `reserve`: on an allocation it owns alone, BytesMut doubles it, and every
            // frame cut from it would then keep the doubled allocation alive.)
            if self.buf.capacity() < whole {
                let mut own = BytesMut::with_capacity(whole.max(MIN_ALLOCATION));
                own.extend_from_slice(&self.buf);
                self.buf = own;
            }
            return Ok(None);
        }
        Ok(Some(len))
    }

    /// Call at end of stream: an incomplete frame left over is an error.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buf.len() {
            0 => Ok(()),
            n if n < HEADER_LEN => Err(FrameError::Truncated { have: n, want: HEADER_LEN }),
            n => {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
                Err(FrameError::Truncated { have: n - HEADER_LEN, want: len })
            }
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    _kind: std::borrow::Cow<'a, str>,
    #[serde(default, rename = "detail")]
    _detail: IgnoredAny,
}

/// Checks that a payload is one JSON object with a string `type`. Frames are checked in
/// Rust so that a batch can be handed to JS as one JSON array text without a hostile
/// frame (say `{"type":"a"},{"type":"b"}`) turning into two events.
pub fn validate_event(payload: &[u8]) -> Result<(), FrameError> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(FrameError::Malformed("expected a JSON object".into()));
    }
    serde_json::from_slice::<Envelope>(payload).map(|_| ()).map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_frame(payload, DEFAULT_MAX_FRAME_BYTES, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn check_frames_accepts_whole_frames_only() {
        let mut wire = frame(br#"{"type":"a"}"#);
        wire.extend(frame(b""));
        assert_eq!(check_frames(&wire, 64).unwrap(), 2);
        assert_eq!(check_frames(&[], 64).unwrap(), 0);
        assert!(matches!(check_frames(&wire[..wire.len() - 1], 64), Err(FrameError::Truncated { .. })));
        assert!(matches!(check_frames(&wire[..2], 64), Err(FrameError::Truncated { .. })));
        assert!(matches!(check_frames(&wire, 4), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let payloads: Vec<Vec<u8>> = vec![b"{}".to_vec(), vec![], b"{\"type\":\"x\"}".to_vec(), vec![7; 70_000]];
        let wire: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        let mut got = Vec::new();
        for b in &wire {
            dec.extend(std::slice::from_ref(b));
            while let Some(f) = dec.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got, payloads);
        assert!(dec.finish().is_ok());
    }

    #[test]
    fn wire_frames_keep_their_header_and_stay_adjacent() {
        let mut wire = frame(b"ab");
        wire.extend(frame(b""));
        wire.extend(frame(b"cde"));
        let mut dec = FrameDecoder::new(64);
        dec.extend(&wire[..wire.len() - 1]);
        let mut first = dec.next_wire_frame().unwrap().unwrap();
        let second = dec.next_wire_frame().unwrap().unwrap();
        assert_eq!(&first[..], b"\0\0\0\x02ab");
        assert_eq!(&second[..], b"\0\0\0\0");
        assert_eq!(dec.next_wire_frame().unwrap(), None);
        let joined_at = first.as_ptr();
        first.unsplit(second);
        assert_eq!(first.as_ptr(), joined_at, "adjacent frames rejoin in place");
        dec.extend(&wire[wire.len() - 1..]);
        assert_eq!(&dec.next_wire_frame().unwrap().unwrap()[..], b"\0\0\0\x03cde");
        dec.extend(&[0, 0, 1, 0]);
        assert!(matches!(dec.next_wire_frame(), Err(FrameError::TooLarge { len: 256, max: 64 })));
    }

    #[test]
    fn a_large_frame_keeps_an_allocation_of_its_own_size() {
        let big = vec![7; 100_000];
        let mut wire = frame(&big);
        wire.extend(frame(b"next"));
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        let mut frames = Vec::new();
        // Packet-sized pieces; the one that ends the big frame carries the next frame too.
        for piece in wire.chunks(1400) {
            dec.extend(piece);
            while let Some(f) = dec.next_wire_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0][HEADER_LEN..], &big[..]);
        // Had the big frame's allocation grown to take the next frame's bytes, the next
        // frame would start right where it ends, in the same (doubled) allocation.
        let big_ends_at = frames[0].as_ptr().wrapping_add(frames[0].len());
        assert_ne!(frames[1].as_ptr(), big_ends_at, "the next frame is not in the big one's allocation");
        assert_eq!(&frames[1][..], &frame(b"next")[..]);
        assert_eq!(dec.buffered(), 0);
        assert!(dec.finish().is_ok());
    }

    #[test]
    fn header_is_big_endian() {
        assert_eq!(&frame(b"abc")[..4], &[0, 0, 0, 3]);
        assert_eq!(frame(&vec![0; 258])[..4], [0, 0, 1, 2]);
    }

    #[test]
    fn oversized_length_fails_before_payload_arrives() {
        let mut dec = FrameDecoder::new(1024);
        dec.extend(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(dec.next_frame().unwrap_err(), FrameError::TooLarge { len: 0xffff_ffff, max: 1024 });
        let mut out = BytesMut::new();
        assert!(encode_frame(&[0; 1025], 1024, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn truncation_is_reported() {
        let mut dec = FrameDecoder::new(1024);
        dec.extend(&[0, 0]);
        assert_eq!(dec.finish().unwrap_err(), FrameError::Truncated { have: 2, want: 4 });
        dec.extend(&[0, 10, 1, 2, 3]);
        assert_eq!(dec.next_frame().unwrap(), None);
        assert_eq!(dec.finish().unwrap_err(), FrameError::Truncated { have: 3, want: 10 });
    }

    #[test]
    fn events_are_validated() {
        assert!(validate_event(br#"{"type":"a","detail":{"x":[1,2]}}"#).is_ok());
        assert!(validate_event(br#" {"detail":null,"type":"a\u00e9"} "#).is_ok());
        assert!(validate_event(br#"{"type":"a"}"#).is_ok());
        for bad in [
            &b"not json"[..],
            br#"[1,2]"#,
            br#""type""#,
            br#"{"type":1}"#,
            br#"{"detail":1}"#,
            br#"{"type":"a"},{"type":"b"}"#,
            br#"{"type":"a"}]"#,
            b"{\"type\":\"\xff\"}",
            b"",
        ] {
            assert!(matches!(validate_event(bad), Err(FrameError::Malformed(_))), "accepted {:?}", String::from_utf8_lossy(bad));
        }
    }
}

//! Batching for the event pump, in plain Rust: frames received are gathered into one
//! JSON array text per hand-over to JS (one threadsafe-function call per batch, not per
//! event), and frames to send are coalesced into one outbox buffer per write.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::codec::{self, FrameError};

/// A batch is handed to JS once it holds this many events...
pub const MAX_BATCH_EVENTS: usize = 4096;
/// ...or this many payload bytes, whichever comes first (a single larger frame still
/// travels alone). Below V8's large-object size, so a batch's text is young-generation
/// garbage that a scavenge frees, not a large object that waits for a full GC.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Received events gathered for one hand-over to JS.
#[derive(Debug, Default)]
pub struct Batch {
    /// `[e1,e2,...]` without the closing bracket while open (default serializer).
    json: Vec<u8>,
    /// One string per frame (custom serializer: JS parses each).
    raw: Vec<String>,
    count: usize,
    bytes: usize,
}

#[derive(Debug)]
pub enum BatchPayload {
    /// A JSON array text of `{type, detail}` objects: one `JSON.parse` for the batch.
    Json(String),
    /// Frames as strings, for a user-supplied `parse`.
    Raw(Vec<String>),
}

impl Batch {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_full(&self) -> bool {
        self.count >= MAX_BATCH_EVENTS || self.bytes >= MAX_BATCH_BYTES
    }

    /// Adds a frame that must be a JSON event object. It is validated here, so that
    /// joining frames with commas can never yield more (or other) events than were sent.
    pub fn push_json(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        codec::validate_event(frame)?;
        self.json.push(if self.count == 0 { b'[' } else { b',' });
        self.json.extend_from_slice(frame);
        self.count += 1;
        self.bytes += frame.len();
        Ok(())
    }

    /// Adds a frame for a custom serializer: only UTF-8 validity is checked here.
    pub fn push_raw(&mut self, frame: Bytes) -> Result<(), FrameError> {
        let text = String::from_utf8(frame.to_vec())
            .map_err(|_| FrameError::Malformed("frame is not valid UTF-8".into()))?;
        self.bytes += text.len();
        self.count += 1;
        self.raw.push(text);
        Ok(())
    }

    /// Empties the batch into what JS receives.
    pub fn take(&mut self) -> Option<BatchPayload> {
        if self.count == 0 {
            return None;
        }
        self.count = 0;
        self.bytes = 0;
        if !self.raw.is_empty() {
            return Some(BatchPayload::Raw(std::mem::take(&mut self.raw)));
        }
        let mut json = std::mem::take(&mut self.json);
        json.push(b']');
        // Every frame passed `validate_event`, which only accepts UTF-8 JSON.
        match String::from_utf8(json) {
            Ok(text) => Some(BatchPayload::Json(text)),
            Err(e) => Some(BatchPayload::Json(String::from_utf8_lossy(e.as_bytes()).into_owned())),
        }
    }
}

/// Received events on their way to JS: full batches in order, then the one being filled.
/// JS takes one batch at a time; `backlog` says how much waits, so the reader can pause
/// the peer when JS falls behind.
#[derive(Debug, Default)]
pub struct Inbox {
    raw: bool,
    filling: Batch,
    ready: VecDeque<(BatchPayload, usize)>,
    ready_bytes: usize,
}

impl Inbox {
    /// `raw`: keep frames as separate strings for a custom `parse` (else one JSON array).
    pub fn new(raw: bool) -> Self {
        Self { raw, ..Self::default() }
    }

    pub fn push(&mut self, frame: Bytes) -> Result<(), FrameError> {
        if self.raw {
            self.filling.push_raw(frame)?;
        } else {
            self.filling.push_json(&frame)?;
        }
        if self.filling.is_full() {
            let bytes = self.filling.bytes();
            if let Some(payload) = self.filling.take() {
                self.ready.push_back((payload, bytes));
                self.ready_bytes += bytes;
            }
        }
        Ok(())
    }

    /// The oldest batch, or what has been gathered so far if no batch is full.
    pub fn next_batch(&mut self) -> Option<BatchPayload> {
        match self.ready.pop_front() {
            Some((payload, bytes)) => {
                self.ready_bytes -= bytes;
                Some(payload)
            }
            None => self.filling.take(),
        }
    }

    /// Payload bytes waiting for JS.
    pub fn backlog(&self) -> usize {
        self.ready_bytes + self.filling.bytes()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxError {
    /// One event serialized to more than `maxFrameBytes`.
    FrameTooLarge { len: usize, max: usize },
    /// Accepting the event would take the buffer past `maxBufferedBytes`.
    Full { buffered: usize, len: usize, max: usize },
}

/// Frames waiting to be written, already encoded back to back so the writer takes them
/// all in one write.
#[derive(Debug)]
pub struct Outbox {
    buf: BytesMut,
    max_frame: usize,
    max_buffered: usize,
}

impl Outbox {
    pub fn new(max_frame: usize, max_buffered: usize) -> Self {
        Self { buf: BytesMut::new(), max_frame, max_buffered }
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Queues one frame and returns its length on the wire. `in_flight` is what the writer
    /// took but has not finished writing; it counts against `max_buffered` too, so memory
    /// stays bounded end to end.
    pub fn push(&mut self, payload: &[u8], in_flight: usize) -> Result<usize, OutboxError> {
        if payload.len() > self.max_frame {
            return Err(OutboxError::FrameTooLarge { len: payload.len(), max: self.max_frame });
        }
        let buffered = self.buf.len() + in_flight;
        let len = payload.len() + codec::HEADER_LEN;
        // An empty buffer always takes one frame, so a frame larger than the buffer cap
        // (but within the frame cap) can still be sent.
        if buffered > 0 && buffered + len > self.max_buffered {
            return Err(OutboxError::Full { buffered, len, max: self.max_buffered });
        }
        codec::encode_frame(payload, self.max_frame, &mut self.buf)
            .map(|()| len)
            .map_err(|_| OutboxError::FrameTooLarge { len: payload.len(), max: self.max_frame })
    }

    /// Queues frames already encoded back to back (checked with `codec::check_frames`).
    /// Room was checked frame by frame where they were encoded.
    pub fn push_frames(&mut self, frames: &[u8]) {
        self.buf.extend_from_slice(frames);
    }

    /// Everything queued, for one write.
    pub fn take(&mut self) -> Bytes {
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_batch_is_one_array_text() {
        let mut b = Batch::default();
        assert!(b.take().is_none());
        b.push_json(br#"{"type":"a","detail":1}"#).unwrap();
        b.push_json(br#"{"type":"b"}"#).unwrap();
        assert_eq!(b.len(), 2);
        match b.take() {
            Some(BatchPayload::Json(s)) => assert_eq!(s, r#"[{"type":"a","detail":1},{"type":"b"}]"#),
            other => panic!("unexpected {other:?}"),
        }
        assert!(b.is_empty());
        b.push_json(br#"{"type":"c"}"#).unwrap();
        match b.take() {
            Some(BatchPayload::Json(s)) => assert_eq!(s, r#"[{"type":"c"}]"#),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_frame_cannot_smuggle_extra_events() {
        let mut b = Batch::default();
        assert!(b.push_json(br#"{"type":"a"},{"type":"b"}"#).is_err());
        assert!(b.push_json(br#"{"type":"a"}]"#).is_err());
        assert!(b.is_empty());
    }

    #[test]
    fn batches_fill_up() {
        let mut b = Batch::default();
        for _ in 0..MAX_BATCH_EVENTS - 1 {
            b.push_json(br#"{"type":"x"}"#).unwrap();
        }
        assert!(!b.is_full());
        b.push_json(br#"{"type":"x"}"#).unwrap();
        assert!(b.is_full());
    }

    #[test]
    fn raw_batches_keep_frames_apart() {
        let mut b = Batch::default();
        b.push_raw(Bytes::from_static(b"one")).unwrap();
        b.push_raw(Bytes::from_static(b"two")).unwrap();
        assert!(b.push_raw(Bytes::from_static(b"\xff")).is_err());
        match b.take() {
            Some(BatchPayload::Raw(v)) => assert_eq!(v, vec!["one".to_string(), "two".to_string()]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn inbox_hands_out_batches_in_order_and_counts_the_backlog() {
        let mut inbox = Inbox::new(false);
        assert!(inbox.next_batch().is_none());
        let event = Bytes::from_static(br#"{"type":"x"}"#);
        for _ in 0..MAX_BATCH_EVENTS + 2 {
            inbox.push(event.clone()).unwrap();
        }
        assert_eq!(inbox.backlog(), (MAX_BATCH_EVENTS + 2) * event.len());
        match inbox.next_batch() {
            Some(BatchPayload::Json(s)) => assert_eq!(s.matches("\"x\"").count(), MAX_BATCH_EVENTS),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(inbox.backlog(), 2 * event.len());
        match inbox.next_batch() {
            Some(BatchPayload::Json(s)) => assert_eq!(s, r#"[{"type":"x"},{"type":"x"}]"#),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(inbox.backlog(), 0);
        assert!(inbox.next_batch().is_none());
        assert!(inbox.push(Bytes::from_static(b"[]")).is_err());
        let mut raw = Inbox::new(true);
        raw.push(Bytes::from_static(b"anything")).unwrap();
        assert!(matches!(raw.next_batch(), Some(BatchPayload::Raw(v)) if v == ["anything"]));
    }

    #[test]
    fn outbox_coalesces_and_bounds() {
        let mut o = Outbox::new(100, 50);
        assert_eq!(o.push(b"hello", 0), Ok(9));
        o.push(b"world", 0).unwrap();
        assert_eq!(o.len(), 18);
        assert_eq!(o.push(&[0; 101], 0), Err(OutboxError::FrameTooLarge { len: 101, max: 100 }));
        assert!(matches!(o.push(&[0; 40], 0), Err(OutboxError::Full { .. })));
        let all = o.take();
        assert_eq!(&all[..], b"\0\0\0\x05hello\0\0\0\x05world");
        assert!(o.is_empty());
        // What the writer holds counts against the cap.
        assert!(matches!(o.push(&[0; 10], 45), Err(OutboxError::Full { .. })));
        // An empty outbox takes one frame above the buffer cap but within the frame cap.
        o.push(&[0; 90], 0).unwrap();
    }
}

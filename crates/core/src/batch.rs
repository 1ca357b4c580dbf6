//! Batching for the framed pump, in plain Rust: frames received are gathered into one
//! hand-over to JS (one threadsafe-function call per batch, not per event): a JSON array
//! text for the event targets, or the frames' wire bytes for a message channel. Frames to
//! send are coalesced in the outbox and taken by the writer all at once.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::codec::{self, FrameError};

/// A batch is handed to JS once it holds this many events (messages)...
pub const MAX_BATCH_EVENTS: usize = 4096;
/// ...or this many payload bytes, whichever comes first (a single larger frame still
/// travels alone). Below V8's large-object size, so a batch's text is young-generation
/// garbage that a scavenge frees, not a large object that waits for a full GC.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// A binary message at least this long travels in a batch of its own, so it is never
/// copied to join its neighbours. (The binding then copies it once into memory that V8
/// collects promptly, rather than hand JS an external Buffer over these bytes.)
pub const LARGE_MESSAGE_BYTES: usize = 64 * 1024;

/// What a batch carries to JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchMode {
    /// Frames are JSON events, validated here and joined into one array text.
    #[default]
    Json,
    /// Frames are UTF-8 strings for a custom `parse`.
    Raw,
    /// Frames are opaque bytes (a message channel): nothing is validated.
    Binary,
}

impl BatchMode {
    /// What a pump of this mode is called in its error messages (JS tests match on them):
    /// JSON and raw frames are an event target's, binary ones a message channel's.
    pub const fn noun(self) -> &'static str {
        match self {
            BatchMode::Json | BatchMode::Raw => "event target",
            BatchMode::Binary => "message channel",
        }
    }
}

/// Received events gathered for one hand-over to JS.
#[derive(Debug, Default)]
pub struct Batch {
    /// `[e1,e2,...]` without the closing bracket while open (default serializer).
    json: Vec<u8>,
    /// One string per frame (custom serializer: JS parses each).
    raw: Vec<String>,
    /// Binary frames as on the wire (header and payload), back to back.
    wire: BytesMut,
    count: usize,
    bytes: usize,
}

#[derive(Debug)]
pub enum BatchPayload {
    /// A JSON array text of `{type, detail}` objects: one `JSON.parse` for the batch.
    Json(String),
    /// Frames as strings, for a user-supplied `parse`.
    Raw(Vec<String>),
    /// Binary frames as on the wire, back to back: JS reads each length and slices.
    Binary(Bytes),
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
        let text = String::from_utf8(frame.to_vec()).map_err(|_| FrameError::Malformed("frame is not valid UTF-8".into()))?;
        self.bytes += text.len();
        self.count += 1;
        self.raw.push(text);
        Ok(())
    }

    /// Adds a binary frame (header included, from `FrameDecoder::next_wire_frame`). Frames
    /// cut one after another from the decoder are adjacent, and join without a copy.
    pub fn push_wire(&mut self, frame: BytesMut) {
        self.bytes += frame.len().saturating_sub(codec::HEADER_LEN);
        self.count += 1;
        self.wire.unsplit(frame);
    }

    /// Empties the batch into what JS receives.
    pub fn take(&mut self) -> Option<BatchPayload> {
        if self.count == 0 {
            return None;
        }
        self.count = 0;
        self.bytes = 0;
        if !self.wire.is_empty() {
            return Some(BatchPayload::Binary(std::mem::take(&mut self.wire).freeze()));
        }
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
    mode: BatchMode,
    filling: Batch,
    /// Full batches: the payload, its payload bytes and its frame count.
    ready: VecDeque<(BatchPayload, usize, usize)>,
    ready_bytes: usize,
}

impl Inbox {
    pub fn new(mode: BatchMode) -> Self {
        Self { mode, ..Self::default() }
    }

    pub fn mode(&self) -> BatchMode {
        self.mode
    }

    /// Adds a frame's payload (JSON and raw modes).
    pub fn push(&mut self, frame: Bytes) -> Result<(), FrameError> {
        match self.mode {
            BatchMode::Raw => self.filling.push_raw(frame)?,
            BatchMode::Json => self.filling.push_json(&frame)?,
            BatchMode::Binary => {
                let mut wire = BytesMut::with_capacity(codec::HEADER_LEN + frame.len());
                codec::encode_frame(&frame, usize::MAX, &mut wire)?;
                self.push_wire(wire);
                return Ok(());
            }
        }
        self.close_if_full();
        Ok(())
    }

    /// Adds a binary frame as it was on the wire. A large one goes in a batch of its own.
    pub fn push_wire(&mut self, frame: BytesMut) {
        if frame.len() - codec::HEADER_LEN.min(frame.len()) >= LARGE_MESSAGE_BYTES {
            self.close_filling();
            self.filling.push_wire(frame);
            self.close_filling();
            return;
        }
        self.filling.push_wire(frame);
        self.close_if_full();
    }

    fn close_if_full(&mut self) {
        if self.filling.is_full() {
            self.close_filling();
        }
    }

    /// Moves the batch being filled, if any, to the ready ones.
    fn close_filling(&mut self) {
        let bytes = self.filling.bytes();
        let count = self.filling.len();
        if let Some(payload) = self.filling.take() {
            self.ready.push_back((payload, bytes, count));
            self.ready_bytes += bytes;
        }
    }

    /// The oldest batch, or what has been gathered so far if no batch is full.
    pub fn next_batch(&mut self) -> Option<BatchPayload> {
        self.next_batch_counted().map(|(payload, _)| payload)
    }

    /// `next_batch`, with how many frames the batch holds.
    pub fn next_batch_counted(&mut self) -> Option<(BatchPayload, usize)> {
        match self.ready.pop_front() {
            Some((payload, bytes, count)) => {
                self.ready_bytes -= bytes;
                Some((payload, count))
            }
            None => {
                let count = self.filling.len();
                self.filling.take().map(|payload| (payload, count))
            }
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

/// Frames waiting to be written, in order: runs of frames encoded here, and runs that JS
/// encoded into buffers it handed over whole (kept as they are, not copied). The writer
/// takes them all for one write.
#[derive(Debug)]
pub struct Outbox {
    /// Handed-over runs, and encoded runs closed off ahead of them.
    chunks: Vec<Bytes>,
    chunks_len: usize,
    /// Frames encoded here since the last handed-over run.
    buf: BytesMut,
    max_frame: usize,
    max_buffered: usize,
}

impl Outbox {
    pub fn new(max_frame: usize, max_buffered: usize) -> Self {
        Self { chunks: Vec::new(), chunks_len: 0, buf: BytesMut::new(), max_frame, max_buffered }
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn len(&self) -> usize {
        self.chunks_len + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues one frame and returns its length on the wire. `in_flight` is what the writer
    /// took but has not finished writing; it counts against `max_buffered` too, so memory
    /// stays bounded end to end.
    pub fn push(&mut self, payload: &[u8], in_flight: usize) -> Result<usize, OutboxError> {
        if payload.len() > self.max_frame {
            return Err(OutboxError::FrameTooLarge { len: payload.len(), max: self.max_frame });
        }
        let buffered = self.len() + in_flight;
        let len = payload.len() + codec::HEADER_LEN;
        // An empty buffer always takes one frame, so a frame larger than the buffer cap
        // (but within the frame cap) can still be sent.
        if buffered > 0 && buffered + len > self.max_buffered {
            return Err(OutboxError::Full { buffered, len, max: self.max_buffered });
        }
        if payload.len() >= LARGE_MESSAGE_BYTES {
            // A buffer of its own, of exactly its size: appended to the shared one it would
            // grow that past the allocator's mmap threshold, and every write would then cost
            // fresh pages (page faults) and an munmap.
            let mut own = BytesMut::with_capacity(len);
            codec::encode_frame(payload, self.max_frame, &mut own)
                .map_err(|_| OutboxError::FrameTooLarge { len: payload.len(), max: self.max_frame })?;
            self.push_owned(own.freeze());
            return Ok(len);
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

    /// Queues frames already encoded back to back (checked with `codec::check_frames`) in
    /// a buffer that is handed over: it is written as it is. Room was checked where they
    /// were encoded.
    pub fn push_owned(&mut self, frames: Bytes) {
        if frames.is_empty() {
            return;
        }
        self.close_buf();
        self.chunks_len += frames.len();
        self.chunks.push(frames);
    }

    /// Queues frames encoded once for many outboxes (a broadcast), under `push`'s bound:
    /// a small run is copied into the buffer with its neighbours, a large one shared.
    pub fn push_broadcast(&mut self, frames: &Bytes, in_flight: usize) -> Result<(), OutboxError> {
        let buffered = self.len() + in_flight;
        if buffered > 0 && buffered + frames.len() > self.max_buffered {
            return Err(OutboxError::Full { buffered, len: frames.len(), max: self.max_buffered });
        }
        if frames.len() >= LARGE_MESSAGE_BYTES {
            self.push_owned(frames.clone());
        } else {
            self.push_frames(frames);
        }
        Ok(())
    }

    fn close_buf(&mut self) {
        if !self.buf.is_empty() {
            let run = self.buf.split().freeze();
            self.chunks_len += run.len();
            self.chunks.push(run);
        }
    }

    /// Everything queued, in order, for one write.
    pub fn take(&mut self) -> Vec<Bytes> {
        self.close_buf();
        self.chunks_len = 0;
        std::mem::take(&mut self.chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_pump_is_a_message_channel_and_the_others_event_targets() {
        assert_eq!(BatchMode::Json.noun(), "event target");
        assert_eq!(BatchMode::Raw.noun(), "event target");
        assert_eq!(BatchMode::Binary.noun(), "message channel");
    }

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
        let mut inbox = Inbox::new(BatchMode::Json);
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
        let mut raw = Inbox::new(BatchMode::Raw);
        raw.push(Bytes::from_static(b"anything")).unwrap();
        assert!(matches!(raw.next_batch(), Some(BatchPayload::Raw(v)) if v == ["anything"]));
    }

    #[test]
    fn counted_batches_say_how_many_frames_they_hold() {
        let mut inbox = Inbox::new(BatchMode::Json);
        let event = Bytes::from_static(br#"{"type":"x"}"#);
        for _ in 0..MAX_BATCH_EVENTS + 3 {
            inbox.push(event.clone()).unwrap();
        }
        assert!(matches!(inbox.next_batch_counted(), Some((_, MAX_BATCH_EVENTS))));
        assert!(matches!(inbox.next_batch_counted(), Some((_, 3))));
        assert!(inbox.next_batch_counted().is_none());
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
        assert_eq!(all.concat(), b"\0\0\0\x05hello\0\0\0\x05world");
        assert!(o.is_empty());
        // What the writer holds counts against the cap.
        assert!(matches!(o.push(&[0; 10], 45), Err(OutboxError::Full { .. })));
        // An empty outbox takes one frame above the buffer cap but within the frame cap.
        o.push(&[0; 90], 0).unwrap();
        // A large frame goes in a buffer of its own, in order with the rest.
        let mut o = Outbox::new(1 << 20, 1 << 20);
        o.push(b"a", 0).unwrap();
        o.push(&vec![5; LARGE_MESSAGE_BYTES], 0).unwrap();
        o.push(b"b", 0).unwrap();
        let chunks = o.take();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].len(), 4 + LARGE_MESSAGE_BYTES);
        assert_eq!(o.len(), 0);
    }

    #[test]
    fn broadcast_runs_keep_the_bound_and_share_large_ones() {
        let small = wire(b"hi").freeze();
        let mut o = Outbox::new(1 << 20, 10);
        o.push_broadcast(&small, 0).unwrap();
        assert_eq!(o.len(), 6);
        // Past the bound, as push would say; an empty outbox takes one run whatever its size.
        assert!(matches!(o.push_broadcast(&small, 0), Err(OutboxError::Full { buffered: 6, len: 6, max: 10 })));
        assert!(matches!(o.push_broadcast(&small, 8), Err(OutboxError::Full { .. })));
        o.take();
        let large = wire(&vec![7; LARGE_MESSAGE_BYTES]).freeze();
        o.push_broadcast(&large, 0).unwrap();
        let chunks = o.take();
        // The same allocation, not a copy.
        assert_eq!(chunks[0].as_ptr(), large.as_ptr());
    }

    fn wire(payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        codec::encode_frame(payload, usize::MAX, &mut out).unwrap();
        out
    }

    fn decoded(wire: &[u8]) -> FrameDecoder {
        let mut dec = FrameDecoder::new(codec::DEFAULT_MAX_FRAME_BYTES);
        dec.extend(wire);
        dec
    }

    use crate::codec::FrameDecoder;

    #[test]
    fn binary_batches_are_the_wire_bytes_unvalidated() {
        let mut stream = BytesMut::new();
        for p in [&b"\xff\x00 not json"[..], b"", b"[1,2]"] {
            stream.extend_from_slice(&wire(p));
        }
        let mut dec = decoded(&stream);
        let mut inbox = Inbox::new(BatchMode::Binary);
        while let Some(f) = dec.next_wire_frame().unwrap() {
            inbox.push_wire(f);
        }
        assert_eq!(inbox.backlog(), 11 + 5);
        match inbox.next_batch() {
            Some(BatchPayload::Binary(b)) => assert_eq!(&b[..], &stream[..]),
            other => panic!("unexpected {other:?}"),
        }
        assert!(inbox.next_batch().is_none());
        assert_eq!(inbox.backlog(), 0);
        // A payload pushed as such is framed the same way.
        inbox.push(Bytes::from_static(b"xy")).unwrap();
        assert!(matches!(inbox.next_batch(), Some(BatchPayload::Binary(b)) if b[..] == wire(b"xy")[..]));
    }

    #[test]
    fn adjacent_binary_frames_join_without_a_copy() {
        let mut stream = BytesMut::new();
        for _ in 0..100 {
            stream.extend_from_slice(&wire(&[7; 100]));
        }
        let mut dec = decoded(&stream);
        let mut inbox = Inbox::new(BatchMode::Binary);
        let first = dec.next_wire_frame().unwrap().unwrap();
        let at = first.as_ptr();
        inbox.push_wire(first);
        while let Some(f) = dec.next_wire_frame().unwrap() {
            inbox.push_wire(f);
        }
        match inbox.next_batch() {
            Some(BatchPayload::Binary(b)) => {
                assert_eq!(b.as_ptr(), at, "the batch is the decoder's own bytes");
                assert_eq!(b.len(), 100 * 104);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_large_binary_message_travels_alone_and_uncopied() {
        let big = vec![1u8; LARGE_MESSAGE_BYTES];
        let mut stream = BytesMut::new();
        stream.extend_from_slice(&wire(b"small"));
        stream.extend_from_slice(&wire(&big));
        stream.extend_from_slice(&wire(b"after"));
        let mut dec = decoded(&stream);
        let mut inbox = Inbox::new(BatchMode::Binary);
        let mut big_at = None;
        while let Some(f) = dec.next_wire_frame().unwrap() {
            if f.len() > LARGE_MESSAGE_BYTES {
                big_at = Some(f.as_ptr());
            }
            inbox.push_wire(f);
        }
        assert!(matches!(inbox.next_batch(), Some(BatchPayload::Binary(b)) if b[..] == wire(b"small")[..]));
        match inbox.next_batch() {
            Some(BatchPayload::Binary(b)) => {
                assert_eq!(Some(b.as_ptr()), big_at);
                assert_eq!(b.len(), 4 + big.len());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(inbox.next_batch(), Some(BatchPayload::Binary(b)) if b[..] == wire(b"after")[..]));
    }

    #[test]
    fn binary_batches_fill_up_by_count_and_bytes() {
        let mut inbox = Inbox::new(BatchMode::Binary);
        for _ in 0..MAX_BATCH_EVENTS + 1 {
            inbox.push_wire(wire(b""));
        }
        assert!(matches!(inbox.next_batch(), Some(BatchPayload::Binary(b)) if b.len() == 4 * MAX_BATCH_EVENTS));
        assert!(matches!(inbox.next_batch(), Some(BatchPayload::Binary(b)) if b.len() == 4));
        let mut inbox = Inbox::new(BatchMode::Binary);
        for _ in 0..3 {
            inbox.push_wire(wire(&[0; MAX_BATCH_BYTES / 2]));
        }
        assert_eq!(inbox.backlog(), 3 * MAX_BATCH_BYTES / 2);
        assert!(matches!(inbox.next_batch(), Some(BatchPayload::Binary(b)) if b.len() == 2 * (4 + MAX_BATCH_BYTES / 2)));
    }

    #[test]
    fn outbox_keeps_handed_over_runs_in_order_without_copying() {
        let mut o = Outbox::new(100, 1000);
        o.push(b"a", 0).unwrap();
        let run = Bytes::from(wire(b"bc").to_vec());
        let run_at = run.as_ptr();
        o.push_owned(run);
        o.push_owned(Bytes::new());
        o.push(b"d", 0).unwrap();
        assert_eq!(o.len(), 5 + 6 + 5);
        let chunks = o.take();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), run_at);
        assert_eq!(chunks.concat(), [wire(b"a"), wire(b"bc"), wire(b"d")].concat());
        assert!(o.is_empty());
        assert!(o.take().is_empty());
        // Handed-over runs count against the cap.
        o.push_owned(Bytes::from(vec![0; 990]));
        assert!(matches!(o.push(&[0; 10], 0), Err(OutboxError::Full { .. })));
    }
}

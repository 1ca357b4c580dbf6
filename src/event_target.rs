//! The framed message pump under the JS event targets and message channels. A reader task
//! cuts frames out of the stream and hands JS whole batches through one weak threadsafe
//! function; at most two batches are with JS unacknowledged, so a slow listener (or a
//! channel consumer that does not call `receive()`) pushes back through QUIC flow control
//! instead of piling up here. `send` queues a frame synchronously; a writer task takes
//! everything queued for one write.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use iroh::endpoint::{ConnectionError, ReadError, VarInt};
use napi::bindgen_prelude::{Buffer, Function, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio::sync::{oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use alkdev_iroh_core::batch::{BatchMode, BatchPayload, Inbox, Outbox, OutboxError};
use alkdev_iroh_core::codec::{self, FrameDecoder, FrameError, DEFAULT_MAX_FRAME_BYTES};
use crate::connection::Connection;
use crate::connection_state::{CloseInfo, ConnState};
use crate::endpoint::CONNECTION_RECEIVE_WINDOW;
use crate::error::{CodedError, ErrorCode, IrohError, IrohResult};
use crate::external_buffer::ExternalBuffer;
use crate::pending::{notify, spawn, weak_callback, WeakCallback};

/// Application close codes this package uses on the wire.
pub const CLOSE_NORMAL: u32 = 0;
pub const CLOSE_FRAME_TOO_LARGE: u32 = 4001;
pub const CLOSE_MALFORMED_FRAME: u32 = 4002;
pub const CLOSE_TRUNCATED_FRAME: u32 = 4003;
pub const CLOSE_STREAM_ERROR: u32 = 4004;

const DEFAULT_MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;
/// Received chunks (about a packet each) taken per read: one lock of the connection for
/// many packets instead of one each.
const READ_CHUNKS: usize = 32;
const DEFAULT_FRAME_TIMEOUT_MS: u32 = 30_000;

struct FrameLimits {
    max_frame: usize,
    /// The longest pause in the middle of a frame.
    frame_timeout: Duration,
}
/// Batches handed to JS and not yet acknowledged: two, so the next one is already
/// waiting in the JS queue while the current one is dispatched.
const BATCHES_WITH_JS: usize = 2;
/// Received bytes waiting for JS past which the peer is paused, and below which it resumes.
const PAUSE_BACKLOG: usize = 1024 * 1024;
const RESUME_BACKLOG: usize = 256 * 1024;

#[napi(object)]
pub struct PumpLimits {
    pub max_frame_bytes: f64,
    pub max_buffered_bytes: f64,
}

#[napi(object)]
pub struct PumpOptions {
    pub max_frame_bytes: Option<u32>,
    pub max_buffered_bytes: Option<u32>,
    /// Hand frames to JS one string each (a custom `parse`) instead of one JSON array.
    pub raw_frames: Option<bool>,
    /// How long a frame may stay half-received with no new bytes before the connection is
    /// closed (4003): a peer that stalls mid-frame must not hold memory for ever.
    pub frame_timeout_ms: Option<u32>,
    /// A message channel: frames are opaque bytes, handed to JS as they arrived (`data`).
    pub binary: Option<bool>,
}

/// What the pump tells JS. `kind`: 0 batch as JSON array text (`json`), 1 batch as
/// strings (`frames`), 2 drain, 3 closed (`closed`), 4 batch of binary frames as on the
/// wire, length headers included (`data`, a Buffer over the received bytes, not a copy).
#[napi(object, object_from_js = false)]
pub struct PumpMessage {
    pub kind: u32,
    pub json: Option<String>,
    pub frames: Option<Vec<String>>,
    pub closed: Option<PumpClosed>,
    #[napi(ts_type = "Buffer")]
    pub data: Option<ExternalBuffer>,
}

const MSG_DRAIN: u32 = 2;
const MSG_CLOSED: u32 = 3;

impl PumpMessage {
    fn of(kind: u32) -> Self {
        Self { kind, json: None, frames: None, closed: None, data: None }
    }
}

#[napi(object, object_from_js = false)]
#[derive(Clone)]
pub struct PumpClosed {
    pub code: f64,
    pub reason: String,
    #[napi(ts_type = "'local' | 'remote' | 'timeout' | 'reset' | 'transport'")]
    pub kind: String,
    /// Set when the close was caused by an error (a protocol violation, a failed write).
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

type Tsfn = WeakCallback<PumpMessage>;

struct PumpShared {
    connection: Arc<ConnState>,
    /// What JS calls this in messages: "event target" or "message channel".
    noun: &'static str,
    outbox: Mutex<Outbox>,
    max_frame: usize,
    max_buffered: usize,
    /// Bytes the writer took from the outbox and is writing now.
    in_flight: AtomicUsize,
    enqueued: AtomicU64,
    written: watch::Sender<u64>,
    wake_writer: Notify,
    /// Batches JS has finished with since the reader last looked.
    acked: AtomicUsize,
    ack: Notify,
    drain_wanted: AtomicBool,
    /// `close()` was called: the writer finishes the stream once the outbox is empty.
    close_requested: AtomicBool,
    /// The writer finished the stream and the peer acknowledged everything.
    finished: CancellationToken,
    /// Fires once the pump has stopped (the connection closed).
    stopped: CancellationToken,
    closed_info: OnceLock<PumpClosed>,
}

impl PumpShared {
    fn buffered(&self) -> usize {
        self.outbox.lock().map(|o| o.len()).unwrap_or(0) + self.in_flight.load(Ordering::Acquire)
    }

    fn check_open(&self) -> IrohResult<()> {
        if self.stopped.is_cancelled() || self.closed_info.get().is_some() || self.close_requested.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    fn outbox(&self) -> IrohResult<std::sync::MutexGuard<'_, Outbox>> {
        self.outbox.lock().map_err(|_| IrohError::new(ErrorCode::Internal, "outbox poisoned"))
    }

    /// Books `len` newly queued bytes (`buffered` in all) and wakes the writer. Returns
    /// what is buffered.
    fn queued(&self, len: usize, buffered: usize) -> f64 {
        self.enqueued.fetch_add(len as u64, Ordering::AcqRel);
        if buffered > self.max_buffered / 2 {
            self.drain_wanted.store(true, Ordering::Release);
        }
        self.wake_writer.notify_one();
        buffered as f64
    }

    fn closed_error(&self) -> IrohError {
        match self.closed_info.get() {
            Some(info) => IrohError::new(
                ErrorCode::ConnectionClosed,
                format!("the {} is closed ({}, code {}: {})", self.noun, info.kind, info.code, info.reason),
            ),
            None => IrohError::new(ErrorCode::ConnectionClosed, format!("the {} is closed", self.noun)),
        }
    }

    /// Closes the connection because of `err`, and records why.
    fn fail(&self, code: u32, err: IrohError) {
        let _ = self.closed_info.set(PumpClosed {
            code: code as f64,
            reason: err.message.clone(),
            kind: "local".into(),
            error_code: Some(err.code().to_string()),
            error_message: Some(err.message.clone()),
        });
        self.connection.close(code, &truncate_reason(&err.message));
    }

    /// Records the final close (first writer wins) and tells JS, once.
    fn finish(&self, tsfn: &Tsfn, from: Option<&ConnectionError>) {
        if self.stopped.is_cancelled() {
            return;
        }
        let info = self.closed_info.get_or_init(|| {
            let base = match from {
                Some(err) => self.connection.close_info(err),
                None => self
                    .connection
                    .close_reason()
                    .map(|e| self.connection.close_info(&e))
                    .unwrap_or(CloseInfo {
                        code: 0.0,
                        reason: "closed".into(),
                        kind: "local".into(),
                    }),
            };
            PumpClosed { code: base.code, reason: base.reason, kind: base.kind, error_code: None, error_message: None }
        });
        let message = PumpMessage { closed: Some(info.clone()), ..PumpMessage::of(MSG_CLOSED) };
        self.stopped.cancel();
        // What was queued can no longer be sent: free it now, not when V8 collects the pump.
        if let Ok(mut outbox) = self.outbox.lock() {
            *outbox = Outbox::new(self.max_frame, self.max_buffered);
        }
        notify(tsfn, message);
    }
}

fn truncate_reason(s: &str) -> String {
    let mut end = s.len().min(512);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn frame_error(e: FrameError) -> (u32, IrohError) {
    match e {
        FrameError::TooLarge { .. } => (CLOSE_FRAME_TOO_LARGE, IrohError::new(ErrorCode::FrameTooLarge, e.to_string())),
        FrameError::Truncated { .. } => (CLOSE_TRUNCATED_FRAME, IrohError::new(ErrorCode::Protocol, e.to_string())),
        FrameError::Malformed(_) => (CLOSE_MALFORMED_FRAME, IrohError::new(ErrorCode::Protocol, e.to_string())),
    }
}

/// The native half of an event target.
#[napi]
pub struct EventPump {
    shared: Arc<PumpShared>,
}

/// Starts a pump on `conn`: the dialing side opens the stream (`accept = false`), the
/// accepting side waits for it. Events sent before the stream exists wait in the outbox.
#[napi(catch_unwind)]
pub fn create_event_pump(
    conn: &Connection,
    accept: bool,
    options: PumpOptions,
    #[napi(ts_arg_type = "(message: PumpMessage) => void")] on_message: Function<PumpMessage, ()>,
) -> Result<EventPump, CodedError> {
    let max_frame = options.max_frame_bytes.map(|n| n as usize).unwrap_or(DEFAULT_MAX_FRAME_BYTES);
    let max_buffered = options.max_buffered_bytes.map(|n| n as usize).unwrap_or(DEFAULT_MAX_BUFFERED_BYTES);
    if max_frame == 0 || max_buffered == 0 {
        return Err(IrohError::invalid_argument("maxFrameBytes and maxBufferedBytes must be positive").into());
    }
    let binary = options.binary.unwrap_or(false);
    let mode = match (binary, options.raw_frames.unwrap_or(false)) {
        (true, _) => BatchMode::Binary,
        (false, true) => BatchMode::Raw,
        (false, false) => BatchMode::Json,
    };
    let frame_timeout = Duration::from_millis(u64::from(options.frame_timeout_ms.unwrap_or(DEFAULT_FRAME_TIMEOUT_MS)));
    let tsfn: Tsfn = weak_callback(on_message)?;
    let (written, _) = watch::channel(0u64);
    let shared = Arc::new(PumpShared {
        connection: conn.state.clone(),
        noun: if binary { "message channel" } else { "event target" },
        outbox: Mutex::new(Outbox::new(max_frame, max_buffered)),
        max_frame,
        max_buffered,
        in_flight: AtomicUsize::new(0),
        enqueued: AtomicU64::new(0),
        written,
        wake_writer: Notify::new(),
        acked: AtomicUsize::new(0),
        ack: Notify::new(),
        drain_wanted: AtomicBool::new(false),
        close_requested: AtomicBool::new(false),
        finished: CancellationToken::new(),
        stopped: CancellationToken::new(),
        closed_info: OnceLock::new(),
    });
    let tsfn = Arc::new(tsfn);
    let (send_tx, send_rx) = oneshot::channel();
    // Tracked: they hold the connection and its stream, and the endpoint's close waits for them.
    napi::bindgen_prelude::spawn(conn.state.track(read_loop(shared.clone(), tsfn.clone(), accept, FrameLimits { max_frame, frame_timeout }, mode, send_tx)));
    napi::bindgen_prelude::spawn(conn.state.track(write_loop(shared.clone(), tsfn, send_rx, !accept)));
    Ok(EventPump { shared })
}

async fn read_loop(
    shared: Arc<PumpShared>,
    tsfn: Arc<Tsfn>,
    accept: bool,
    limits: FrameLimits,
    mode: BatchMode,
    send_tx: oneshot::Sender<iroh::endpoint::SendStream>,
) {
    let conn = match shared.connection.handle() {
        Ok(conn) => conn,
        Err(e) => return shared.finish(&tsfn, Some(&e)),
    };
    let opened = if accept { conn.accept_bi().await } else { conn.open_bi().await };
    let mut recv = match opened {
        Ok((send, recv)) => {
            let _ = send_tx.send(send);
            recv
        }
        Err(e) => return shared.finish(&tsfn, Some(&e)),
    };
    let mut decoder = FrameDecoder::new(limits.max_frame);
    let mut inbox = Inbox::new(mode);
    let mut last_bytes = Instant::now();
    // Re-armed only when it fires early, not on every read: reads are frequent.
    let stall = tokio::time::sleep(limits.frame_timeout);
    tokio::pin!(stall);
    let mut with_js = 0;
    let mut paused = false;
    let mut eof = false;
    loop {
        if let Err(e) = cut_frames(&mut decoder, &mut inbox) {
            return protocol_failure(&shared, &tsfn, &mut inbox, e);
        }
        with_js -= shared.acked.swap(0, Ordering::AcqRel).min(with_js);
        while with_js < BATCHES_WITH_JS {
            let Some(payload) = inbox.next_batch() else { break };
            notify(&tsfn, batch_message(payload));
            with_js += 1;
        }
        // The stream is always read at once (noq 1.4 fails a connection whose unread
        // stream data holds more than 1,024 separate packets). A slow listener pushes back
        // through the connection's flow-control window instead: while too much waits for
        // JS, the window is closed, so the peer can send at most one more window.
        let backlog = inbox.backlog();
        if !paused && backlog > PAUSE_BACKLOG {
            conn.set_receive_window(VarInt::from_u32(0));
            paused = true;
        } else if paused && backlog < RESUME_BACKLOG {
            conn.set_receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
            paused = false;
            last_bytes = Instant::now();
        }
        tokio::select! {
            _ = shared.ack.notified(), if with_js > 0 => {}
            read = read_chunks(&mut recv), if !eof => match read {
                Ok(Some((chunks, n))) => {
                    // Frames are cut chunk by chunk: a frame's header is seen, and the
                    // frame given its own allocation, after at most one chunk of it.
                    for chunk in &chunks[..n] {
                        decoder.extend(chunk);
                        if let Err(e) = cut_frames(&mut decoder, &mut inbox) {
                            return protocol_failure(&shared, &tsfn, &mut inbox, e);
                        }
                    }
                    last_bytes = Instant::now();
                }
                Ok(None) => {
                    if let Err(e) = decoder.finish() {
                        return protocol_failure(&shared, &tsfn, &mut inbox, e);
                    }
                    // The peer will send no more events; ours may still flow to it.
                    eof = true;
                }
                Err(ReadError::ConnectionLost(e)) => {
                    flush_all(&tsfn, &mut inbox);
                    return shared.finish(&tsfn, Some(&e));
                }
                Err(e) => {
                    flush_all(&tsfn, &mut inbox);
                    shared.fail(CLOSE_STREAM_ERROR, IrohError::new(ErrorCode::Protocol, format!("the event stream failed: {e}")));
                    return shared.finish(&tsfn, None);
                }
            },
            // Not while we paused the peer ourselves.
            _ = &mut stall, if decoder.buffered() > 0 && !eof && !paused => {
                if last_bytes.elapsed() < limits.frame_timeout {
                    stall.as_mut().reset(last_bytes + limits.frame_timeout);
                    continue;
                }
                let have = decoder.buffered();
                let err = IrohError::new(
                    ErrorCode::Protocol,
                    format!("a frame stalled: {have} bytes of it arrived, then nothing for {} ms", limits.frame_timeout.as_millis()),
                );
                flush_all(&tsfn, &mut inbox);
                shared.fail(CLOSE_TRUNCATED_FRAME, err);
                return shared.finish(&tsfn, None);
            }
            e = conn.closed(), if eof => {
                flush_all(&tsfn, &mut inbox);
                return shared.finish(&tsfn, Some(&e));
            }
        }
    }
}

/// The chunks that have arrived (at least one), `None` at the end of the stream.
async fn read_chunks(recv: &mut iroh::endpoint::RecvStream) -> Result<Option<([bytes::Bytes; READ_CHUNKS], usize)>, ReadError> {
    let mut chunks: [bytes::Bytes; READ_CHUNKS] = Default::default();
    Ok(recv.read_many_chunks(&mut chunks).await?.map(|n| (chunks, n)))
}

/// Moves every complete frame from the decoder into the inbox.
fn cut_frames(decoder: &mut FrameDecoder, inbox: &mut Inbox) -> Result<(), FrameError> {
    if inbox.mode() == BatchMode::Binary {
        // Header and all, still in the decoder's allocation: no copy on the way to JS.
        while let Some(frame) = decoder.next_wire_frame()? {
            inbox.push_wire(frame);
        }
        return Ok(());
    }
    while let Some(frame) = decoder.next_frame()? {
        inbox.push(frame)?;
    }
    Ok(())
}

fn frame_too_large(noun: &str, len: usize, max: usize) -> IrohError {
    let what = if noun == "event target" { "the event is {len} bytes serialized" } else { "the message is {len} bytes" };
    let what = what.replace("{len}", &len.to_string());
    IrohError::new(ErrorCode::FrameTooLarge, format!("{what}, more than maxFrameBytes ({max})"))
}

fn batch_message(payload: BatchPayload) -> PumpMessage {
    match payload {
        BatchPayload::Json(json) => PumpMessage { json: Some(json), ..PumpMessage::of(0) },
        BatchPayload::Raw(frames) => PumpMessage { frames: Some(frames), ..PumpMessage::of(1) },
        BatchPayload::Binary(data) => PumpMessage { data: Some(ExternalBuffer(data)), ..PumpMessage::of(4) },
    }
}

/// Hands JS the events that arrived before the end: they were valid and are not lost.
fn flush_all(tsfn: &Tsfn, inbox: &mut Inbox) {
    while let Some(payload) = inbox.next_batch() {
        notify(tsfn, batch_message(payload));
    }
}

fn protocol_failure(shared: &PumpShared, tsfn: &Tsfn, inbox: &mut Inbox, e: FrameError) {
    flush_all(tsfn, inbox);
    let (code, err) = frame_error(e);
    shared.fail(code, err);
    shared.finish(tsfn, None);
}

/// When the opener re-announces its stream while it has written nothing: a zero-length
/// STREAM frame is not retransmitted if its packet is lost, so a few spaced repeats make a
/// lost announcement as unlikely as several lost packets in a row.
const ANNOUNCE_REPEATS_MS: [u64; 6] = [50, 150, 450, 1_350, 4_050, 12_150];

async fn write_loop(
    shared: Arc<PumpShared>,
    tsfn: Arc<Tsfn>,
    send_rx: oneshot::Receiver<iroh::endpoint::SendStream>,
    announce: bool,
) {
    let mut send_rx = send_rx;
    let mut send = loop {
        tokio::select! {
            s = &mut send_rx => match s { Ok(s) => break s, Err(_) => return },
            _ = shared.wake_writer.notified() => {
                // Closed before the peer opened the stream: there is nothing to finish, and
                // what was queued for it cannot be delivered.
                if shared.close_requested.load(Ordering::Acquire) {
                    shared.finished.cancel();
                    return;
                }
            }
            _ = shared.stopped.cancelled() => return,
        }
    };
    // QUIC tells the peer about a stream only with its first STREAM frame, and the wire
    // protocol's acceptor waits for it before it can send anything: a spoke that only
    // listens would hear nothing. A zero-length write sends an empty STREAM frame, which
    // opens the stream at the peer and gives its application no bytes at all, so peers
    // that speak the plain protocol see nothing new.
    let mut announcements = if announce { ANNOUNCE_REPEATS_MS.iter() } else { [].iter() };
    let mut next_announcement = announce.then(Instant::now);
    loop {
        if let Some(at) = next_announcement {
            if at <= Instant::now() {
                let _ = send.write(&[]).await;
                next_announcement = announcements.next().map(|ms| Instant::now() + Duration::from_millis(*ms));
            }
        }
        let (mut data, len) = {
            let Ok(mut outbox) = shared.outbox.lock() else { return };
            let len = outbox.len();
            let data = outbox.take();
            shared.in_flight.store(len, Ordering::Release);
            (data, len)
        };
        if len == 0 {
            if shared.close_requested.load(Ordering::Acquire) {
                // QUIC drops unacknowledged stream data when a connection closes, so
                // finish the stream and wait until the peer has everything.
                if send.finish().is_ok() {
                    tokio::select! {
                        _ = send.stopped() => {}
                        _ = shared.stopped.cancelled() => {}
                    }
                }
                shared.finished.cancel();
                return;
            }
            if shared.drain_wanted.swap(false, Ordering::AcqRel) {
                notify(&tsfn, PumpMessage::of(MSG_DRAIN));
            }
            let announce_at = next_announcement.unwrap_or_else(Instant::now);
            tokio::select! {
                _ = shared.wake_writer.notified() => continue,
                _ = shared.stopped.cancelled() => return,
                _ = tokio::time::sleep_until(announce_at), if next_announcement.is_some() => continue,
            }
        }
        // Real data announces the stream for good (QUIC retransmits it).
        next_announcement = None;
        let result = tokio::select! {
            r = send.write_all_chunks(&mut data) => r,
            _ = shared.stopped.cancelled() => return,
        };
        shared.in_flight.store(0, Ordering::Release);
        match result {
            Ok(()) => shared.written.send_modify(|w| *w += len as u64),
            Err(iroh::endpoint::WriteError::ConnectionLost(e)) => return shared.finish(&tsfn, Some(&e)),
            Err(e) => {
                let err = IrohError::new(ErrorCode::StreamStopped, format!("the peer stopped reading events: {e}"));
                shared.fail(CLOSE_STREAM_ERROR, err);
                return shared.finish(&tsfn, None);
            }
        }
    }
}

#[napi]
impl EventPump {
    /// Queues one serialized event and returns the bytes now buffered. Never waits;
    /// throws `ERR_IROH_BUFFER_FULL` past `maxBufferedBytes` and
    /// `ERR_IROH_FRAME_TOO_LARGE` past `maxFrameBytes`.
    #[napi(catch_unwind)]
    pub fn send(&self, payload: &[u8]) -> Result<f64, CodedError> {
        let shared = &self.shared;
        shared.check_open()?;
        let in_flight = shared.in_flight.load(Ordering::Acquire);
        let (queued, frame_len) = {
            let mut outbox = shared.outbox()?;
            match outbox.push(payload, in_flight) {
                Ok(frame_len) => (outbox.len(), frame_len),
                Err(OutboxError::FrameTooLarge { len, max }) => return Err(frame_too_large(shared.noun, len, max).into()),
                Err(OutboxError::Full { buffered, len, max }) => {
                    self.want_drain();
                    return Err(IrohError::new(
                        ErrorCode::BufferFull,
                        format!(
                            "{buffered} bytes are waiting to be sent and {len} more would pass maxBufferedBytes ({max}): wait for flush() or the drain event"
                        ),
                    )
                    .into());
                }
            }
        };
        Ok(shared.queued(frame_len, queued + in_flight))
    }

    /// Queues frames that JS encoded itself, back to back in wire format, and returns
    /// the bytes now buffered. JS checked each frame against both limits as it encoded
    /// it; this batching saves a native call per small event.
    #[napi(catch_unwind)]
    pub fn send_frames(&self, frames: &[u8]) -> Result<f64, CodedError> {
        let shared = &self.shared;
        shared.check_open()?;
        codec::check_frames(frames, shared.max_frame)
            .map_err(|e| IrohError::new(ErrorCode::Internal, format!("badly staged frames: {e}")))?;
        let queued = {
            let mut outbox = shared.outbox()?;
            outbox.push_frames(frames);
            outbox.len()
        };
        Ok(shared.queued(frames.len(), queued + shared.in_flight.load(Ordering::Acquire)))
    }

    /// Like `sendFrames`, but takes the buffer itself rather than a copy: JS encoded the
    /// frames into it (the one copy of each message) and writes nothing more into that
    /// part of it. It is written to QUIC as it is and released once written.
    #[napi(catch_unwind)]
    pub fn send_staged(&self, frames: Buffer) -> Result<f64, CodedError> {
        let shared = &self.shared;
        shared.check_open()?;
        codec::check_frames(&frames, shared.max_frame)
            .map_err(|e| IrohError::new(ErrorCode::Internal, format!("badly staged frames: {e}")))?;
        let len = frames.len();
        let queued = {
            let mut outbox = shared.outbox()?;
            outbox.push_owned(bytes::Bytes::from_owner(frames));
            outbox.len()
        };
        Ok(shared.queued(len, queued + shared.in_flight.load(Ordering::Acquire)))
    }

    /// `maxFrameBytes` and `maxBufferedBytes` in force, so JS can check staged frames.
    #[napi(catch_unwind)]
    pub fn limits(&self) -> PumpLimits {
        PumpLimits { max_frame_bytes: self.shared.max_frame as f64, max_buffered_bytes: self.shared.max_buffered as f64 }
    }

    /// Bytes queued or being written.
    #[napi(catch_unwind)]
    pub fn buffered_amount(&self) -> f64 {
        self.shared.buffered() as f64
    }

    /// Asks for a drain message the next time the send buffer is empty.
    #[napi(catch_unwind)]
    pub fn want_drain(&self) {
        self.shared.drain_wanted.store(true, Ordering::Release);
        self.shared.wake_writer.notify_one();
    }

    /// JS took the last batch: the reader may hand over the next.
    #[napi(catch_unwind)]
    pub fn ack(&self) {
        self.shared.acked.fetch_add(1, Ordering::AcqRel);
        self.shared.ack.notify_one();
    }

    /// Resolves once everything queued so far has been handed to QUIC.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn flush<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let shared = self.shared.clone();
        let target = shared.enqueued.load(Ordering::Acquire);
        shared.wake_writer.notify_one();
        spawn(env, async move {
            let mut written = shared.written.subscribe();
            tokio::select! {
                r = written.wait_for(|w| *w >= target) => r.map(|_| ()).map_err(|_| shared.closed_error()),
                _ = shared.stopped.cancelled() => {
                    if *shared.written.borrow() >= target { Ok(()) } else { Err(shared.closed_error()) }
                }
            }
        })
    }

    /// A frame the custom `parse` rejected: closes the connection as for any malformed
    /// frame (code 4002), and the close reports `ERR_IROH_PROTOCOL` with `message`.
    #[napi(catch_unwind)]
    pub fn malformed_frame(&self, message: String) {
        self.shared.fail(CLOSE_MALFORMED_FRAME, IrohError::new(ErrorCode::Protocol, message));
    }

    /// Sends what is queued and waits until the peer has received it, then closes the
    /// connection with `code` and `reason`.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env, code: Option<u32>, reason: Option<String>) -> napi::Result<PromiseRaw<'env, ()>> {
        let shared = self.shared.clone();
        spawn(env, async move {
            if !shared.stopped.is_cancelled() {
                shared.close_requested.store(true, Ordering::Release);
                shared.wake_writer.notify_one();
                // No timeout: a live peer that reads slowly still gets every event, and a
                // dead one is detected by the idle timeout, which stops the pump.
                tokio::select! {
                    _ = shared.finished.cancelled() => {}
                    _ = shared.stopped.cancelled() => {}
                }
            }
            shared.connection.close(code.unwrap_or(CLOSE_NORMAL), &reason.unwrap_or_default());
            Ok(())
        })
    }
}

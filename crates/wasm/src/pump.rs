//! The framed message pump for the browser: the native pump's rules (src/pump.rs and
//! src/pump/*) on one thread. A reader task cuts frames out of the stream and posts whole
//! batches to the JS mailbox, at most `flow::BATCHES_WITH_JS` unacknowledged; `send` queues
//! synchronously and a writer task takes everything queued for one write. Frames, batches
//! and the flow rules are `alkdev-iroh-core`'s, shared with the native pump.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use alkdev_iroh_core::batch::{BatchMode, BatchPayload, Inbox, Outbox, OutboxError};
use alkdev_iroh_core::close::{self, CloseCode};
use alkdev_iroh_core::codec::{self, FrameDecoder, FrameError, DEFAULT_MAX_FRAME_BYTES};
use alkdev_iroh_core::error::{ErrorCode, IrohError};
use alkdev_iroh_core::flow::{self, ReceiveFlow, Window, CONNECTION_RECEIVE_WINDOW};
use iroh::endpoint::{ConnectionError, ReadError, VarInt};
use n0_future::time::{sleep, sleep_until, Instant};
use tokio::sync::{oneshot, Notify};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::connection::{ConnState, Connection};
use crate::{internal, js, js_error, post, JsResult, Token};

const DEFAULT_MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;
const DEFAULT_FRAME_TIMEOUT_MS: u32 = 30_000;
const READ_CHUNKS: usize = 32;
/// As the native writer: a zero-length STREAM frame is not retransmitted, so repeat it.
const ANNOUNCE_REPEATS_MS: [u64; 6] = [50, 150, 450, 1_350, 4_050, 12_150];

struct Closed {
    code: f64,
    reason: String,
    kind: String,
    error: Option<IrohError>,
}

impl Closed {
    fn to_js(&self) -> JsValue {
        let o = js::object(&[
            ("code", JsValue::from(self.code)),
            ("reason", JsValue::from_str(&self.reason)),
            ("kind", JsValue::from_str(&self.kind)),
        ]);
        if let Some(e) = &self.error {
            js::set(&o, "errorCode", &JsValue::from_str(e.code()));
            js::set(&o, "errorMessage", &JsValue::from_str(&e.message));
        }
        o
    }
}

struct Shared {
    connection: Rc<ConnState>,
    mode: BatchMode,
    to: u32,
    outbox: RefCell<Outbox>,
    max_frame: usize,
    max_buffered: usize,
    in_flight: Cell<usize>,
    enqueued: Cell<u64>,
    written: Cell<u64>,
    wrote: Notify,
    wake_writer: Notify,
    acked: Cell<usize>,
    ack: Notify,
    drain_wanted: Cell<bool>,
    nudge_wanted: Cell<bool>,
    close_requested: Cell<bool>,
    finished: Token,
    stopped: Token,
    closed_info: RefCell<Option<Closed>>,
}

fn fire(t: &Token) {
    t.cancelled.set(true);
    t.notify.notify_waiters();
}

impl Shared {
    fn buffered(&self) -> usize {
        self.outbox.borrow().len() + self.in_flight.get()
    }

    fn check_open(&self) -> Result<(), IrohError> {
        if self.stopped.cancelled.get() || self.closed_info.borrow().is_some() || self.close_requested.get() {
            return Err(self.closed_error());
        }
        Ok(())
    }

    fn closed_error(&self) -> IrohError {
        match &*self.closed_info.borrow() {
            Some(info) => IrohError::new(
                ErrorCode::ConnectionClosed,
                format!("the {} is closed ({}, code {}: {})", self.mode.noun(), info.kind, info.code, info.reason),
            ),
            None => IrohError::new(ErrorCode::ConnectionClosed, format!("the {} is closed", self.mode.noun())),
        }
    }

    fn queued(&self, len: usize, buffered: usize) -> f64 {
        self.enqueued.set(self.enqueued.get() + len as u64);
        if flow::wants_drain(buffered, self.max_buffered) {
            self.drain_wanted.set(true);
        }
        self.wake_writer.notify_one();
        buffered as f64
    }

    fn want_drain(&self) {
        self.drain_wanted.set(true);
        self.wake_writer.notify_one();
    }

    fn fail(&self, code: CloseCode, err: IrohError) {
        if self.closed_info.borrow().is_none() {
            *self.closed_info.borrow_mut() = Some(Closed {
                code: f64::from(code.code()),
                reason: err.message.clone(),
                kind: "local".into(),
                error: Some(err.clone()),
            });
        }
        let mut end = err.message.len().min(512);
        while !err.message.is_char_boundary(end) {
            end -= 1;
        }
        self.connection.close(code.code(), &err.message[..end]);
    }

    /// Records the final close (first wins) and tells JS, once.
    fn finish(&self, from: Option<&ConnectionError>) {
        if self.stopped.cancelled.get() {
            return;
        }
        if self.closed_info.borrow().is_none() {
            let base = match from {
                Some(err) => self.connection.close_info(err),
                None => match self.connection.conn.close_reason() {
                    Some(e) => self.connection.close_info(&e),
                    None => crate::connection::CloseInfo { code: 0.0, reason: "closed".into(), kind: "local" },
                },
            };
            *self.closed_info.borrow_mut() =
                Some(Closed { code: base.code, reason: base.reason, kind: base.kind.into(), error: None });
        }
        let message = js::object(&[
            ("kind", JsValue::from_str("closed")),
            ("closed", self.closed_info.borrow().as_ref().map(Closed::to_js).unwrap_or(JsValue::NULL)),
        ]);
        fire(&self.stopped);
        *self.outbox.borrow_mut() = Outbox::new(self.max_frame, self.max_buffered);
        post(self.to, message);
    }

    fn take_broadcast(&self, frames: &bytes::Bytes) -> Result<f64, IrohError> {
        if self.check_open().is_err() {
            return Ok(-2.0);
        }
        codec::check_frames(frames, self.max_frame)
            .map_err(|e| IrohError::new(ErrorCode::Internal, format!("badly encoded broadcast: {e}")))?;
        let in_flight = self.in_flight.get();
        let queued = {
            let mut outbox = self.outbox.borrow_mut();
            match outbox.push_broadcast(frames, in_flight) {
                Ok(()) => outbox.len(),
                Err(_) => {
                    drop(outbox);
                    self.want_drain();
                    return Ok(-1.0);
                }
            }
        };
        Ok(self.queued(frames.len(), queued + in_flight))
    }
}

fn message_of(payload: BatchPayload) -> JsValue {
    match payload {
        BatchPayload::Json(json) => js::object(&[("kind", JsValue::from_str("json")), ("json", JsValue::from_str(&json))]),
        BatchPayload::Raw(frames) => {
            let list = js_sys::Array::new();
            for f in frames {
                list.push(&JsValue::from_str(&f));
            }
            js::object(&[("kind", JsValue::from_str("frames")), ("frames", list.into())])
        }
        BatchPayload::Binary(data) => {
            js::object(&[("kind", JsValue::from_str("binary")), ("data", js_sys::Uint8Array::from(&data[..]).into())])
        }
    }
}

thread_local! {
    static REGISTRY: RefCell<HashMap<u32, Weak<Shared>>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

/// The JS-facing half of one pump.
#[wasm_bindgen]
pub struct EventPump {
    shared: Rc<Shared>,
    broadcast_id: u32,
}

impl Drop for EventPump {
    fn drop(&mut self) {
        REGISTRY.with(|r| r.borrow_mut().remove(&self.broadcast_id));
    }
}

/// Starts a pump on `conn`: the dialing side opens the stream, the accepting side waits for it.
#[wasm_bindgen(js_name = createEventPump)]
pub fn create_event_pump(conn: &Connection, accept: bool, options: JsValue, to: u32) -> JsResult<EventPump> {
    let num = |k: &str| js::get(&options, k).and_then(|v| v.as_f64());
    let flag = |k: &str| js::get(&options, k).and_then(|v| v.as_bool()).unwrap_or(false);
    let max_frame = num("maxFrameBytes").map(|n| n as usize).unwrap_or(DEFAULT_MAX_FRAME_BYTES);
    let max_buffered = num("maxBufferedBytes").map(|n| n as usize).unwrap_or(DEFAULT_MAX_BUFFERED_BYTES);
    if max_frame == 0 || max_buffered == 0 {
        return Err(js_error(&IrohError::invalid_argument("maxFrameBytes and maxBufferedBytes must be positive")));
    }
    let mode = match (flag("binary"), flag("rawFrames")) {
        (true, _) => BatchMode::Binary,
        (false, true) => BatchMode::Raw,
        (false, false) => BatchMode::Json,
    };
    let frame_timeout =
        Duration::from_millis(num("frameTimeoutMs").map(|n| n as u64).unwrap_or(u64::from(DEFAULT_FRAME_TIMEOUT_MS)));
    let shared = Rc::new(Shared {
        connection: conn.state.clone(),
        mode,
        to,
        outbox: RefCell::new(Outbox::new(max_frame, max_buffered)),
        max_frame,
        max_buffered,
        in_flight: Cell::new(0),
        enqueued: Cell::new(0),
        written: Cell::new(0),
        wrote: Notify::new(),
        wake_writer: Notify::new(),
        acked: Cell::new(0),
        ack: Notify::new(),
        drain_wanted: Cell::new(false),
        nudge_wanted: Cell::new(false),
        close_requested: Cell::new(false),
        finished: Token::default(),
        stopped: Token::default(),
        closed_info: RefCell::new(None),
    });
    let (send_tx, send_rx) = oneshot::channel();
    spawn_local(read_loop(shared.clone(), accept, max_frame, frame_timeout, send_tx));
    spawn_local(write_loop(shared.clone(), send_rx, !accept));
    let broadcast_id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    });
    REGISTRY.with(|r| r.borrow_mut().insert(broadcast_id, Rc::downgrade(&shared)));
    Ok(EventPump { shared, broadcast_id })
}

/// Queues the same encoded frames for every pump named in `pumps` (`hub.broadcast`).
#[wasm_bindgen(js_name = broadcastFrames)]
pub fn broadcast_frames(pumps: &[u32], frames: &[u8]) -> JsResult<Vec<f64>> {
    let frames = bytes::Bytes::copy_from_slice(frames);
    let mut out = Vec::with_capacity(pumps.len());
    for id in pumps {
        let pump = REGISTRY.with(|r| r.borrow().get(id).and_then(Weak::upgrade));
        out.push(match pump {
            Some(p) => p.take_broadcast(&frames).map_err(|e| js_error(&e))?,
            None => -2.0,
        });
    }
    Ok(out)
}

fn too_large(mode: BatchMode, len: usize, max: usize) -> JsValue {
    let what = match mode {
        BatchMode::Json | BatchMode::Raw => format!("the event is {len} bytes serialized"),
        BatchMode::Binary => format!("the message is {len} bytes"),
    };
    js_error(&IrohError::new(ErrorCode::FrameTooLarge, format!("{what}, more than maxFrameBytes ({max})")))
}

#[wasm_bindgen]
impl EventPump {
    pub fn send(&self, payload: &[u8]) -> JsResult<f64> {
        let s = &self.shared;
        s.check_open().map_err(|e| js_error(&e))?;
        let in_flight = s.in_flight.get();
        let pushed = s.outbox.borrow_mut().push(payload, in_flight);
        let frame_len = match pushed {
            Ok(n) => n,
            Err(OutboxError::FrameTooLarge { len, max }) => return Err(too_large(s.mode, len, max)),
            Err(OutboxError::Full { buffered, len, max }) => {
                s.want_drain();
                return Err(js_error(&IrohError::new(
                    ErrorCode::BufferFull,
                    format!("{buffered} bytes are waiting to be sent and {len} more would pass maxBufferedBytes ({max}): wait for flush() or the drain event"),
                )));
            }
        };
        let queued = s.outbox.borrow().len();
        Ok(s.queued(frame_len, queued + in_flight))
    }

    #[wasm_bindgen(js_name = sendFrames)]
    pub fn send_frames(&self, frames: &[u8]) -> JsResult<f64> {
        let s = &self.shared;
        s.check_open().map_err(|e| js_error(&e))?;
        codec::check_frames(frames, s.max_frame).map_err(|e| internal(format!("badly staged frames: {e}")))?;
        let queued = {
            let mut outbox = s.outbox.borrow_mut();
            outbox.push_frames(frames);
            outbox.len()
        };
        Ok(s.queued(frames.len(), queued + s.in_flight.get()))
    }

    /// Takes a copy here: wasm cannot hold on to JS memory.
    #[wasm_bindgen(js_name = sendStaged)]
    pub fn send_staged(&self, frames: &[u8]) -> JsResult<f64> {
        self.send_frames(frames)
    }

    pub fn limits(&self) -> JsValue {
        js::object(&[
            ("maxFrameBytes", JsValue::from(self.shared.max_frame as f64)),
            ("maxBufferedBytes", JsValue::from(self.shared.max_buffered as f64)),
            ("broadcastId", JsValue::from(self.broadcast_id)),
        ])
    }

    #[wasm_bindgen(js_name = bufferedAmount)]
    pub fn buffered_amount(&self) -> f64 {
        self.shared.buffered() as f64
    }

    #[wasm_bindgen(js_name = wantDrain)]
    pub fn want_drain(&self) {
        self.shared.want_drain();
    }

    pub fn nudge(&self) {
        self.shared.nudge_wanted.set(true);
        self.shared.wake_writer.notify_one();
    }

    pub fn ack(&self) {
        self.shared.acked.set(self.shared.acked.get() + 1);
        self.shared.ack.notify_one();
    }

    pub fn flush(&self) -> js_sys::Promise {
        let s = self.shared.clone();
        let target = s.enqueued.get();
        s.wake_writer.notify_one();
        future_to_promise(async move {
            loop {
                if s.written.get() >= target {
                    return Ok(JsValue::UNDEFINED);
                }
                if s.stopped.cancelled.get() {
                    return Err(js_error(&s.closed_error()));
                }
                tokio::select! {
                    _ = s.wrote.notified() => {}
                    _ = s.stopped.cancelled() => {}
                }
            }
        })
    }

    #[wasm_bindgen(js_name = malformedFrame)]
    pub fn malformed_frame(&self, message: String) {
        self.shared.fail(CloseCode::MalformedFrame, IrohError::new(ErrorCode::Protocol, message));
    }

    pub fn close(&self, code: Option<u32>, reason: Option<String>) -> js_sys::Promise {
        let s = self.shared.clone();
        future_to_promise(async move {
            if !s.stopped.cancelled.get() {
                s.close_requested.set(true);
                s.wake_writer.notify_one();
                tokio::select! {
                    _ = s.finished.cancelled() => {}
                    _ = s.stopped.cancelled() => {}
                }
            }
            s.connection.close(code.unwrap_or(CloseCode::Normal.code()), &reason.unwrap_or_default());
            Ok(JsValue::UNDEFINED)
        })
    }
}

fn cut_frames(decoder: &mut FrameDecoder, inbox: &mut Inbox) -> Result<(), FrameError> {
    if inbox.mode() == BatchMode::Binary {
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

fn flush_all(s: &Shared, inbox: &mut Inbox) {
    while let Some(payload) = inbox.next_batch() {
        post(s.to, message_of(payload));
    }
}

fn protocol_failure(s: &Shared, inbox: &mut Inbox, e: FrameError) {
    flush_all(s, inbox);
    let (code, err) = close::frame_failure(e);
    s.fail(code, err);
    s.finish(None);
}

async fn read_loop(
    s: Rc<Shared>,
    accept: bool,
    max_frame: usize,
    frame_timeout: Duration,
    send_tx: oneshot::Sender<iroh::endpoint::SendStream>,
) {
    let conn = s.connection.conn.clone();
    let opened = if accept { conn.accept_bi().await } else { conn.open_bi().await };
    let mut recv = match opened {
        Ok((send, recv)) => {
            let _ = send_tx.send(send);
            recv
        }
        Err(e) => return s.finish(Some(&e)),
    };
    let mut decoder = FrameDecoder::new(max_frame);
    let mut inbox = Inbox::new(s.mode);
    let mut last_bytes = Instant::now();
    let mut stall = std::pin::pin!(sleep(frame_timeout));
    let mut flow = ReceiveFlow::new();
    let mut eof = false;
    loop {
        if let Err(e) = cut_frames(&mut decoder, &mut inbox) {
            return protocol_failure(&s, &mut inbox, e);
        }
        flow.acked(s.acked.replace(0));
        while flow.may_hand_over() {
            let Some(payload) = inbox.next_batch() else { break };
            post(s.to, message_of(payload));
            flow.handed_over();
        }
        match flow.window(inbox.backlog()) {
            Some(Window::Close) => conn.set_receive_window(VarInt::from_u32(0)),
            Some(Window::Open) => {
                conn.set_receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
                last_bytes = Instant::now();
            }
            None => {}
        }
        let mut chunks: [bytes::Bytes; READ_CHUNKS] = Default::default();
        tokio::select! {
            _ = s.ack.notified(), if !flow.may_hand_over() => {}
            read = recv.read_many_chunks(&mut chunks), if !eof => match read {
                Ok(Some(n)) => {
                    for chunk in &chunks[..n] {
                        decoder.extend(chunk);
                        if let Err(e) = cut_frames(&mut decoder, &mut inbox) {
                            return protocol_failure(&s, &mut inbox, e);
                        }
                    }
                    last_bytes = Instant::now();
                }
                Ok(None) => {
                    if let Err(e) = decoder.finish() {
                        return protocol_failure(&s, &mut inbox, e);
                    }
                    eof = true;
                }
                Err(ReadError::ConnectionLost(e)) => {
                    flush_all(&s, &mut inbox);
                    return s.finish(Some(&e));
                }
                Err(e) => {
                    flush_all(&s, &mut inbox);
                    s.fail(CloseCode::StreamError, IrohError::new(ErrorCode::Protocol, format!("the event stream failed: {e}")));
                    return s.finish(None);
                }
            },
            _ = &mut stall, if decoder.buffered() > 0 && !eof && !flow.paused() => {
                if last_bytes.elapsed() < frame_timeout {
                    stall.as_mut().reset(last_bytes + frame_timeout);
                    continue;
                }
                let err = IrohError::new(
                    ErrorCode::Protocol,
                    format!("a frame stalled: {} bytes of it arrived, then nothing for {} ms", decoder.buffered(), frame_timeout.as_millis()),
                );
                flush_all(&s, &mut inbox);
                s.fail(CloseCode::TruncatedFrame, err);
                return s.finish(None);
            }
            e = conn.closed(), if eof => {
                flush_all(&s, &mut inbox);
                return s.finish(Some(&e));
            }
            _ = s.stopped.cancelled() => return,
        }
    }
}

async fn write_loop(s: Rc<Shared>, send_rx: oneshot::Receiver<iroh::endpoint::SendStream>, announce: bool) {
    let mut send_rx = send_rx;
    let mut send = loop {
        tokio::select! {
            r = &mut send_rx => match r { Ok(send) => break send, Err(_) => return },
            _ = s.wake_writer.notified() => {
                if s.close_requested.get() {
                    fire(&s.finished);
                    return;
                }
            }
            _ = s.stopped.cancelled() => return,
        }
    };
    let mut announcements = if announce { ANNOUNCE_REPEATS_MS.iter() } else { [].iter() };
    let mut next_announcement = announce.then(Instant::now);
    loop {
        if s.nudge_wanted.replace(false) {
            let _ = send.write(&[]).await;
        }
        if let Some(at) = next_announcement {
            if at <= Instant::now() {
                let _ = send.write(&[]).await;
                next_announcement = announcements.next().map(|ms| Instant::now() + Duration::from_millis(*ms));
            }
        }
        let (mut data, len) = {
            let mut outbox = s.outbox.borrow_mut();
            let len = outbox.len();
            let data = outbox.take();
            s.in_flight.set(len);
            (data, len)
        };
        if len == 0 {
            if s.close_requested.get() {
                if send.finish().is_ok() {
                    tokio::select! {
                        _ = send.stopped() => {}
                        _ = s.stopped.cancelled() => {}
                    }
                }
                fire(&s.finished);
                return;
            }
            if s.drain_wanted.replace(false) {
                post(s.to, js::object(&[("kind", JsValue::from_str("drain"))]));
            }
            let announce_at = next_announcement.unwrap_or_else(Instant::now);
            tokio::select! {
                _ = s.wake_writer.notified() => continue,
                _ = s.stopped.cancelled() => return,
                _ = sleep_until(announce_at), if next_announcement.is_some() => continue,
            }
        }
        next_announcement = None;
        let result = tokio::select! {
            r = send.write_all_chunks(&mut data) => r,
            _ = s.stopped.cancelled() => return,
        };
        s.in_flight.set(0);
        match result {
            Ok(()) => {
                s.written.set(s.written.get() + len as u64);
                s.wrote.notify_waiters();
            }
            Err(iroh::endpoint::WriteError::ConnectionLost(e)) => return s.finish(Some(&e)),
            Err(e) => {
                s.fail(
                    CloseCode::StreamError,
                    IrohError::new(ErrorCode::StreamStopped, format!("the peer stopped reading events: {e}")),
                );
                return s.finish(None);
            }
        }
    }
}

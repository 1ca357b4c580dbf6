//! The framed message pump under the JS event targets and message channels: its
//! JS-facing half. A reader task (`pump/reader.rs`) cuts frames out of the stream and hands
//! JS whole batches through one weak JS callback; at most two batches are with JS
//! unacknowledged, so a slow listener (or a channel consumer that does not call
//! `receive()`) pushes back through QUIC flow control instead of piling up here (the rules:
//! `alkdev-iroh-core`'s `flow`). `send` queues a frame synchronously; a writer task
//! (`pump/writer.rs`) takes everything queued for one write. Both share `pump/shared.rs`;
//! what JS hears is `pump/message.rs`.

mod message;
mod reader;
mod registry;
mod shared;
mod trace;
mod writer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use alkdev_iroh_core::batch::{BatchMode, OutboxError};
use alkdev_iroh_core::close::CloseCode;
use alkdev_iroh_core::codec::{self, DEFAULT_MAX_FRAME_BYTES};
use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio::sync::oneshot;

pub use message::{PumpCloseCode, PumpCloseCodes, PumpClosed, PumpMessage};
use reader::{read_loop, FrameLimits};
use shared::PumpShared;
pub use trace::{pump_trace_enabled, PumpTraceStamps};
use writer::write_loop;

use crate::connection::Connection;
use crate::error::{CodedError, ErrorCode, IrohError, IrohResult};
use crate::mailbox::Address;
use crate::pending::spawn;

const DEFAULT_MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;
const DEFAULT_FRAME_TIMEOUT_MS: u32 = 30_000;

#[napi(object)]
pub struct PumpLimits {
    pub max_frame_bytes: f64,
    pub max_buffered_bytes: f64,
    /// The pump's number for `broadcastFrames`.
    pub broadcast_id: u32,
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

/// The native half of an event target.
#[napi]
pub struct EventPump {
    shared: Arc<PumpShared>,
    broadcast_id: u32,
}

impl Drop for EventPump {
    fn drop(&mut self) {
        registry::unregister(self.broadcast_id);
    }
}

/// Starts a pump on `conn`: the dialing side opens the stream (`accept = false`), the
/// accepting side waits for it. Events sent before the stream exists wait in the outbox.
#[napi(catch_unwind)]
pub fn create_event_pump(
    conn: &Connection,
    accept: bool,
    options: PumpOptions,
    // The mailbox address of the JS side's receiver (lib/mailbox.js).
    #[napi(ts_arg_type = "number")] to: u32,
) -> Result<EventPump, CodedError> {
    let max_frame = options.max_frame_bytes.map(|n| n as usize).unwrap_or(DEFAULT_MAX_FRAME_BYTES);
    let max_buffered = options.max_buffered_bytes.map(|n| n as usize).unwrap_or(DEFAULT_MAX_BUFFERED_BYTES);
    if max_frame == 0 || max_buffered == 0 {
        return Err(IrohError::invalid_argument("maxFrameBytes and maxBufferedBytes must be positive").into());
    }
    let mode = match (options.binary.unwrap_or(false), options.raw_frames.unwrap_or(false)) {
        (true, _) => BatchMode::Binary,
        (false, true) => BatchMode::Raw,
        (false, false) => BatchMode::Json,
    };
    let frame_timeout = Duration::from_millis(u64::from(options.frame_timeout_ms.unwrap_or(DEFAULT_FRAME_TIMEOUT_MS)));
    let to_js = Address::new(to)?;
    let shared = Arc::new(PumpShared::new(conn.state.clone(), mode, max_frame, max_buffered));
    let (send_tx, send_rx) = oneshot::channel();
    let limits = FrameLimits { max_frame, frame_timeout };
    // Tracked: they hold the connection and its stream, and the endpoint's close waits for them.
    napi::bindgen_prelude::spawn(conn.state.track(read_loop(shared.clone(), to_js.clone(), accept, limits, send_tx)));
    napi::bindgen_prelude::spawn(conn.state.track(write_loop(shared.clone(), to_js, send_rx, !accept)));
    let broadcast_id = registry::register(&shared);
    Ok(EventPump { shared, broadcast_id })
}

/// Queues the same encoded frames (back to back, in wire format) for every pump named in
/// `pumps` (their `broadcastId`s), with one call and one copy: `hub.broadcast` to all its
/// spokes. Per pump, the bytes it buffers now, or -1 if its buffer was full (it says
/// `drain` once empty), or -2 if it is closed.
#[napi(catch_unwind)]
pub fn broadcast_frames(pumps: &[u32], frames: &[u8]) -> Result<Vec<f64>, CodedError> {
    let frames = bytes::Bytes::copy_from_slice(frames);
    let taken = registry::each_pump(pumps, |pump| pump.map_or(Ok(-2.0), |p| p.take_broadcast(&frames)));
    Ok(taken.into_iter().collect::<IrohResult<Vec<f64>>>()?)
}

fn frame_too_large(mode: BatchMode, len: usize, max: usize) -> IrohError {
    let what = match mode {
        BatchMode::Json | BatchMode::Raw => format!("the event is {len} bytes serialized"),
        BatchMode::Binary => format!("the message is {len} bytes"),
    };
    IrohError::new(ErrorCode::FrameTooLarge, format!("{what}, more than maxFrameBytes ({max})"))
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
                Err(OutboxError::FrameTooLarge { len, max }) => return Err(frame_too_large(shared.mode, len, max).into()),
                Err(OutboxError::Full { buffered, len, max }) => {
                    shared.want_drain();
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
        PumpLimits {
            max_frame_bytes: self.shared.max_frame as f64,
            max_buffered_bytes: self.shared.max_buffered as f64,
            broadcast_id: self.broadcast_id,
        }
    }

    /// Bytes queued or being written.
    #[napi(catch_unwind)]
    pub fn buffered_amount(&self) -> f64 {
        self.shared.buffered() as f64
    }

    /// Asks for a drain message the next time the send buffer is empty.
    #[napi(catch_unwind)]
    pub fn want_drain(&self) {
        self.shared.want_drain();
    }

    /// Sends an empty STREAM frame: the peer's QUIC stack acknowledges its packet at once
    /// however busy the peer's application is, which sees nothing of it. A liveness probe
    /// that costs the peer no wake-up of its JS thread.
    #[napi(catch_unwind)]
    pub fn nudge(&self) {
        self.shared.nudge();
    }

    /// The stamps of this pump's hand-overs so far (`ALKDEV_IROH_TRACE=1`), or null.
    #[napi(catch_unwind)]
    pub fn trace_stamps(&self) -> Option<PumpTraceStamps> {
        self.shared.trace.as_ref().map(|t| t.stamps())
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
        self.shared.fail(CloseCode::MalformedFrame, IrohError::new(ErrorCode::Protocol, message));
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
            shared.connection.close(code.unwrap_or(CloseCode::Normal.code()), &reason.unwrap_or_default());
            Ok(())
        })
    }
}

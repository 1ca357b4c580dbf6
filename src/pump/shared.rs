//! What the reader task, the writer task and the JS-facing methods of one pump share.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use alkdev_iroh_core::batch::{BatchMode, Outbox};
use alkdev_iroh_core::close::CloseCode;
use alkdev_iroh_core::codec;
use alkdev_iroh_core::flow;
use iroh::endpoint::ConnectionError;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::message::{PumpClosed, PumpMessage};
use super::trace::{self, PumpTrace};
use crate::connection_state::{CloseInfo, ConnState};
use crate::error::{ErrorCode, IrohError, IrohResult};
use crate::mailbox::Address;

pub(crate) struct PumpShared {
    pub connection: Arc<ConnState>,
    /// What the frames are: also what the pump is called in messages ([`BatchMode::noun`]).
    pub mode: BatchMode,
    outbox: Mutex<Outbox>,
    pub max_frame: usize,
    pub max_buffered: usize,
    /// Bytes the writer took from the outbox and is writing now.
    pub in_flight: AtomicUsize,
    pub enqueued: AtomicU64,
    pub written: watch::Sender<u64>,
    pub wake_writer: Notify,
    /// Batches JS has finished with since the reader last looked.
    pub acked: AtomicUsize,
    pub ack: Notify,
    pub drain_wanted: AtomicBool,
    /// An empty STREAM frame is wanted: the peer's QUIC acknowledges it, its application sees nothing.
    pub nudge_wanted: AtomicBool,
    /// `close()` was called: the writer finishes the stream once the outbox is empty.
    pub close_requested: AtomicBool,
    /// The writer finished the stream and the peer acknowledged everything.
    pub finished: CancellationToken,
    /// Fires once the pump has stopped (the connection closed).
    pub stopped: CancellationToken,
    closed_info: OnceLock<PumpClosed>,
    /// Per-frame stamps of the hand-overs, when the process traces (`trace.rs`).
    pub trace: Option<PumpTrace>,
}

impl PumpShared {
    pub fn new(connection: Arc<ConnState>, mode: BatchMode, max_frame: usize, max_buffered: usize) -> Self {
        let (written, _) = watch::channel(0u64);
        Self {
            connection,
            mode,
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
            nudge_wanted: AtomicBool::new(false),
            close_requested: AtomicBool::new(false),
            finished: CancellationToken::new(),
            stopped: CancellationToken::new(),
            closed_info: OnceLock::new(),
            trace: trace::enabled().then(PumpTrace::default),
        }
    }

    pub fn buffered(&self) -> usize {
        self.outbox.lock().map(|o| o.len()).unwrap_or(0) + self.in_flight.load(Ordering::Acquire)
    }

    /// Whether JS may still queue frames. Three flags, as they are three facts, set at
    /// different moments by different parties and each read elsewhere on its own:
    /// `close_requested` (JS called `close()`: closing, and the writer still sends what is
    /// queued before it finishes the stream), `closed_info` (why it closed, known from a
    /// local failure on, before the tasks stop; what `closed_error` reports) and `stopped`
    /// (the tasks stopped; a token, since the tasks, `flush` and `close` await it). One enum
    /// would still need the token and the info beside it. `finish` sets `closed_info` before
    /// it cancels `stopped`; `stopped` is read too so that the answer does not rest on that.
    pub fn check_open(&self) -> IrohResult<()> {
        if self.stopped.is_cancelled() || self.closed_info.get().is_some() || self.close_requested.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    pub fn outbox(&self) -> IrohResult<MutexGuard<'_, Outbox>> {
        self.outbox.lock().map_err(|_| IrohError::new(ErrorCode::Internal, "outbox poisoned"))
    }

    /// Books `len` newly queued bytes (`buffered` in all) and wakes the writer. Returns
    /// what is buffered.
    pub fn queued(&self, len: usize, buffered: usize) -> f64 {
        self.enqueued.fetch_add(len as u64, Ordering::AcqRel);
        if flow::wants_drain(buffered, self.max_buffered) {
            self.drain_wanted.store(true, Ordering::Release);
        }
        self.wake_writer.notify_one();
        buffered as f64
    }

    /// Asks the writer for a drain message the next time the send buffer is empty.
    pub fn want_drain(&self) {
        self.drain_wanted.store(true, Ordering::Release);
        self.wake_writer.notify_one();
    }

    /// Queues one broadcast's frames. The bytes buffered now, or -1 when the buffer was
    /// full (a drain message follows once it empties), -2 when the pump is closed.
    pub fn take_broadcast(&self, frames: &bytes::Bytes) -> IrohResult<f64> {
        if self.check_open().is_err() {
            return Ok(-2.0);
        }
        codec::check_frames(frames, self.max_frame)
            .map_err(|e| IrohError::new(ErrorCode::Internal, format!("badly encoded broadcast: {e}")))?;
        let in_flight = self.in_flight.load(Ordering::Acquire);
        let queued = {
            let mut outbox = self.outbox()?;
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

    /// Asks the writer for one empty STREAM frame.
    pub fn nudge(&self) {
        self.nudge_wanted.store(true, Ordering::Release);
        self.wake_writer.notify_one();
    }

    pub fn closed_error(&self) -> IrohError {
        match self.closed_info.get() {
            Some(info) => IrohError::new(
                ErrorCode::ConnectionClosed,
                format!("the {} is closed ({}, code {}: {})", self.mode.noun(), info.kind, info.code, info.reason),
            ),
            None => IrohError::new(ErrorCode::ConnectionClosed, format!("the {} is closed", self.mode.noun())),
        }
    }

    /// Closes the connection because of `err`, and records why.
    pub fn fail(&self, code: CloseCode, err: IrohError) {
        let _ = self.closed_info.set(PumpClosed {
            code: f64::from(code.code()),
            reason: err.message.clone(),
            kind: "local".into(),
            error_code: Some(err.code().to_string()),
            error_message: Some(err.message.clone()),
        });
        self.connection.close(code.code(), &truncate_reason(&err.message));
    }

    /// Records the final close (first writer wins) and tells JS, once.
    pub fn finish(&self, to_js: &Address, from: Option<&ConnectionError>) {
        if self.stopped.is_cancelled() {
            return;
        }
        let info = self.closed_info.get_or_init(|| {
            let base = match from {
                Some(err) => self.connection.close_info(err),
                None => self.connection.close_reason().map(|e| self.connection.close_info(&e)).unwrap_or(CloseInfo {
                    code: 0.0,
                    reason: "closed".into(),
                    kind: "local".into(),
                }),
            };
            PumpClosed { code: base.code, reason: base.reason, kind: base.kind, error_code: None, error_message: None }
        });
        let message = PumpMessage::Closed { closed: info.clone() };
        self.stopped.cancel();
        // What was queued can no longer be sent: free it now, not when V8 collects the pump.
        if let Ok(mut outbox) = self.outbox.lock() {
            *outbox = Outbox::new(self.max_frame, self.max_buffered);
        }
        to_js.post(message);
    }
}

fn truncate_reason(s: &str) -> String {
    let mut end = s.len().min(512);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

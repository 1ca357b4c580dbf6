//! The reader task: reads the stream at once, cuts frames out of it and hands JS whole
//! batches, at most `flow::BATCHES_WITH_JS` unacknowledged; while too much waits for JS it
//! closes the connection's receive window, so the peer is paused by QUIC flow control.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use alkdev_iroh_core::batch::{BatchMode, Inbox};
use alkdev_iroh_core::close::{self, CloseCode};
use alkdev_iroh_core::codec::{FrameDecoder, FrameError};
use alkdev_iroh_core::flow::{ReceiveFlow, Window, CONNECTION_RECEIVE_WINDOW};
use iroh::endpoint::{ReadError, VarInt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::message::PumpMessage;
use super::shared::PumpShared;
use super::trace::now_ns;
use crate::error::{ErrorCode, IrohError};
use crate::mailbox::Address;
use alkdev_iroh_core::trace::Stage;

/// Received chunks (about a packet each) taken per read: one lock of the connection for
/// many packets instead of one each.
const READ_CHUNKS: usize = 32;

pub(super) struct FrameLimits {
    pub max_frame: usize,
    /// The longest pause in the middle of a frame.
    pub frame_timeout: Duration,
}

pub(super) async fn read_loop(
    shared: Arc<PumpShared>,
    to_js: Address,
    accept: bool,
    limits: FrameLimits,
    send_tx: oneshot::Sender<iroh::endpoint::SendStream>,
) {
    let conn = match shared.connection.handle() {
        Ok(conn) => conn,
        Err(e) => return shared.finish(&to_js, Some(&e)),
    };
    let opened = if accept { conn.accept_bi().await } else { conn.open_bi().await };
    let mut recv = match opened {
        Ok((send, recv)) => {
            let _ = send_tx.send(send);
            recv
        }
        Err(e) => return shared.finish(&to_js, Some(&e)),
    };
    let mut decoder = FrameDecoder::new(limits.max_frame);
    let mut inbox = Inbox::new(shared.mode);
    let mut last_bytes = Instant::now();
    // Re-armed only when it fires early, not on every read: reads are frequent.
    let stall = tokio::time::sleep(limits.frame_timeout);
    tokio::pin!(stall);
    let mut flow = ReceiveFlow::new();
    let mut eof = false;
    loop {
        match cut_frames(&mut decoder, &mut inbox) {
            Ok(cut) => {
                if let Some(t) = &shared.trace {
                    t.record(Stage::Read, now_ns(), cut);
                }
            }
            Err(e) => return protocol_failure(&shared, &to_js, &mut inbox, e),
        }
        flow.acked(shared.acked.swap(0, Ordering::AcqRel));
        while flow.may_hand_over() {
            let Some((payload, frames)) = inbox.next_batch_counted() else { break };
            if let Some(t) = &shared.trace {
                t.record(Stage::Posted, now_ns(), frames);
            }
            to_js.post(PumpMessage::from(payload));
            flow.handed_over();
        }
        // The stream is always read at once (noq 1.4 fails a connection whose unread
        // stream data holds more than 1,024 separate packets). A slow listener pushes back
        // through the connection's flow-control window instead: while too much waits for
        // JS, the window is closed, so the peer can send at most one more window.
        match flow.window(inbox.backlog()) {
            Some(Window::Close) => conn.set_receive_window(VarInt::from_u32(0)),
            Some(Window::Open) => {
                conn.set_receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
                last_bytes = Instant::now();
            }
            None => {}
        }
        tokio::select! {
            // Only while JS holds all it may: other acknowledgements are counted when bytes
            // next wake the reader. Waiting for each one woke this thread whenever JS finished
            // a batch, and on a spoke that wake-up sat between a ping's dispatchEvent and its
            // hand-over to the pump (18 µs p50 of the round trip).
            _ = shared.ack.notified(), if !flow.may_hand_over() => {}
            read = read_chunks(&mut recv), if !eof => match read {
                Ok(Some((chunks, n))) => {
                    let read_at = shared.trace.as_ref().map(|_| now_ns());
                    let mut cut = 0;
                    // Frames are cut chunk by chunk: a frame's header is seen, and the
                    // frame given its own allocation, after at most one chunk of it.
                    for chunk in &chunks[..n] {
                        decoder.extend(chunk);
                        match cut_frames(&mut decoder, &mut inbox) {
                            Ok(n) => cut += n,
                            Err(e) => return protocol_failure(&shared, &to_js, &mut inbox, e),
                        }
                    }
                    if let (Some(t), Some(at)) = (&shared.trace, read_at) {
                        t.record(Stage::Read, at, cut);
                    }
                    last_bytes = Instant::now();
                }
                Ok(None) => {
                    if let Err(e) = decoder.finish() {
                        return protocol_failure(&shared, &to_js, &mut inbox, e);
                    }
                    // The peer will send no more events; ours may still flow to it.
                    eof = true;
                }
                Err(ReadError::ConnectionLost(e)) => {
                    flush_all(&to_js, &mut inbox);
                    return shared.finish(&to_js, Some(&e));
                }
                Err(e) => {
                    flush_all(&to_js, &mut inbox);
                    shared.fail(CloseCode::StreamError, IrohError::new(ErrorCode::Protocol, format!("the event stream failed: {e}")));
                    return shared.finish(&to_js, None);
                }
            },
            // Not while we paused the peer ourselves.
            _ = &mut stall, if decoder.buffered() > 0 && !eof && !flow.paused() => {
                if last_bytes.elapsed() < limits.frame_timeout {
                    stall.as_mut().reset(last_bytes + limits.frame_timeout);
                    continue;
                }
                let have = decoder.buffered();
                let err = IrohError::new(
                    ErrorCode::Protocol,
                    format!("a frame stalled: {have} bytes of it arrived, then nothing for {} ms", limits.frame_timeout.as_millis()),
                );
                flush_all(&to_js, &mut inbox);
                shared.fail(CloseCode::TruncatedFrame, err);
                return shared.finish(&to_js, None);
            }
            e = conn.closed(), if eof => {
                flush_all(&to_js, &mut inbox);
                return shared.finish(&to_js, Some(&e));
            }
        }
    }
}

/// The chunks that have arrived (at least one), `None` at the end of the stream.
async fn read_chunks(recv: &mut iroh::endpoint::RecvStream) -> Result<Option<([bytes::Bytes; READ_CHUNKS], usize)>, ReadError> {
    let mut chunks: [bytes::Bytes; READ_CHUNKS] = Default::default();
    Ok(recv.read_many_chunks(&mut chunks).await?.map(|n| (chunks, n)))
}

/// Moves every complete frame from the decoder into the inbox; says how many.
fn cut_frames(decoder: &mut FrameDecoder, inbox: &mut Inbox) -> Result<usize, FrameError> {
    let mut cut = 0;
    if inbox.mode() == BatchMode::Binary {
        // Header and all, still in the decoder's allocation: no copy on the way to JS.
        while let Some(frame) = decoder.next_wire_frame()? {
            inbox.push_wire(frame);
            cut += 1;
        }
        return Ok(cut);
    }
    while let Some(frame) = decoder.next_frame()? {
        inbox.push(frame)?;
        cut += 1;
    }
    Ok(cut)
}

/// Hands JS the events that arrived before the end: they were valid and are not lost.
fn flush_all(to_js: &Address, inbox: &mut Inbox) {
    while let Some(payload) = inbox.next_batch() {
        to_js.post(PumpMessage::from(payload));
    }
}

fn protocol_failure(shared: &PumpShared, to_js: &Address, inbox: &mut Inbox, e: FrameError) {
    flush_all(to_js, inbox);
    let (code, err) = close::frame_failure(e);
    shared.fail(code, err);
    shared.finish(to_js, None);
}

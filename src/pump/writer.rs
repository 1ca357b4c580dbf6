//! The writer task: takes everything queued for one write, announces the stream while it
//! has written nothing, tells JS when the send buffer drained, and finishes the stream on
//! `close()`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use alkdev_iroh_core::close::CloseCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::message::PumpMessage;
use super::shared::PumpShared;
use super::trace::now_ns;
use crate::error::{ErrorCode, IrohError};
use crate::mailbox::Address;
use alkdev_iroh_core::trace::{frames_in, Stage};

/// When the opener re-announces its stream while it has written nothing: a zero-length
/// STREAM frame is not retransmitted if its packet is lost, so a few spaced repeats make a
/// lost announcement as unlikely as several lost packets in a row.
const ANNOUNCE_REPEATS_MS: [u64; 6] = [50, 150, 450, 1_350, 4_050, 12_150];

pub(super) async fn write_loop(
    shared: Arc<PumpShared>,
    to_js: Address,
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
        if shared.nudge_wanted.swap(false, Ordering::AcqRel) {
            let _ = send.write(&[]).await;
        }
        if let Some(at) = next_announcement {
            if at <= Instant::now() {
                let _ = send.write(&[]).await;
                next_announcement = announcements.next().map(|ms| Instant::now() + Duration::from_millis(*ms));
            }
        }
        let (mut data, len) = {
            let Ok(mut outbox) = shared.outbox() else { return };
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
                to_js.post(PumpMessage::Drain);
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
        let traced = shared.trace.as_ref().map(|t| {
            let frames = frames_in(&data);
            t.record(Stage::Taken, now_ns(), frames);
            (t, frames)
        });
        let result = tokio::select! {
            r = send.write_all_chunks(&mut data) => r,
            _ = shared.stopped.cancelled() => return,
        };
        if let (Some((t, frames)), Ok(())) = (traced, &result) {
            t.record(Stage::Written, now_ns(), frames);
        }
        shared.in_flight.store(0, Ordering::Release);
        match result {
            Ok(()) => shared.written.send_modify(|w| *w += len as u64),
            Err(iroh::endpoint::WriteError::ConnectionLost(e)) => return shared.finish(&to_js, Some(&e)),
            Err(e) => {
                let err = IrohError::new(ErrorCode::StreamStopped, format!("the peer stopped reading events: {e}"));
                shared.fail(CloseCode::StreamError, err);
                return shared.finish(&to_js, None);
            }
        }
    }
}

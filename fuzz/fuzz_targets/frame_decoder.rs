//! The receive path of the event pump on bytes from a hostile peer, cut into arbitrary
//! pieces: the decoder, event validation and batching must never panic, must keep every
//! frame intact, and must agree with the encoder and with `check_frames`.
#![no_main]

use alkdev_iroh_core::batch::{BatchMode, BatchPayload, Inbox};
use alkdev_iroh_core::codec::{self, FrameDecoder, FrameError};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, wire)) = data.split_first() else { return };
    let step = usize::from(cut % 64) + 1;

    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut inbox = Inbox::new(if cut & 0x80 != 0 { BatchMode::Raw } else { BatchMode::Json });
    let mut frames = Vec::new();
    let mut failed = None;
    'feed: for piece in wire.chunks(step) {
        decoder.extend(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    frames.push(frame.clone());
                    if let Err(e) = inbox.push(frame) {
                        failed = Some(e);
                        break 'feed;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break 'feed;
                }
            }
        }
    }
    while let Some(batch) = inbox.next_batch() {
        if let BatchPayload::Json(text) = batch {
            assert!(text.starts_with('[') && text.ends_with(']'));
        }
    }

    // A message channel's inbox takes the same frames whole and hands back the wire bytes.
    let mut binary = Inbox::new(BatchMode::Binary);
    for f in &frames {
        binary.push(f.clone()).expect("binary frames are never refused");
    }
    let mut handed = Vec::new();
    while let Some(batch) = binary.next_batch() {
        let BatchPayload::Binary(bytes) = batch else { panic!("a binary inbox made a text batch") };
        handed.extend_from_slice(&bytes);
    }

    // The frames cut so far are exactly what the encoder would have written.
    let mut encoded = BytesMut::new();
    for f in &frames {
        codec::encode_frame(f, MAX_FRAME, &mut encoded).expect("a decoded frame re-encodes");
    }
    assert_eq!(&wire[..encoded.len()], &encoded[..], "frames must come out byte for byte");
    assert_eq!(handed, &encoded[..], "binary batches are the frames as on the wire");
    assert_eq!(codec::check_frames(&encoded, MAX_FRAME).expect("re-encoded frames check"), frames.len());
    if failed.is_none() && decoder.finish().is_ok() {
        assert_eq!(encoded.len(), wire.len(), "a clean end leaves nothing over");
    }
    if let Some(FrameError::TooLarge { len, max }) = failed {
        assert!(len > max as u64);
    }
});

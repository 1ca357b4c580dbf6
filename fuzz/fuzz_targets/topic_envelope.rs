//! Topic messages from a hostile member: the decoder must never panic, never accept a
//! message whose bytes differ from what the author signed, and never hand on an event
//! that is not a whole frame within the limit.
#![no_main]

use alkdev_iroh_core::codec::{self, encode_frame};
use alkdev_iroh_core::identity::parse_secret_key;
use alkdev_iroh_core::topic::envelope::{decode, encode_run, Envelope};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

const TOPIC: [u8; 32] = [5; 32];
const MAX_EVENT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // Whatever arrives: no panic; what is accepted is consistent.
    if let Ok(Envelope::Run(run)) = decode(&TOPIC, Bytes::copy_from_slice(data), MAX_EVENT) {
        assert_eq!(codec::check_frames(&run.frames, MAX_EVENT).expect("accepted frames check") as u64, run.count);
        assert!(run.first.checked_add(run.count).is_some());
        assert_eq!(&run.message[..], data);
    }

    // A run signed here, then one byte changed: never accepted.
    let Some((&pick, rest)) = data.split_first() else { return };
    let mut frames = BytesMut::new();
    for chunk in rest.chunks(usize::from(pick % 32) + 1) {
        encode_frame(chunk, MAX_EVENT, &mut frames).expect("a chunk fits");
    }
    if frames.is_empty() {
        return;
    }
    let key = parse_secret_key(&"11".repeat(32)).expect("a fixed key");
    let message = encode_run(&TOPIC, &key, u64::from(pick), u64::from(pick) << 8, &frames);
    let Ok(Envelope::Run(run)) = decode(&TOPIC, message.clone(), MAX_EVENT) else { panic!("a signed run must decode") };
    assert_eq!(&run.frames[..], &frames[..]);
    let mut changed = message.to_vec();
    let at = usize::from(pick) * 7 % changed.len();
    changed[at] ^= 1 << (pick % 8);
    assert!(decode(&TOPIC, changed.into(), MAX_EVENT).is_err(), "a changed byte at {at} was accepted");
});

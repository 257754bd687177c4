//! Any bytes as a firehose frame: decode, index the CAR, check CIDs, decode records, render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skystream_event::{from_frame, jetstream, FrameOptions};
use skystream_firehose::decode_frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode_frame(data) {
        if let Ok(out) = from_frame(&frame, &FrameOptions::default()) {
            if let Some(event) = out.event {
                let mut s = String::new();
                jetstream::write_event(&event, &mut || 1, &mut s);
            }
        }
    }
});

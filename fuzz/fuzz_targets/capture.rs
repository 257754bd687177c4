//! Any bytes as a capture file, read to the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skystream_capture::CaptureReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = CaptureReader::new(data) {
        while let Ok(Some(_)) = r.next_record() {}
    }
});

//! Any bytes as a Jetstream event line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skystream_event::jetstream;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = jetstream::parse_line(s) {
            if let Some(e) = p.event {
                let mut out = String::new();
                jetstream::write_event(&e, &mut || p.time_us, &mut out);
            }
        }
    }
});

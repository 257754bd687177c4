//! Any bytes as DAG-CBOR: whatever decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skystream_data::{decode, encode_to_vec, json};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data) {
        assert_eq!(encode_to_vec(&v), data, "accepted input must be canonical");
        let _ = json::to_string(&v);
    }
});

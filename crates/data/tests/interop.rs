//! The interop data-model fixtures: JSON <-> DAG-CBOR byte for byte, with the same CIDs.

use base64::Engine as _;
use skystream_data::{cid_for, decode, encode_to_vec, json, DAG_CBOR};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/interop/data-model"
);

fn load(name: &str) -> Vec<serde_json::Value> {
    let path = format!("{DIR}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).expect("fixture JSON");
    assert!(!cases.is_empty(), "{path} has no cases");
    cases
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .expect("fixture base64")
}

#[test]
fn fixtures_round_trip_byte_for_byte() {
    for case in load("data-model-fixtures.json") {
        let cbor = b64(case["cbor_base64"].as_str().expect("cbor_base64"));
        let cid = case["cid"].as_str().expect("cid");

        let from_json = json::from_json(&case["json"]).expect("fixture JSON is valid data");
        let encoded = encode_to_vec(&from_json);
        assert_eq!(encoded, cbor, "JSON -> CBOR differs for {cid}");
        assert_eq!(cid_for(DAG_CBOR, &encoded).to_string(), cid);

        let decoded = decode(&cbor).expect("fixture CBOR decodes");
        assert_eq!(decoded, from_json, "CBOR -> value differs for {cid}");
        assert_eq!(
            encode_to_vec(&decoded),
            cbor,
            "re-encoding differs for {cid}"
        );

        let rendered: serde_json::Value =
            serde_json::from_str(&json::to_string(&decoded)).expect("our JSON parses");
        assert_eq!(rendered, case["json"], "value -> JSON differs for {cid}");
    }
}

#[test]
fn valid_data_model_cases_accepted() {
    for case in load("data-model-valid.json") {
        json::record_from_json(&case["json"])
            .unwrap_or_else(|e| panic!("{}: rejected: {e}", case["note"]));
    }
}

#[test]
fn invalid_data_model_cases_rejected() {
    for case in load("data-model-invalid.json") {
        assert!(
            json::record_from_json(&case["json"]).is_err(),
            "{}: accepted",
            case["note"]
        );
    }
}

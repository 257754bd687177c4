//! Interop tests against the shared atproto crypto fixtures.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use serde_json::Value;
use skystream_crypto::{Algorithm, CryptoErrorKind, PrivateKey, PublicKey};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/interop/crypto");

fn load(name: &str) -> Vec<Value> {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap();
    let items = value.as_array().unwrap().clone();
    assert!(!items.is_empty(), "{path} has no fixtures");
    items
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing {key} in {v}"))
}

/// The fixtures use the standard alphabet without padding; accept padding too.
fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("base64 {s:?}: {e}"))
}

#[test]
fn signature_fixtures() {
    let fixtures = load("signature-fixtures.json");
    let mut checked = 0;
    for f in &fixtures {
        let comment = str_field(f, "comment");
        let msg = b64(str_field(f, "messageBase64"));
        let sig = b64(str_field(f, "signatureBase64"));
        let alg = Algorithm::from_jwt_name(str_field(f, "algorithm")).unwrap();
        let valid = f["validSignature"].as_bool().unwrap();
        let tags: Vec<&str> = f["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();

        let did = str_field(f, "publicKeyDid");
        let from_did = PublicKey::from_did_key(did).unwrap();
        assert_eq!(from_did.algorithm(), alg, "{comment}");
        assert_eq!(from_did.to_did_key(), did, "{comment}: did:key round trip");

        let suite = str_field(f, "didDocSuite");
        assert_eq!(suite, alg.legacy_did_doc_type(), "{comment}");
        let multibase = str_field(f, "publicKeyMultibase");
        let from_doc = PublicKey::from_did_document_method(suite, multibase).unwrap();
        assert_eq!(from_doc, from_did, "{comment}: did doc key == did:key");
        // The fixture's publicKeyMultibase is the legacy, prefix-less form.
        assert_eq!(from_did.to_legacy_multibase(), multibase, "{comment}");
        assert!(PublicKey::from_multikey(multibase).is_err(), "{comment}");
        // The same key as a Multikey method.
        let multikey = from_did.to_multikey();
        assert_eq!(format!("did:key:{multikey}"), did);
        let from_multikey = PublicKey::from_did_document_method("Multikey", &multikey).unwrap();
        assert_eq!(from_multikey, from_did);

        for key in [&from_did, &from_doc, &from_multikey] {
            let result = key.verify(&msg, &sig);
            assert_eq!(result.is_ok(), valid, "{comment}: {result:?}");
            if tags.contains(&"high-s") {
                assert_eq!(
                    result.unwrap_err().kind(),
                    CryptoErrorKind::HighS,
                    "{comment}"
                );
            } else if tags.contains(&"der-encoded") {
                assert_ne!(sig.len(), 64, "{comment}");
                assert_eq!(
                    result.unwrap_err().kind(),
                    CryptoErrorKind::SignatureLength,
                    "{comment}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 0);
    assert_eq!(checked, fixtures.len());
}

#[test]
fn w3c_did_key_k256() {
    let fixtures = load("w3c_didkey_K256.json");
    for f in &fixtures {
        let hex_key = str_field(f, "privateKeyBytesHex");
        let bytes: Vec<u8> = (0..hex_key.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_key[i..i + 2], 16).unwrap())
            .collect();
        let key = PrivateKey::from_bytes(Algorithm::K256, &bytes).unwrap();
        let did = str_field(f, "publicDidKey");
        assert_eq!(key.public_key().to_did_key(), did);
        assert_eq!(key.to_bytes().as_slice(), bytes.as_slice());
        assert_eq!(PublicKey::from_did_key(did).unwrap(), key.public_key());
    }
    assert!(!fixtures.is_empty());
}

#[test]
fn w3c_did_key_p256() {
    let fixtures = load("w3c_didkey_P256.json");
    for f in &fixtures {
        let bytes = bs58::decode(str_field(f, "privateKeyBytesBase58"))
            .into_vec()
            .unwrap();
        let key = PrivateKey::from_bytes(Algorithm::P256, &bytes).unwrap();
        let did = str_field(f, "publicDidKey");
        assert_eq!(key.public_key().to_did_key(), did);
        assert_eq!(PublicKey::from_did_key(did).unwrap(), key.public_key());
    }
    assert!(!fixtures.is_empty());
}

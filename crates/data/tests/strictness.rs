//! DAG-CBOR's canonical-form rules, and hostile inputs that must fail cleanly.

use proptest::prelude::*;
use skystream_data::{decode, encode_to_vec, DecodeErrorKind as K, Map, Value};

fn kind(bytes: &[u8]) -> K {
    decode(bytes).expect_err("must be rejected").kind
}

#[test]
fn rejects_non_canonical_forms() {
    assert_eq!(kind(&[0x18, 0x05]), K::NonMinimalEncoding); // 5 in two bytes
    assert_eq!(kind(&[0x19, 0x00, 0x10]), K::NonMinimalEncoding);
    assert_eq!(kind(&[0x9f, 0xff]), K::IndefiniteLength);
    assert_eq!(kind(&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0]), K::Float);
    assert_eq!(kind(&[0xf7]), K::UnsupportedSimple); // undefined
    assert_eq!(kind(&[0xf8, 0x14]), K::UnsupportedSimple); // false, non-minimal
    assert_eq!(kind(&[0xc1, 0x00]), K::UnsupportedTag);
    assert_eq!(kind(&[0x62, 0xff, 0xfe]), K::InvalidUtf8);
    assert_eq!(kind(&[0xa1, 0x01, 0x01]), K::NonStringKey);
    // {"b":1,"a":2}: same length, wrong byte order.
    assert_eq!(kind(&[0xa2, 0x61, b'b', 1, 0x61, b'a', 2]), K::KeyOrder);
    // {"aa":1,"b":2}: longer key first.
    assert_eq!(
        kind(&[0xa2, 0x62, b'a', b'a', 1, 0x61, b'b', 2]),
        K::KeyOrder
    );
    // duplicate key
    assert_eq!(kind(&[0xa2, 0x61, b'a', 1, 0x61, b'a', 2]), K::KeyOrder);
    assert_eq!(kind(&[0x01, 0x02]), K::TrailingBytes);
    assert_eq!(
        kind(&[0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        K::IntegerOutOfRange
    );
    assert_eq!(kind(&[0xd8, 0x2a, 0x41, 0x00]), K::InvalidCid);
}

#[test]
fn hostile_lengths_fail_before_allocating() {
    // An array claiming 2^63 items, a byte string claiming 4 GiB, a map claiming 2^32 entries.
    assert_eq!(
        kind(&[0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        K::LengthTooLarge
    );
    assert_eq!(
        kind(&[0x5a, 0xff, 0xff, 0xff, 0xff, 0x00]),
        K::LengthTooLarge
    );
    assert_eq!(kind(&[0xbb, 0, 0, 0, 1, 0, 0, 0, 0]), K::LengthTooLarge);
}

#[test]
fn deep_nesting_is_bounded() {
    let bytes = vec![0x81; 10_000];
    assert_eq!(kind(&bytes), K::TooDeep);
}

#[test]
fn integer_extremes_round_trip() {
    for i in [
        0,
        23,
        24,
        255,
        256,
        65535,
        65536,
        i64::MAX,
        -1,
        -24,
        -25,
        -256,
        i64::MIN,
    ] {
        let bytes = encode_to_vec(&Value::Integer(i));
        assert_eq!(decode(&bytes).expect("decodes"), Value::Integer(i));
    }
}

fn arb_value() -> impl Strategy<Value = Value<'static>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Integer),
        ".{0,40}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| Value::Link(skystream_data::cid_for(skystream_data::DAG_CBOR, &b))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((".{0,12}", inner), 0..8)
                .prop_map(|kv| Value::Map(kv.into_iter().collect::<Map<'static>>())),
        ]
    })
}

proptest! {
    #[test]
    fn encode_decode_round_trip(v in arb_value()) {
        let bytes = encode_to_vec(&v);
        prop_assert_eq!(decode(&bytes).expect("own encoding decodes"), v);
    }

    #[test]
    fn agrees_with_serde_ipld_dagcbor(v in arb_value()) {
        // An independent implementation must read our bytes and write the same bytes back.
        let bytes = encode_to_vec(&v);
        let theirs: ipld_core::ipld::Ipld =
            serde_ipld_dagcbor::from_slice(&bytes).expect("oracle decodes our encoding");
        let back = serde_ipld_dagcbor::to_vec(&theirs).expect("oracle encodes");
        prop_assert_eq!(back, bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(v in arb_value(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = encode_to_vec(&v);
        if !bytes.is_empty() {
            for (at, x) in flips {
                let n = bytes.len();
                bytes[at % n] ^= x;
            }
        }
        if let Ok(decoded) = decode(&bytes) {
            // Whatever we accept must be canonical: it re-encodes to the same bytes.
            prop_assert_eq!(encode_to_vec(&decoded), bytes);
        }
    }
}

//! Unit tests across the crate's modules.

#![allow(clippy::unwrap_used)]

use k256::sha2::{Digest, Sha256};

use crate::{Algorithm, CryptoErrorKind, PrivateKey, PublicKey, SIGNATURE_LEN};

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// The group order `n` of the curve.
fn order(alg: Algorithm) -> [u8; 32] {
    hex32(match alg {
        Algorithm::K256 => "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        Algorithm::P256 => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    })
}

/// `n / 2`, the largest low `s`.
fn half_order(alg: Algorithm) -> [u8; 32] {
    hex32(match alg {
        Algorithm::K256 => "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0",
        Algorithm::P256 => "7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8",
    })
}

/// `a - b` for 32-byte big-endian numbers with `a >= b`.
fn sub_be(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    assert_eq!(borrow, 0);
    out
}

/// The same signature with `s` replaced by `n - s` (the malleated twin).
fn flip_s(alg: Algorithm, sig: &[u8; SIGNATURE_LEN]) -> [u8; SIGNATURE_LEN] {
    let mut out = *sig;
    out[32..].copy_from_slice(&sub_be(&order(alg), &sig[32..]));
    out
}

fn keys() -> Vec<PrivateKey> {
    let mut keys = Vec::new();
    for alg in Algorithm::ALL {
        for seed in 0..8 {
            keys.push(PrivateKey::from_seed(alg, seed));
        }
    }
    keys
}

#[test]
fn sign_verify_round_trip_both_curves() {
    for key in keys() {
        let public = key.public_key();
        assert_eq!(public.algorithm(), key.algorithm());
        for msg in [&b""[..], b"hello", &[0xa1; 1000]] {
            let sig = key.sign(msg);
            public.verify(msg, &sig).unwrap();
            // And through the string forms.
            PublicKey::from_did_key(&public.to_did_key())
                .unwrap()
                .verify(msg, &sig)
                .unwrap();
            // Prehashed verification agrees.
            let digest: [u8; 32] = Sha256::digest(msg).into();
            public.verify_prehashed(&digest, &sig).unwrap();
        }
    }
}

#[test]
fn signatures_are_low_s() {
    for key in keys() {
        let alg = key.algorithm();
        for i in 0..32u32 {
            let sig = key.sign(&i.to_be_bytes());
            assert!(
                sig[32..] <= half_order(alg)[..],
                "{alg} produced high-S signature {sig:?}"
            );
        }
    }
}

#[test]
fn p256_signer_would_produce_high_s_without_normalization() {
    // Guard that the low-S test above is meaningful for P-256, whose signer
    // does not normalize on its own: the raw signer does emit high-S.
    use k256::ecdsa::signature::Signer;
    let PrivateKey::P256(raw) = PrivateKey::from_seed(Algorithm::P256, 1) else {
        unreachable!()
    };
    let high = (0..64u32).any(|i| {
        let sig: p256::ecdsa::Signature = raw.sign(&i.to_be_bytes());
        sig.to_bytes()[32..] > half_order(Algorithm::P256)[..]
    });
    assert!(high);
}

#[test]
fn high_s_twin_is_rejected_as_high_s() {
    for key in keys() {
        let sig = key.sign(b"msg");
        let twin = flip_s(key.algorithm(), &sig);
        let err = key.public_key().verify(b"msg", &twin).unwrap_err();
        assert_eq!(err.kind(), CryptoErrorKind::HighS, "{err}");
    }
}

#[test]
fn signing_is_deterministic() {
    let a = PrivateKey::from_seed(Algorithm::P256, 42);
    let b = PrivateKey::from_seed(Algorithm::P256, 42);
    assert_eq!(a.sign(b"x"), b.sign(b"x"));
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(
        a.to_bytes(),
        <[u8; 32]>::from(Sha256::digest(42u64.to_be_bytes()))
    );
    assert_ne!(
        a.public_key(),
        PrivateKey::from_seed(Algorithm::P256, 43).public_key()
    );
}

#[test]
fn tampered_message_or_signature_fails() {
    for key in keys() {
        let public = key.public_key();
        let sig = key.sign(b"hello world");
        let err = public.verify(b"hello worle", &sig).unwrap_err();
        assert_eq!(err.kind(), CryptoErrorKind::BadSignature);
        let mut bad = sig;
        bad[5] ^= 1;
        let err = public.verify(b"hello world", &bad).unwrap_err();
        assert_eq!(err.kind(), CryptoErrorKind::BadSignature);
        let other = PrivateKey::from_seed(key.algorithm(), 1000).public_key();
        let err = other.verify(b"hello world", &sig).unwrap_err();
        assert_eq!(err.kind(), CryptoErrorKind::BadSignature);
    }
}

#[test]
fn malformed_signatures() {
    let key = PrivateKey::from_seed(Algorithm::K256, 3);
    let public = key.public_key();
    let sig = key.sign(b"m");
    for len in [0, 63, 65, 70, 72] {
        let mut v = sig.to_vec();
        v.resize(len, 0);
        let err = public.verify(b"m", &v).unwrap_err();
        assert_eq!(err.kind(), CryptoErrorKind::SignatureLength);
    }
    let mut zero_r = sig;
    zero_r[..32].fill(0);
    assert_eq!(
        public.verify(b"m", &zero_r).unwrap_err().kind(),
        CryptoErrorKind::BadSignature
    );
    let mut big_s = sig;
    big_s[32..].fill(0xff);
    assert_eq!(
        public.verify(b"m", &big_s).unwrap_err().kind(),
        CryptoErrorKind::BadSignature
    );
}

#[test]
fn uncompressed_legacy_key_matches_compressed() {
    for key in keys() {
        let public = key.public_key();
        let alg = public.algorithm();
        let uncompressed = public.uncompressed_bytes();
        assert_eq!(uncompressed[0], 0x04);
        let legacy_long = format!("z{}", bs58::encode(uncompressed).into_string());
        let legacy_short = public.to_legacy_multibase();
        let a = PublicKey::from_legacy_multibase(&legacy_long, alg).unwrap();
        let b = PublicKey::from_legacy_multibase(&legacy_short, alg).unwrap();
        assert_eq!(a, public);
        assert_eq!(b, public);
        assert_eq!(a.to_did_key(), public.to_did_key());
        assert_eq!(a.compressed_bytes(), public.compressed_bytes());
        let via_doc =
            PublicKey::from_did_document_method(alg.legacy_did_doc_type(), &legacy_long).unwrap();
        assert_eq!(via_doc, public);
        assert_eq!(
            PublicKey::from_sec1_bytes(alg, &uncompressed).unwrap(),
            public
        );
    }
}

#[test]
fn did_key_prefixes() {
    let k = PrivateKey::from_seed(Algorithm::K256, 1).public_key();
    let p = PrivateKey::from_seed(Algorithm::P256, 1).public_key();
    assert!(k.to_did_key().starts_with("did:key:zQ3s"));
    assert!(p.to_did_key().starts_with("did:key:zDn"));
    assert_eq!(k.multicodec_bytes()[..2], [0xe7, 0x01]);
    assert_eq!(p.multicodec_bytes()[..2], [0x80, 0x24]);
    assert_eq!(k.to_string().parse::<PublicKey>().unwrap(), k);
    assert_eq!(format!("{p:?}"), format!("PublicKey({:?})", p.to_did_key()));
}

#[test]
fn parse_errors_have_the_right_kinds() {
    let k = PrivateKey::from_seed(Algorithm::K256, 1).public_key();
    let kind = |r: crate::Result<PublicKey>| r.unwrap_err().kind();

    assert_eq!(
        kind(PublicKey::from_did_key("did:plc:abc")),
        CryptoErrorKind::BadDidKey
    );
    assert_eq!(
        kind(PublicKey::from_did_key("did:key:")),
        CryptoErrorKind::BadMultibase
    );
    assert_eq!(
        kind(PublicKey::from_did_key("did:key:m5AEBAgM")),
        CryptoErrorKind::BadMultibase
    );
    // ed25519 did:key from the W3C spec.
    assert_eq!(
        kind(PublicKey::from_did_key(
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
        )),
        CryptoErrorKind::UnsupportedKeyType
    );
    // Multikey with an uncompressed point is not allowed.
    let mut long = Algorithm::K256.multicodec_prefix().to_vec();
    long.extend_from_slice(&k.uncompressed_bytes());
    let long = format!("z{}", bs58::encode(&long).into_string());
    assert_eq!(
        kind(PublicKey::from_multikey(&long)),
        CryptoErrorKind::BadKeyBytes
    );
    // A K-256 point claimed as P-256 (x not on the curve, or another point).
    let mut wrong_curve = Algorithm::P256.multicodec_prefix().to_vec();
    wrong_curve.extend_from_slice(&k.compressed_bytes());
    let wrong_curve = format!("z{}", bs58::encode(&wrong_curve).into_string());
    match PublicKey::from_multikey(&wrong_curve) {
        Ok(p) => assert_ne!(p.compressed_bytes(), [0; 33]),
        Err(e) => assert_eq!(e.kind(), CryptoErrorKind::BadKeyBytes),
    }
    // Not a point at all.
    let mut junk = [0x02u8; 33];
    junk[1..].fill(0xff);
    assert_eq!(
        kind(PublicKey::from_sec1_bytes(Algorithm::K256, &junk)),
        CryptoErrorKind::BadKeyBytes
    );
    assert_eq!(
        kind(PublicKey::from_sec1_bytes(Algorithm::P256, &[2; 10])),
        CryptoErrorKind::BadKeyBytes
    );
    assert_eq!(
        kind(PublicKey::from_did_document_method(
            "Ed25519VerificationKey2020",
            &k.to_legacy_multibase()
        )),
        CryptoErrorKind::UnsupportedKeyType
    );
}

#[test]
fn private_key_errors() {
    for alg in Algorithm::ALL {
        let kind = |b: &[u8]| PrivateKey::from_bytes(alg, b).unwrap_err().kind();
        assert_eq!(kind(&[1; 31]), CryptoErrorKind::BadKeyBytes);
        assert_eq!(kind(&[0; 32]), CryptoErrorKind::BadKeyBytes);
        assert_eq!(kind(&[0xff; 32]), CryptoErrorKind::BadKeyBytes);
        assert_eq!(kind(&order(alg)), CryptoErrorKind::BadKeyBytes);
    }
}

#[test]
fn generated_keys_work() {
    for alg in Algorithm::ALL {
        let key = PrivateKey::random(alg);
        let sig = key.sign(b"random");
        key.public_key().verify(b"random", &sig).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains(&key.public_key().to_did_key()));
        assert!(!dbg.contains(&format!("{:?}", key.to_bytes())));
    }
}

#[test]
fn algorithm_names() {
    assert_eq!(Algorithm::K256.jwt_name(), "ES256K");
    assert_eq!(Algorithm::P256.jwt_name(), "ES256");
    for alg in Algorithm::ALL {
        assert_eq!(alg.to_string().parse::<Algorithm>().unwrap(), alg);
    }
    assert_eq!(
        "EdDSA".parse::<Algorithm>().unwrap_err().kind(),
        CryptoErrorKind::UnsupportedKeyType
    );
}

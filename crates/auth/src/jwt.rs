//! The compact JWS form of an atproto service token: parsing its header and claims, and
//! minting one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use skystream_crypto::{Algorithm, PrivateKey};

use crate::error::{AuthError, AuthErrorKind};

/// Tokens longer than this are refused before any decoding (real ones are about 500 bytes).
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;

/// `typ` values that mark a token as something other than a service token: OAuth access
/// tokens (RFC 9068), the reference PDS's refresh tokens, and DPoP proofs (RFC 9449).
const FORBIDDEN_TYPES: [&str; 3] = ["at+jwt", "refresh+jwt", "dpop+jwt"];

/// The claims a service token must (or may) carry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Claims {
    pub iss: String,
    pub aud: String,
    pub exp: f64,
    pub iat: Option<f64>,
    pub lxm: Option<String>,
}

/// A structurally valid token, not yet checked against time, audience, method or key.
#[derive(Debug)]
pub(crate) struct Jwt<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub alg: Algorithm,
    pub claims: Claims,
    pub signature: &'a str,
}

fn bad(message: impl Into<String>) -> AuthError {
    AuthError::new(AuthErrorKind::BadJwt, message)
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| bad(format!("poorly formatted jwt: {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad(format!(
            "poorly formatted jwt: {what} is not a JSON object"
        ))),
    }
}

fn string_claim(payload: &Map<String, Value>, name: &str) -> Result<String, AuthError> {
    match payload.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(format!("poorly formatted jwt: {name} is not a string"))),
        None => Err(bad(format!("poorly formatted jwt: no {name}"))),
    }
}

fn number_claim(payload: &Map<String, Value>, name: &str) -> Result<Option<f64>, AuthError> {
    match payload.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad(format!("poorly formatted jwt: {name} is not a number"))),
        Some(_) => Err(bad(format!("poorly formatted jwt: {name} is not a number"))),
    }
}

/// Splits and decodes a compact JWS, checking the header (`alg`, `typ`, `crit`) and the types
/// of the claims. Errors are [`AuthErrorKind::BadJwt`] or [`AuthErrorKind::BadJwtType`].
pub(crate) fn parse(token: &str) -> Result<Jwt<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(bad("poorly formatted jwt: too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("poorly formatted jwt"));
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];

    let header = decode_object(header, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => Algorithm::from_jwt_name(alg).ok_or_else(|| {
            bad(format!(
                "unsupported jwt alg {alg:?}: service tokens are ES256K or ES256"
            ))
        })?,
        _ => return Err(bad("poorly formatted jwt: no alg")),
    };
    match header.get("typ") {
        Some(Value::String(typ)) if FORBIDDEN_TYPES.iter().any(|t| t.eq_ignore_ascii_case(typ)) => {
            return Err(AuthError::new(
                AuthErrorKind::BadJwtType,
                format!("Invalid jwt type {typ:?}"),
            ));
        }
        None | Some(Value::String(_)) => {}
        Some(_) => return Err(bad("poorly formatted jwt: typ is not a string")),
    }
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we understand none.
    if header.contains_key("crit") {
        return Err(bad("unsupported jwt: critical header extensions"));
    }

    let payload = decode_object(payload, "payload")?;
    let lxm = match payload.get("lxm") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("poorly formatted jwt: lxm is not a string")),
    };
    let claims = Claims {
        iss: string_claim(&payload, "iss")?,
        aud: string_claim(&payload, "aud")?,
        exp: number_claim(&payload, "exp")?.ok_or_else(|| bad("poorly formatted jwt: no exp"))?,
        iat: number_claim(&payload, "iat")?,
        lxm,
    };
    Ok(Jwt {
        signing_input,
        alg,
        claims,
        signature,
    })
}

/// Decodes the signature part (base64url, no padding).
pub(crate) fn decode_signature(signature: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| bad("poorly formatted jwt: signature is not base64url"))
}

/// Seconds since the Unix epoch, with a fraction.
pub(crate) fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A 128-bit nonce for `jti`, unique per call (unpredictable enough for a nonce, not a secret).
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut halves = [0u64; 2];
    for (i, half) in halves.iter_mut().enumerate() {
        // Each RandomState is keyed from the OS's randomness.
        let mut h = RandomState::new().build_hasher();
        h.write_u64(count);
        h.write_u128(nanos);
        h.write_usize(i);
        *half = h.finish();
    }
    format!("{:016x}{:016x}", halves[0], halves[1])
}

/// Mints a service token, as a PDS's `com.atproto.server.getServiceAuth` does: header
/// `{"typ": "JWT", "alg": "ES256K" | "ES256"}` (by the key's curve), payload `{iat (now), iss,
/// aud, exp, lxm, jti}`, signed with `key` over `header.payload`. For tests and tools.
pub fn mint(key: &PrivateKey, iss: &str, aud: &str, lxm: &str, exp_unix: i64) -> String {
    let header = json!({ "typ": "JWT", "alg": key.algorithm().jwt_name() });
    let payload = json!({
        "iat": now_unix().floor() as i64,
        "iss": iss,
        "aud": aud,
        "exp": exp_unix,
        "lxm": lxm,
        "jti": nonce(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(v: Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn token(header: Value, payload: Value) -> String {
        format!("{}.{}.c2ln", part(header), part(payload))
    }

    fn payload() -> Value {
        json!({"iss": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "aud": "did:web:feed.test", "exp": 2e9})
    }

    fn kind(token: &str) -> AuthErrorKind {
        parse(token).expect_err(token).kind()
    }

    #[test]
    fn minted_tokens_parse() {
        let key = PrivateKey::from_seed(Algorithm::P256, 1);
        let t = mint(
            &key,
            "did:plc:x",
            "did:web:feed.test",
            "app.bsky.feed.getFeedSkeleton",
            5,
        );
        let jwt = parse(&t).expect("parse");
        assert_eq!(jwt.alg, Algorithm::P256);
        assert_eq!(jwt.claims.iss, "did:plc:x");
        assert_eq!(jwt.claims.aud, "did:web:feed.test");
        assert_eq!(jwt.claims.exp, 5.0);
        assert_eq!(
            jwt.claims.lxm.as_deref(),
            Some("app.bsky.feed.getFeedSkeleton")
        );
        assert!(jwt.claims.iat.expect("iat") > 1.7e9);
        let sig = decode_signature(jwt.signature).expect("sig");
        key.public_key()
            .verify(jwt.signing_input.as_bytes(), &sig)
            .expect("verifies");
        // Two mints differ (jti).
        let t2 = mint(&key, "did:plc:x", "did:web:feed.test", "m", 5);
        let t3 = mint(&key, "did:plc:x", "did:web:feed.test", "m", 5);
        assert_ne!(t2, t3);
    }

    #[test]
    fn structure_and_types_are_checked() {
        use AuthErrorKind::*;
        let es = json!({"alg": "ES256K"});
        assert_eq!(kind(""), BadJwt);
        assert_eq!(kind("a.b"), BadJwt);
        assert_eq!(kind("a.b.c.d"), BadJwt);
        assert_eq!(kind("!!!.e30.c2ln"), BadJwt);
        assert_eq!(
            kind(&format!("{}.bm90IGpzb24.c2ln", part(es.clone()))),
            BadJwt
        );
        assert_eq!(kind(&token(json!([1]), payload())), BadJwt);
        assert_eq!(kind(&token(json!({}), payload())), BadJwt);
        assert_eq!(kind(&token(json!({"alg": "none"}), payload())), BadJwt);
        assert_eq!(kind(&token(json!({"alg": "HS256"}), payload())), BadJwt);
        assert_eq!(kind(&token(json!({"alg": "es256k"}), payload())), BadJwt);
        assert_eq!(kind(&token(json!({"alg": 7}), payload())), BadJwt);
        for typ in ["at+jwt", "refresh+jwt", "dpop+jwt", "DPoP+JWT"] {
            assert_eq!(
                kind(&token(json!({"alg": "ES256", "typ": typ}), payload())),
                BadJwtType
            );
        }
        assert_eq!(
            kind(&token(json!({"alg": "ES256", "typ": 1}), payload())),
            BadJwt
        );
        assert_eq!(
            kind(&token(
                json!({"alg": "ES256", "crit": ["b64"], "b64": false}),
                payload()
            )),
            BadJwt
        );
        for drop in ["iss", "aud", "exp"] {
            let mut p = payload();
            p.as_object_mut().expect("obj").remove(drop);
            assert_eq!(kind(&token(es.clone(), p)), BadJwt, "{drop}");
        }
        for (name, value) in [
            ("iss", json!(1)),
            ("aud", json!(["did:web:feed.test"])),
            ("exp", json!("2000000000")),
            ("iat", json!("now")),
            ("lxm", json!(1)),
        ] {
            let mut p = payload();
            p[name] = value;
            assert_eq!(kind(&token(es.clone(), p)), BadJwt, "{name}");
        }
        // Padding is not base64url-no-pad.
        let padded = format!("{}=.{}.c2ln", part(es.clone()), part(payload()));
        assert_eq!(kind(&padded), BadJwt);
        assert_eq!(kind(&"a".repeat(MAX_TOKEN_LEN + 1)), BadJwt);
        // typ "JWT", a null lxm, extra claims and an absent iat are all fine.
        let mut p = payload();
        p["lxm"] = Value::Null;
        p["jti"] = json!("abc");
        let t = token(json!({"alg": "ES256K", "typ": "JWT"}), p);
        let jwt = parse(&t).expect("ok");
        assert_eq!(jwt.claims.lxm, None);
        assert_eq!(jwt.claims.iat, None);
    }
}

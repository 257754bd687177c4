//! `ServiceAuth` end to end with in-memory resolvers: tokens minted on both curves, every
//! refusal's XRPC name, key rotation, and the verified-token cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use skystream_auth::{mint, AuthError, AuthErrorKind, Requester, ServiceAuth};
use skystream_crypto::{Algorithm, PrivateKey};
use skystream_identity::{CachingResolver, DidDocument, ResolveError, ResolveErrorKind, Resolver};

const SERVICE: &str = "did:web:feed.example.com";
const LXM: &str = "app.bsky.feed.getFeedSkeleton";
const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const BOB: &str = "did:web:bob.example.com";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn doc(did: &str, key: &PrivateKey) -> DidDocument {
    DidDocument::from_json(
        &json!({
            "id": did,
            "verificationMethod": [{
                "id": format!("{did}#atproto"),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.public_key().to_multikey(),
            }],
        })
        .to_string(),
    )
    .expect("doc")
}

/// Holds documents that tests can replace; counts `resolve` and `purge` calls. A DID mapped to
/// `None` fails with a network error.
#[derive(Default)]
struct Counting {
    docs: Mutex<HashMap<String, Option<Arc<DidDocument>>>>,
    resolves: AtomicUsize,
    purges: AtomicUsize,
}

impl Counting {
    fn with(docs: impl IntoIterator<Item = DidDocument>) -> Arc<Self> {
        let r = Counting::default();
        for d in docs {
            r.set(d);
        }
        Arc::new(r)
    }
    fn set(&self, doc: DidDocument) {
        self.docs
            .lock()
            .expect("lock")
            .insert(doc.id.clone(), Some(Arc::new(doc)));
    }
    fn fail(&self, did: &str) {
        self.docs.lock().expect("lock").insert(did.into(), None);
    }
    fn resolves(&self) -> usize {
        self.resolves.load(Ordering::SeqCst)
    }
    fn purges(&self) -> usize {
        self.purges.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Resolver for Counting {
    async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, ResolveError> {
        self.resolves.fetch_add(1, Ordering::SeqCst);
        match self.docs.lock().expect("lock").get(did) {
            Some(Some(doc)) => Ok(doc.clone()),
            Some(None) => Err(ResolveError::new(
                ResolveErrorKind::Network,
                did,
                "connection refused",
            )),
            None => Err(ResolveError::new(
                ResolveErrorKind::NotFound,
                did,
                "HTTP 404",
            )),
        }
    }
    fn purge(&self, _did: &str) {
        self.purges.fetch_add(1, Ordering::SeqCst);
    }
}

fn auth(resolver: Arc<dyn Resolver>) -> ServiceAuth {
    ServiceAuth::new(SERVICE, resolver)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Signs an arbitrary header and payload with `key`.
fn forge(key: &PrivateKey, header: Value, payload: Value) -> String {
    let input = format!("{}.{}", b64(&header), b64(&payload));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "aud": SERVICE, "exp": now() + 60, "iat": now(), "lxm": LXM})
}

fn es256k() -> Value {
    json!({"typ": "JWT", "alg": "ES256K"})
}

async fn refused(auth: &ServiceAuth, header: Option<&str>, lxm: &str) -> AuthError {
    auth.verify(header, lxm).await.expect_err("refused")
}

async fn refused_name(auth: &ServiceAuth, token: &str) -> &'static str {
    refused(auth, Some(&bearer(token)), LXM).await.error_name()
}

#[tokio::test]
async fn tokens_minted_on_both_curves_verify() {
    for alg in Algorithm::ALL {
        let key = PrivateKey::from_seed(alg, 1);
        let resolver = Counting::with([doc(ALICE, &key), doc(BOB, &key)]);
        let auth = auth(resolver.clone());
        for did in [ALICE, BOB] {
            let token = mint(&key, did, SERVICE, LXM, now() + 60);
            let who = auth
                .verify(Some(&bearer(&token)), LXM)
                .await
                .unwrap_or_else(|e| panic!("{alg} {did}: {e}"));
            assert_eq!(who, Requester { did: did.into() });
        }
        assert_eq!(resolver.purges(), 0);
    }
}

#[tokio::test]
async fn the_header_must_be_a_bearer_token() {
    let key = PrivateKey::from_seed(Algorithm::K256, 2);
    let auth = auth(Counting::with([doc(ALICE, &key)]));
    let token = mint(&key, ALICE, SERVICE, LXM, now() + 60);
    for header in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer  "),
        Some("Basic YWRtaW46cHc="),
    ] {
        let e = refused(&auth, header, LXM).await;
        assert_eq!(e.error_name(), "AuthenticationRequired", "{header:?}");
        assert_eq!(e.kind(), AuthErrorKind::AuthenticationRequired);
        assert_eq!(e.status(), 401);
    }
    // The scheme is case-insensitive (RFC 7235).
    let who = auth
        .verify(Some(&format!("bearer {token}")), LXM)
        .await
        .expect("lowercase scheme");
    assert_eq!(who.did, ALICE);
}

#[tokio::test]
async fn garbage_and_foreign_algorithms_are_bad_jwts() {
    let key = PrivateKey::from_seed(Algorithm::K256, 3);
    let auth = auth(Counting::with([doc(ALICE, &key)]));
    for garbage in [
        "garbage",
        "a.b.c",
        "a.b.c.d",
        "...",
        "eyJhbGciOiJFUzI1NksifQ.e30.",
    ] {
        assert_eq!(refused_name(&auth, garbage).await, "BadJwt", "{garbage}");
    }
    // alg "none" with an empty signature, HS256 (a MAC keyed by anything), RS256.
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims(ALICE)));
    assert_eq!(refused_name(&auth, &none).await, "BadJwt");
    for alg in ["none", "HS256", "RS256", "ES384", "EdDSA"] {
        let token = forge(&key, json!({"typ": "JWT", "alg": alg}), claims(ALICE));
        assert_eq!(refused_name(&auth, &token).await, "BadJwt", "{alg}");
    }
    // A well-signed token whose signature part is not base64url.
    let token = mint(&key, ALICE, SERVICE, LXM, now() + 60);
    let (input, _) = token.rsplit_once('.').expect("dots");
    assert_eq!(refused_name(&auth, &format!("{input}.$$$")).await, "BadJwt");
}

#[tokio::test]
async fn other_token_types_are_refused() {
    let key = PrivateKey::from_seed(Algorithm::P256, 4);
    let auth = auth(Counting::with([doc(ALICE, &key)]));
    for typ in ["at+jwt", "refresh+jwt", "dpop+jwt"] {
        let token = forge(&key, json!({"typ": typ, "alg": "ES256"}), claims(ALICE));
        let e = refused(&auth, Some(&bearer(&token)), LXM).await;
        assert_eq!(e.error_name(), "BadJwtType", "{typ}");
        assert_eq!(e.status(), 401);
    }
    // No typ at all is fine.
    let token = forge(&key, json!({"alg": "ES256"}), claims(ALICE));
    auth.verify(Some(&bearer(&token)), LXM)
        .await
        .expect("no typ");
}

#[tokio::test]
async fn expiry_and_issue_time_respect_the_leeway() {
    let key = PrivateKey::from_seed(Algorithm::K256, 5);
    let resolver = Counting::with([doc(ALICE, &key)]);
    let auth = auth(resolver.clone());
    let expired = mint(&key, ALICE, SERVICE, LXM, now() - 3600);
    assert_eq!(refused_name(&auth, &expired).await, "JwtExpired");

    // Ten seconds past exp is within the default 30 s leeway...
    let just = mint(&key, ALICE, SERVICE, LXM, now() - 10);
    auth.verify(Some(&bearer(&just)), LXM)
        .await
        .expect("leeway");
    // ...but not without leeway.
    let strict = ServiceAuth::new(SERVICE, resolver.clone()).with_leeway(Duration::ZERO);
    assert_eq!(refused_name(&strict, &just).await, "JwtExpired");

    // iat a little in the future is clock skew; far in the future is refused.
    let mut c = claims(ALICE);
    c["iat"] = json!(now() + 10);
    auth.verify(Some(&bearer(&forge(&key, es256k(), c))), LXM)
        .await
        .expect("skew");
    let mut c = claims(ALICE);
    c["iat"] = json!(now() + 3600);
    c["exp"] = json!(now() + 7200);
    assert_eq!(
        refused_name(&auth, &forge(&key, es256k(), c)).await,
        "BadJwt"
    );

    // exp is required.
    let mut c = claims(ALICE);
    c.as_object_mut().expect("obj").remove("exp");
    assert_eq!(
        refused_name(&auth, &forge(&key, es256k(), c)).await,
        "BadJwt"
    );
}

#[tokio::test]
async fn audience_and_method_must_match() {
    let key = PrivateKey::from_seed(Algorithm::K256, 6);
    let resolver = Counting::with([doc(ALICE, &key)]);
    let auth = auth(resolver.clone());

    for aud in [
        "did:web:other.example.com",
        "did:web:feed.example.com#bsky_fg",
    ] {
        let token = mint(&key, ALICE, aud, LXM, now() + 60);
        assert_eq!(refused_name(&auth, &token).await, "BadJwtAudience", "{aud}");
    }

    let token = mint(&key, ALICE, SERVICE, "app.bsky.feed.getFeed", now() + 60);
    let e = refused(&auth, Some(&bearer(&token)), LXM).await;
    assert_eq!(e.error_name(), "BadJwtLexiconMethod");
    assert!(e.message().starts_with("bad jwt lexicon method"), "{e}");

    for lxm in [Value::Null, json!("__absent__")] {
        let mut c = claims(ALICE);
        if lxm.is_null() {
            c["lxm"] = Value::Null;
        } else {
            c.as_object_mut().expect("obj").remove("lxm");
        }
        let e = refused(&auth, Some(&bearer(&forge(&key, es256k(), c))), LXM).await;
        assert_eq!(e.error_name(), "BadJwtLexiconMethod");
        assert!(e.message().starts_with("missing jwt lexicon method"), "{e}");
    }
    // None of these needed the issuer's document.
    assert_eq!(resolver.resolves(), 0);
}

#[tokio::test]
async fn the_issuer_must_be_a_did_and_a_fragment_is_dropped() {
    let key = PrivateKey::from_seed(Algorithm::K256, 7);
    let auth = auth(Counting::with([doc(ALICE, &key)]));
    for iss in [
        "alice.example.com",
        "did:plc:",
        "did:plc:abc#",
        "https://x.test",
    ] {
        let token = mint(&key, iss, SERVICE, LXM, now() + 60);
        assert_eq!(refused_name(&auth, &token).await, "BadJwtIss", "{iss}");
    }
    let token = mint(
        &key,
        &format!("{ALICE}#atproto_labeler"),
        SERVICE,
        LXM,
        now() + 60,
    );
    let who = auth
        .verify(Some(&bearer(&token)), LXM)
        .await
        .expect("fragment");
    assert_eq!(who.did, ALICE);
}

#[tokio::test]
async fn forged_signatures_fail_after_one_re_resolution() {
    let real = PrivateKey::from_seed(Algorithm::K256, 8);
    let forger = PrivateKey::from_seed(Algorithm::K256, 9);
    let resolver = Counting::with([doc(ALICE, &real)]);
    let auth = auth(resolver.clone());

    let forged = mint(&forger, ALICE, SERVICE, LXM, now() + 60);
    let e = refused(&auth, Some(&bearer(&forged)), LXM).await;
    assert_eq!(e.error_name(), "BadJwtSignature");
    assert_eq!(e.status(), 401);
    assert_eq!(
        resolver.resolves(),
        2,
        "resolved, purged, resolved once more"
    );
    assert_eq!(resolver.purges(), 1);

    // A genuine token whose payload was edited after signing.
    let genuine = mint(&real, ALICE, SERVICE, "app.bsky.feed.getFeed", now() + 60);
    let (_, rest) = genuine.split_once('.').expect("dots");
    let (_, sig) = rest.split_once('.').expect("dots");
    let tampered = format!("{}.{}.{sig}", b64(&es256k()), b64(&claims(ALICE)));
    assert_eq!(refused_name(&auth, &tampered).await, "BadJwtSignature");

    // Header alg naming the other curve than the issuer's key.
    let wrong_alg = forge(&real, json!({"typ": "JWT", "alg": "ES256"}), claims(ALICE));
    assert_eq!(refused_name(&auth, &wrong_alg).await, "BadJwtSignature");
}

/// `n - s` for secp256k1's group order `n`, both 32-byte big-endian.
fn k256_negate_s(s: &[u8]) -> [u8; 32] {
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36,
        0x41, 0x41,
    ];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = N[i] as i16 - s[i] as i16 - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    out
}

#[tokio::test]
async fn malformed_and_high_s_signatures_fail_without_re_resolution() {
    let key = PrivateKey::from_seed(Algorithm::K256, 10);
    let resolver = Counting::with([doc(ALICE, &key)]);
    let auth = auth(resolver.clone());
    let token = mint(&key, ALICE, SERVICE, LXM, now() + 60);
    let (input, sig) = token.rsplit_once('.').expect("dots");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("sig");

    // The same signature with s replaced by n - s: valid ECDSA, but atproto wants low-S.
    let mut high = sig.clone();
    high[32..].copy_from_slice(&k256_negate_s(&sig[32..]));
    let high_s = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&high));
    let e = refused(&auth, Some(&bearer(&high_s)), LXM).await;
    assert_eq!(e.error_name(), "BadJwtSignature");
    assert!(e.message().contains("high-S"), "{e}");

    // A signature of the wrong length (a DER encoding is 70-72 bytes).
    let short = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig[..63]));
    assert_eq!(refused_name(&auth, &short).await, "BadJwtSignature");

    assert_eq!(resolver.purges(), 0);
    assert_eq!(resolver.resolves(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_after_one_re_resolution() {
    let old = PrivateKey::from_seed(Algorithm::K256, 11);
    let new = PrivateKey::from_seed(Algorithm::P256, 12);
    let inner = Counting::with([doc(ALICE, &old)]);
    let cache = Arc::new(CachingResolver::new(inner.clone()));
    let auth = auth(cache.clone()).with_token_cache_capacity(0);

    let before = mint(&old, ALICE, SERVICE, LXM, now() + 60);
    auth.verify(Some(&bearer(&before)), LXM)
        .await
        .expect("old key");
    assert_eq!(inner.resolves(), 1);

    // The user rotates to a key on the other curve; our cache still holds the old document.
    inner.set(doc(ALICE, &new));
    let after = mint(&new, ALICE, SERVICE, LXM, now() + 60);
    let who = auth
        .verify(Some(&bearer(&after)), LXM)
        .await
        .expect("rotated key");
    assert_eq!(who.did, ALICE);
    assert_eq!(inner.resolves(), 2, "exactly one re-resolution");

    // The fresh document is now cached: the next token costs nothing.
    let again = mint(&new, ALICE, SERVICE, LXM, now() + 60);
    auth.verify(Some(&bearer(&again)), LXM)
        .await
        .expect("cached");
    assert_eq!(inner.resolves(), 2);

    // And the old key no longer verifies (after its own single re-resolution).
    let stale = mint(&old, ALICE, SERVICE, LXM, now() + 60);
    assert_eq!(refused_name(&auth, &stale).await, "BadJwtSignature");
    assert_eq!(inner.resolves(), 3);
}

#[tokio::test]
async fn verified_tokens_are_cached_until_they_expire() {
    let key = PrivateKey::from_seed(Algorithm::P256, 13);
    let resolver = Counting::with([doc(ALICE, &key)]);
    let auth = auth(resolver.clone()).with_leeway(Duration::ZERO);
    let token = mint(&key, ALICE, SERVICE, LXM, now() + 2);
    for _ in 0..5 {
        let who = auth.verify(Some(&bearer(&token)), LXM).await.expect("ok");
        assert_eq!(who.did, ALICE);
    }
    assert_eq!(resolver.resolves(), 1, "one resolution for five requests");

    // A cached token is still only good for its own method.
    let e = refused(&auth, Some(&bearer(&token)), "app.bsky.feed.getFeed").await;
    assert_eq!(e.error_name(), "BadJwtLexiconMethod");

    // Once it expires, the cache does not keep it alive.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(refused_name(&auth, &token).await, "JwtExpired");

    // Without the cache every request resolves (each its own token, as clients send).
    let uncached = ServiceAuth::new(SERVICE, resolver.clone()).with_token_cache_capacity(0);
    let token = mint(&key, ALICE, SERVICE, LXM, now() + 60);
    for _ in 0..3 {
        uncached
            .verify(Some(&bearer(&token)), LXM)
            .await
            .expect("ok");
    }
    assert_eq!(resolver.resolves(), 4);
}

#[tokio::test]
async fn unresolvable_issuers() {
    let key = PrivateKey::from_seed(Algorithm::K256, 14);
    let resolver = Counting::with([]);
    resolver.fail(BOB);
    let auth = auth(resolver.clone());

    let token = mint(&key, ALICE, SERVICE, LXM, now() + 60);
    let e = refused(&auth, Some(&bearer(&token)), LXM).await;
    assert_eq!(e.kind(), AuthErrorKind::UnknownIdentity);
    assert_eq!(e.error_name(), "AuthenticationRequired");
    assert_eq!(e.status(), 401);

    let token = mint(&key, BOB, SERVICE, LXM, now() + 60);
    let e = refused(&auth, Some(&bearer(&token)), LXM).await;
    assert_eq!(e.kind(), AuthErrorKind::IdentityUnavailable);
    assert_eq!(e.error_name(), "UpstreamFailure");
    assert_eq!(e.status(), 502);

    // A document without an #atproto key.
    resolver.set(DidDocument::from_json(&json!({"id": ALICE}).to_string()).expect("doc"));
    let token = mint(&key, ALICE, SERVICE, LXM, now() + 60);
    let e = refused(&auth, Some(&bearer(&token)), LXM).await;
    assert_eq!(e.kind(), AuthErrorKind::UnknownIdentity);
    assert!(e.message().contains("missing or bad key"), "{e}");
}

#[test]
fn every_refusal_is_401_but_an_unreachable_issuer() {
    use AuthErrorKind::*;
    for (kind, name) in [
        (AuthenticationRequired, "AuthenticationRequired"),
        (BadJwt, "BadJwt"),
        (BadJwtType, "BadJwtType"),
        (BadJwtIss, "BadJwtIss"),
        (JwtExpired, "JwtExpired"),
        (BadJwtAudience, "BadJwtAudience"),
        (BadJwtLexiconMethod, "BadJwtLexiconMethod"),
        (BadJwtSignature, "BadJwtSignature"),
        (UnknownIdentity, "AuthenticationRequired"),
    ] {
        let e = AuthError::new(kind, "m");
        assert_eq!((e.error_name(), e.status()), (name, 401));
        assert_eq!(e.to_string(), "m");
    }
    assert_eq!(AuthError::new(IdentityUnavailable, "m").status(), 502);
}

#[test]
fn service_auth_can_live_in_a_server() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let auth = auth(Counting::with([]));
    send_sync(&auth);
    // Handler futures in axum must be Send.
    send(&auth.verify(None, LXM));
}

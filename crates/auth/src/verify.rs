//! [`ServiceAuth`]: verifying a request's `Authorization: Bearer <jwt>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use sha2::{Digest, Sha256};
use skystream_crypto::{Algorithm, CryptoErrorKind};
use skystream_identity::{DidDocument, ResolveErrorKind, Resolver};

use crate::error::{AuthError, AuthErrorKind};
use crate::jwt::{self, Jwt};

/// Clock leeway on `exp` and `iat`, unless configured.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// How many verified tokens are remembered, unless configured.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: u64 = 10_000;

/// A verified token is remembered at most this long, whatever its `exp`.
const MAX_TOKEN_CACHE_TTL: Duration = Duration::from_secs(60 * 60);

/// Who made an authenticated request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requester {
    /// The issuer's DID (`iss` without any `#fragment`): the requesting user.
    pub did: String,
}

/// A token that verified, remembered by the SHA-256 of its text.
#[derive(Clone, Debug)]
struct Verified {
    did: String,
    lxm: String,
    exp: f64,
    leeway: f64,
}

/// Remember a verified token until it expires (plus leeway), capped at an hour.
struct UntilExpiry;

impl Expiry<[u8; 32], Verified> for UntilExpiry {
    fn expire_after_create(&self, _k: &[u8; 32], v: &Verified, _now: Instant) -> Option<Duration> {
        let left = (v.exp + v.leeway - jwt::now_unix()).max(0.0);
        Some(Duration::from_secs_f64(
            left.min(MAX_TOKEN_CACHE_TTL.as_secs_f64()),
        ))
    }
}

/// Verifies atproto service-auth JWTs addressed to one service.
///
/// A feed generator receives `Authorization: Bearer <jwt>` from the AppView (minted by the
/// user's PDS, signed with the user's `#atproto` key). [`ServiceAuth::verify`] checks, in the
/// reference implementation's order: the `Bearer` form; a compact JWS whose header `alg` is
/// `ES256K` or `ES256` and whose `typ` is not `at+jwt`/`refresh+jwt`/`dpop+jwt`; the claims'
/// types; `exp` (with leeway) and `iat` if present (not in the future beyond leeway); `aud` =
/// the service DID; `lxm` = the method called (required); `iss` a DID, optionally with a
/// `#fragment`; then the 64-byte low-S signature over `header.payload` with the `#atproto` key
/// of the issuer's DID document. On a signature that does not verify, the issuer is purged from
/// the resolver and re-resolved once, since keys rotate. Tokens that verify are remembered
/// (keyed by their SHA-256) until they expire, so a repeated token costs no resolution.
pub struct ServiceAuth {
    service_did: String,
    resolver: Arc<dyn Resolver>,
    leeway: Duration,
    verified: Option<moka::sync::Cache<[u8; 32], Verified>>,
}

fn token_cache(capacity: u64) -> Option<moka::sync::Cache<[u8; 32], Verified>> {
    (capacity > 0).then(|| {
        moka::sync::Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilExpiry)
            .build()
    })
}

/// What checking a signature against one document concluded.
enum SigCheck {
    Valid,
    /// Might verify with a fresher document (wrong key, or a key on another curve).
    Mismatch(String),
    /// Will not verify whatever the key (malformed or high-S signature), or no usable key.
    Fatal(AuthError),
}

impl ServiceAuth {
    /// Verifies tokens whose `aud` is `service_did`, resolving issuers with `resolver` (which
    /// should be a [`CachingResolver`](skystream_identity::CachingResolver)). Leeway
    /// [`DEFAULT_LEEWAY`], token cache [`DEFAULT_TOKEN_CACHE_ENTRIES`].
    pub fn new(service_did: impl Into<String>, resolver: Arc<dyn Resolver>) -> Self {
        ServiceAuth {
            service_did: service_did.into(),
            resolver,
            leeway: DEFAULT_LEEWAY,
            verified: token_cache(DEFAULT_TOKEN_CACHE_ENTRIES),
        }
    }

    /// Sets the clock leeway allowed on `exp` and `iat`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets how many verified tokens are remembered; 0 turns the cache off.
    pub fn with_token_cache_capacity(mut self, capacity: u64) -> Self {
        self.verified = token_cache(capacity);
        self
    }

    /// The service DID tokens must be addressed to.
    pub fn service_did(&self) -> &str {
        &self.service_did
    }

    /// The clock leeway in use.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Verifies a request's `Authorization` header value for a call to the XRPC method `lxm`
    /// (e.g. `app.bsky.feed.getFeedSkeleton`), returning the requester.
    ///
    /// A missing header, or one that is not `Bearer <token>`, is
    /// [`AuthErrorKind::AuthenticationRequired`]; the token itself is checked by
    /// [`ServiceAuth::verify_token`].
    pub async fn verify(
        &self,
        authorization_header: Option<&str>,
        lxm: &str,
    ) -> Result<Requester, AuthError> {
        let required =
            |message: &str| AuthError::new(AuthErrorKind::AuthenticationRequired, message);
        let header = authorization_header
            .ok_or_else(|| required("Authentication Required: no Authorization header"))?;
        let (scheme, token) = header.trim().split_once(' ').unwrap_or((header, ""));
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(required(
                "Authentication Required: the Authorization header is not a Bearer token",
            ));
        }
        self.verify_token(token, lxm).await
    }

    /// Verifies a bare service token (the part after `Bearer `) for a call to `lxm`.
    pub async fn verify_token(&self, token: &str, lxm: &str) -> Result<Requester, AuthError> {
        let now = jwt::now_unix();
        let leeway = self.leeway.as_secs_f64();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.verified.as_ref().and_then(|c| c.get(&digest)) {
            if hit.lxm == lxm && now <= hit.exp + leeway {
                return Ok(Requester { did: hit.did });
            }
            // Otherwise the full check below says precisely what is wrong.
        }

        let jwt = jwt::parse(token)?;
        let did = self.check_claims(&jwt, now, lxm)?;
        let signature = jwt::decode_signature(jwt.signature)?;
        self.check_signature(&jwt, did, &signature).await?;

        if let Some(cache) = &self.verified {
            cache.insert(
                digest,
                Verified {
                    did: did.to_owned(),
                    lxm: lxm.to_owned(),
                    exp: jwt.claims.exp,
                    leeway,
                },
            );
        }
        Ok(Requester {
            did: did.to_owned(),
        })
    }

    /// Time, audience, method and issuer; returns the issuer's DID.
    fn check_claims<'j>(
        &self,
        jwt: &'j Jwt<'_>,
        now: f64,
        lxm: &str,
    ) -> Result<&'j str, AuthError> {
        let claims = &jwt.claims;
        let leeway = self.leeway.as_secs_f64();
        if now > claims.exp + leeway {
            return Err(AuthError::new(AuthErrorKind::JwtExpired, "jwt expired"));
        }
        if claims.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(AuthError::new(
                AuthErrorKind::BadJwt,
                "jwt issued in the future",
            ));
        }
        if claims.aud != self.service_did {
            return Err(AuthError::new(
                AuthErrorKind::BadJwtAudience,
                "jwt audience does not match service did",
            ));
        }
        match &claims.lxm {
            Some(got) if got == lxm => {}
            Some(_) => {
                return Err(AuthError::new(
                    AuthErrorKind::BadJwtLexiconMethod,
                    format!("bad jwt lexicon method (\"lxm\"). must match: {lxm}"),
                ))
            }
            None => {
                return Err(AuthError::new(
                    AuthErrorKind::BadJwtLexiconMethod,
                    format!("missing jwt lexicon method (\"lxm\"). must match: {lxm}"),
                ))
            }
        }
        issuer_did(&claims.iss)
            .ok_or_else(|| AuthError::new(AuthErrorKind::BadJwtIss, "jwt iss is not a valid did"))
    }

    async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, AuthError> {
        self.resolver.resolve(did).await.map_err(|e| match e.kind {
            ResolveErrorKind::Network => AuthError::new(
                AuthErrorKind::IdentityUnavailable,
                format!("could not resolve the jwt issuer {did}: {}", e.detail),
            ),
            _ => AuthError::new(
                AuthErrorKind::UnknownIdentity,
                format!("identity unknown: {did} ({})", e.kind),
            ),
        })
    }

    async fn check_signature(&self, jwt: &Jwt<'_>, did: &str, sig: &[u8]) -> Result<(), AuthError> {
        let doc = self.resolve(did).await?;
        let reason = match check_with(&doc, jwt.alg, jwt.signing_input, sig) {
            SigCheck::Valid => return Ok(()),
            SigCheck::Fatal(e) => return Err(e),
            SigCheck::Mismatch(reason) => reason,
        };
        // The key may have rotated since the document was cached: refetch once.
        self.resolver.purge(did);
        let fresh = self.resolve(did).await?;
        let reason = if fresh.verification_method == doc.verification_method {
            reason
        } else {
            match check_with(&fresh, jwt.alg, jwt.signing_input, sig) {
                SigCheck::Valid => return Ok(()),
                SigCheck::Fatal(e) => return Err(e),
                SigCheck::Mismatch(reason) => reason,
            }
        };
        Err(AuthError::new(AuthErrorKind::BadJwtSignature, reason))
    }
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuth")
            .field("service_did", &self.service_did)
            .field("leeway", &self.leeway)
            .field("token_cache", &self.verified.is_some())
            .finish_non_exhaustive()
    }
}

/// The DID part of an `iss`: a DID, or a DID with one non-empty `#fragment`.
fn issuer_did(iss: &str) -> Option<&str> {
    let did = match iss.split_once('#') {
        None => iss,
        Some((did, fragment)) => {
            if fragment.is_empty() || fragment.contains('#') {
                return None;
            }
            did
        }
    };
    skystream_syntax::is_valid_did(did).then_some(did)
}

fn check_with(doc: &DidDocument, alg: Algorithm, signing_input: &str, sig: &[u8]) -> SigCheck {
    let key = match doc.signing_key() {
        Ok(key) => key,
        Err(e) => {
            return SigCheck::Fatal(AuthError::new(
                AuthErrorKind::UnknownIdentity,
                format!("missing or bad key: {e}"),
            ))
        }
    };
    if key.algorithm() != alg {
        return SigCheck::Mismatch(format!(
            "jwt alg {alg} does not match the issuer's {} key",
            key.algorithm()
        ));
    }
    match key.verify(signing_input.as_bytes(), sig) {
        Ok(()) => SigCheck::Valid,
        Err(e) if e.kind() == CryptoErrorKind::BadSignature => {
            SigCheck::Mismatch("jwt signature does not match jwt issuer".into())
        }
        Err(e) => SigCheck::Fatal(AuthError::new(
            AuthErrorKind::BadJwtSignature,
            format!("could not verify jwt signature: {}", e.kind()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_did_takes_the_did_part() {
        let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(issuer_did(did), Some(did));
        assert_eq!(
            issuer_did("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_labeler"),
            Some(did)
        );
        assert_eq!(issuer_did("did:web:feed.test"), Some("did:web:feed.test"));
        for bad in [
            "",
            "alice.test",
            "did:plc:aaaa#",
            "did:plc:aaaa#a#b",
            "#frag",
            "did:x",
        ] {
            assert_eq!(issuer_did(bad), None, "{bad}");
        }
    }
}

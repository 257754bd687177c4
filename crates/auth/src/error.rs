//! [`AuthError`]: why a request's service auth was refused, with its XRPC error name.

use std::fmt;

/// Why a token was refused, as a stable category.
///
/// [`AuthErrorKind::error_name`] is the XRPC `error` field (the names the reference
/// implementation uses); [`AuthErrorKind::as_str`] a snake_case metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// No `Authorization` header, or not a `Bearer` one.
    AuthenticationRequired,
    /// The token is not a well-formed atproto service JWT: not three base64url parts, not
    /// JSON objects, an `alg` other than `ES256K`/`ES256`, a required claim missing or of the
    /// wrong type, or `iat` in the future.
    BadJwt,
    /// The header's `typ` says it is some other kind of token (`at+jwt`, `refresh+jwt`,
    /// `dpop+jwt`).
    BadJwtType,
    /// `iss` is not a DID (optionally with a `#fragment`).
    BadJwtIss,
    /// `exp` has passed (beyond the leeway).
    JwtExpired,
    /// `aud` is not this service's DID.
    BadJwtAudience,
    /// `lxm` is missing or names another method.
    BadJwtLexiconMethod,
    /// The signature does not verify with the issuer's `#atproto` key, even after
    /// re-resolving the issuer once.
    BadJwtSignature,
    /// The issuer's DID document could not be found, or has no usable `#atproto` key. XRPC
    /// name `AuthenticationRequired`, as the reference AppView answers.
    UnknownIdentity,
    /// The issuer's DID document could not be fetched (network failure or timeout): not the
    /// requester's fault, so XRPC `UpstreamFailure`, HTTP 502.
    IdentityUnavailable,
}

impl AuthErrorKind {
    /// The XRPC error name for the response body's `error` field.
    pub const fn error_name(self) -> &'static str {
        match self {
            Self::AuthenticationRequired | Self::UnknownIdentity => "AuthenticationRequired",
            Self::BadJwt => "BadJwt",
            Self::BadJwtType => "BadJwtType",
            Self::BadJwtIss => "BadJwtIss",
            Self::JwtExpired => "JwtExpired",
            Self::BadJwtAudience => "BadJwtAudience",
            Self::BadJwtLexiconMethod => "BadJwtLexiconMethod",
            Self::BadJwtSignature => "BadJwtSignature",
            Self::IdentityUnavailable => "UpstreamFailure",
        }
    }

    /// The HTTP status: 401 for every refusal, 502 when the issuer could not be resolved.
    pub const fn status(self) -> u16 {
        match self {
            Self::IdentityUnavailable => 502,
            _ => 401,
        }
    }

    /// A short snake_case name, suitable as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthenticationRequired => "authentication_required",
            Self::BadJwt => "bad_jwt",
            Self::BadJwtType => "bad_jwt_type",
            Self::BadJwtIss => "bad_jwt_iss",
            Self::JwtExpired => "jwt_expired",
            Self::BadJwtAudience => "bad_jwt_audience",
            Self::BadJwtLexiconMethod => "bad_jwt_lexicon_method",
            Self::BadJwtSignature => "bad_jwt_signature",
            Self::UnknownIdentity => "unknown_identity",
            Self::IdentityUnavailable => "identity_unavailable",
        }
    }
}

impl fmt::Display for AuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: its kind and a human-readable message (the `Display`, suitable for the
/// XRPC `message` field; it names no key material).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    kind: AuthErrorKind,
    message: String,
}

impl AuthError {
    /// An error of `kind` with `message`.
    pub fn new(kind: AuthErrorKind, message: impl Into<String>) -> Self {
        AuthError {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The XRPC error name (`BadJwtSignature`, …); see [`AuthErrorKind::error_name`].
    pub fn error_name(&self) -> &'static str {
        self.kind.error_name()
    }

    /// The HTTP status to answer with; see [`AuthErrorKind::status`].
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

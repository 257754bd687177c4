//! [`HttpResolver`]: did:plc through a PLC directory, did:web through `/.well-known/did.json`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::StatusCode;

use crate::document::DidDocument;
use crate::resolve::{ResolveError, ResolveErrorKind, Resolver};

/// The PLC directory used when none is configured.
pub const DEFAULT_PLC_URL: &str = "https://plc.directory";

/// How long one resolution may take, connection to last body byte, unless configured.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest DID document body accepted, unless configured (real documents are about 1 KiB).
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// Top-level domains a `did:web` may not use: they never name a public host (the same list as
/// the reference Go implementation's `AllowedTLD`).
const DISALLOWED_TLDS: [&str; 8] = [
    "local",
    "arpa",
    "invalid",
    "localhost",
    "internal",
    "example",
    "onion",
    "alt",
];

/// Settings for an [`HttpResolver`].
#[derive(Clone, Debug)]
pub struct HttpResolverConfig {
    /// Base URL of the PLC directory; `GET {plc_url}/{did}` returns the document. A trailing
    /// `/` is ignored. Default [`DEFAULT_PLC_URL`].
    pub plc_url: String,
    /// Deadline for one resolution, connecting through reading the body. Default
    /// [`DEFAULT_RESOLVE_TIMEOUT`].
    pub timeout: Duration,
    /// Bodies larger than this are rejected ([`ResolveErrorKind::BadDocument`]) without being
    /// read further. Default [`DEFAULT_MAX_DOCUMENT_BYTES`].
    pub max_document_bytes: usize,
    /// Resolve `did:web:localhost…` and `did:web:127.0.0.1…` over plain `http://` (tests and
    /// local development). Off by default: anyone can name any DID in a token, and a loopback
    /// did:web would make this process send requests to services on its own host.
    pub allow_loopback_did_web: bool,
    /// The `User-Agent` header sent.
    pub user_agent: String,
}

impl Default for HttpResolverConfig {
    fn default() -> Self {
        HttpResolverConfig {
            plc_url: DEFAULT_PLC_URL.to_owned(),
            timeout: DEFAULT_RESOLVE_TIMEOUT,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            allow_loopback_did_web: false,
            user_agent: concat!("skystream/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// An [`HttpResolver`] could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid HTTP resolver configuration: {0}")]
pub struct HttpResolverConfigError(String);

/// Resolves `did:plc` through a PLC directory and `did:web` through
/// `https://{host}/.well-known/did.json`, as the atproto DID spec says.
///
/// Redirects are not followed (as in the reference TypeScript resolver), each resolution has a
/// deadline and a body-size bound, and the returned document's `id` must be the DID asked for.
/// `404` (and PLC's `410` for a tombstoned DID) is [`ResolveErrorKind::NotFound`]. Only
/// hostname-level did:web is supported (atproto does not allow paths). It caches nothing: wrap
/// it in a [`CachingResolver`](crate::CachingResolver).
#[derive(Clone, Debug)]
pub struct HttpResolver {
    client: reqwest::Client,
    config: Arc<HttpResolverConfig>,
    plc_base: String,
}

impl HttpResolver {
    /// A resolver with the default configuration (plc.directory, 5 s, 64 KiB).
    pub fn new() -> Result<Self, HttpResolverConfigError> {
        Self::with_config(HttpResolverConfig::default())
    }

    /// A resolver with the given configuration. Fails if `plc_url` is not an `http://` or
    /// `https://` URL, or the HTTP client cannot be built.
    pub fn with_config(config: HttpResolverConfig) -> Result<Self, HttpResolverConfigError> {
        let plc_base = config.plc_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&plc_base)
            .map_err(|e| HttpResolverConfigError(format!("plc_url {plc_base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(HttpResolverConfigError(format!(
                "plc_url {plc_base:?} is not an http(s) URL"
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/did+ld+json, application/json"),
        );
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .build()
            .map_err(|e| HttpResolverConfigError(format!("building the HTTP client: {e}")))?;
        Ok(HttpResolver {
            client,
            config: Arc::new(config),
            plc_base,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &HttpResolverConfig {
        &self.config
    }

    /// The URL the document for `did` is fetched from, or why there is none: a malformed DID
    /// ([`ResolveErrorKind::InvalidDid`]), or a method or did:web form this resolver does not
    /// handle ([`ResolveErrorKind::Unsupported`]).
    pub fn document_url(&self, did: &str) -> Result<String, ResolveError> {
        let invalid = |detail: &str| ResolveError::new(ResolveErrorKind::InvalidDid, did, detail);
        let unsupported =
            |detail: &str| ResolveError::new(ResolveErrorKind::Unsupported, did, detail);
        if !skystream_syntax::is_valid_did(did) {
            return Err(invalid("not a valid DID"));
        }
        if let Some(id) = did.strip_prefix("did:plc:") {
            if id.len() != 24 || !id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
                return Err(invalid("a did:plc identifier is 24 base32 characters"));
            }
            return Ok(format!("{}/{did}", self.plc_base));
        }
        let Some(id) = did.strip_prefix("did:web:") else {
            return Err(unsupported("only did:plc and did:web are supported"));
        };
        if id.contains(':') {
            return Err(unsupported("atproto does not support did:web with a path"));
        }
        // The only percent-encoding a hostname-level did:web has is the port separator.
        let decoded = id.replace("%3A", ":").replace("%3a", ":");
        if decoded.contains('%') {
            return Err(invalid("unexpected percent-encoding in a did:web"));
        }
        let (host, port) = match decoded.split_once(':') {
            Some((host, port)) => {
                let ok = !port.is_empty()
                    && port.len() <= 5
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && port.parse::<u16>().is_ok_and(|p| p != 0);
                if !ok {
                    return Err(invalid("bad port in did:web"));
                }
                (host, Some(port))
            }
            None => (decoded.as_str(), None),
        };
        let authority = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let lower = host.to_ascii_lowercase();
        if lower == "localhost" || lower == "127.0.0.1" {
            if !self.config.allow_loopback_did_web {
                return Err(unsupported("did:web on a loopback host is not allowed"));
            }
            return Ok(format!("http://{authority}/.well-known/did.json"));
        }
        if !skystream_syntax::is_valid_handle(host) {
            return Err(invalid("a did:web host must be a DNS hostname"));
        }
        let tld = lower.rsplit('.').next().unwrap_or_default();
        if DISALLOWED_TLDS.contains(&tld) {
            return Err(unsupported(
                "did:web host has a non-public top-level domain",
            ));
        }
        Ok(format!("https://{authority}/.well-known/did.json"))
    }

    async fn fetch(&self, did: &str, url: &str) -> Result<Vec<u8>, ResolveError> {
        let network = |detail: String| ResolveError::new(ResolveErrorKind::Network, did, detail);
        let max = self.config.max_document_bytes;
        let too_large = || {
            ResolveError::new(
                ResolveErrorKind::BadDocument,
                did,
                format!("document is larger than {max} bytes"),
            )
        };
        let work = async {
            let mut response = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| network(describe(&e, url)))?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Err(ResolveError::new(
                    ResolveErrorKind::NotFound,
                    did,
                    format!("GET {url}: HTTP {status}"),
                ));
            }
            if status.is_redirection() {
                return Err(network(format!(
                    "GET {url}: HTTP {status}: redirects are not followed"
                )));
            }
            if status != StatusCode::OK {
                return Err(network(format!("GET {url}: HTTP {status}")));
            }
            if response
                .content_length()
                .is_some_and(|len| len > max as u64)
            {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| network(describe(&e, url)))?
            {
                if body.len() + chunk.len() > max {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // reqwest's own timeout covers the same span; this one also bounds a body that trickles.
        tokio::time::timeout(self.config.timeout, work)
            .await
            .map_err(|_| {
                network(format!(
                    "GET {url}: timed out after {:?}",
                    self.config.timeout
                ))
            })?
    }
}

/// A reqwest error with its cause chain (its `Display` alone is often just "error sending
/// request").
fn describe(e: &reqwest::Error, url: &str) -> String {
    use std::error::Error as _;
    let mut out = if e.is_timeout() {
        format!("GET {url}: timed out")
    } else {
        format!("GET {url}: {e}")
    };
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[async_trait]
impl Resolver for HttpResolver {
    async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, ResolveError> {
        let url = self.document_url(did)?;
        let body = self.fetch(did, &url).await?;
        let doc: DidDocument = serde_json::from_slice(&body).map_err(|e| {
            ResolveError::new(
                ResolveErrorKind::BadDocument,
                did,
                format!("not a DID document: {e}"),
            )
        })?;
        if doc.id != did {
            return Err(ResolveError::new(
                ResolveErrorKind::Mismatch,
                did,
                format!("document id is {:?}", doc.id),
            ));
        }
        Ok(Arc::new(doc))
    }

    fn purge(&self, _did: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(allow_loopback: bool) -> HttpResolver {
        HttpResolver::with_config(HttpResolverConfig {
            plc_url: "http://127.0.0.1:2582/".into(),
            allow_loopback_did_web: allow_loopback,
            ..HttpResolverConfig::default()
        })
        .expect("resolver")
    }

    fn kind(r: &HttpResolver, did: &str) -> ResolveErrorKind {
        r.document_url(did).expect_err(did).kind
    }

    #[test]
    fn urls_for_plc_and_web() {
        let r = resolver(false);
        assert_eq!(
            r.document_url("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
                .expect("plc"),
            "http://127.0.0.1:2582/did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        );
        assert_eq!(
            r.document_url("did:web:feed.example.com").expect("web"),
            "https://feed.example.com/.well-known/did.json"
        );
        assert_eq!(
            r.document_url("did:web:feed.example.com%3A8443")
                .expect("port"),
            "https://feed.example.com:8443/.well-known/did.json"
        );
        let default = HttpResolver::new().expect("default");
        assert_eq!(
            default
                .document_url("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
                .expect("plc"),
            "https://plc.directory/did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        );
    }

    #[test]
    fn loopback_did_web_only_when_allowed() {
        assert_eq!(
            kind(&resolver(false), "did:web:localhost%3A1234"),
            ResolveErrorKind::Unsupported
        );
        assert_eq!(
            kind(&resolver(false), "did:web:127.0.0.1"),
            ResolveErrorKind::Unsupported
        );
        let r = resolver(true);
        assert_eq!(
            r.document_url("did:web:localhost%3A1234")
                .expect("localhost"),
            "http://localhost:1234/.well-known/did.json"
        );
        assert_eq!(
            r.document_url("did:web:127.0.0.1%3a80").expect("127"),
            "http://127.0.0.1:80/.well-known/did.json"
        );
    }

    #[test]
    fn rejects_what_it_cannot_resolve() {
        let r = resolver(true);
        use ResolveErrorKind::*;
        for (did, want) in [
            ("not a did", InvalidDid),
            ("did:plc:short", InvalidDid),
            ("did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ", InvalidDid),
            ("did:plc:ewvi7nxzyoun6zhxrhs64oi1", InvalidDid),
            (
                "did:key:zQ3shunBKsXixLxKtC5qeSG9E4J5RkGN57im31pcTzbNQnm5w",
                Unsupported,
            ),
            ("did:web:example.com:user:alice", Unsupported),
            ("did:web:example.com%2Fpath", InvalidDid),
            ("did:web:example.com%3A", InvalidDid),
            ("did:web:example.com%3A99999", InvalidDid),
            ("did:web:example.com%3A0", InvalidDid),
            ("did:web:10.0.0.1", InvalidDid),
            ("did:web:nodots", InvalidDid),
            ("did:web:printer.local", Unsupported),
            ("did:web:foo.localhost", Unsupported),
            ("did:web:db.internal", Unsupported),
        ] {
            assert_eq!(kind(&r, did), want, "{did}");
        }
    }

    #[test]
    fn plc_url_must_be_http() {
        for bad in ["", "plc.directory", "ftp://plc.directory", "file:///etc"] {
            let config = HttpResolverConfig {
                plc_url: bad.into(),
                ..HttpResolverConfig::default()
            };
            assert!(HttpResolver::with_config(config).is_err(), "{bad:?}");
        }
    }
}

//! Where repositories come from ([`RepoHost`]): `listRepos` pages and `getRepo` exports. The
//! HTTP implementation resolves each DID to its PDS (a relay no longer serves whole
//! repositories), spaces its requests per host, honours `429`/`Retry-After`, and bounds how
//! much of an export it will hold; [`MemoryHost`] is the in-memory one for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skystream_identity::Resolver;
use tracing::debug;

/// One page of `listRepos`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoPage {
    /// Active repositories on the page.
    pub dids: Vec<String>,
    /// The cursor of the next page; `None` on the last.
    pub cursor: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host answered with an error status.
    #[error("HTTP {status} from {url}: {message}")]
    Status {
        /// The status.
        status: u16,
        /// The request.
        url: String,
        /// The XRPC error or body, shortened.
        message: String,
    },
    /// The host could not be reached or the transfer broke.
    #[error("{0}")]
    Network(String),
    /// The export was larger than the configured limit.
    #[error("the repository export is larger than {0} bytes")]
    TooLarge(u64),
    /// The answer was not what the lexicon says.
    #[error("{0}")]
    Invalid(String),
}

/// A source of repositories.
#[async_trait]
pub trait RepoHost: Send + Sync {
    /// One page of `com.atproto.sync.listRepos`, from `cursor` (the start when `None`).
    async fn list_repos(&self, cursor: Option<&str>) -> Result<RepoPage, HostError>;

    /// `com.atproto.sync.getRepo`: the repository's export as a CAR.
    async fn get_repo(&self, did: &str) -> Result<Vec<u8>, HostError>;
}

/// Settings of [`HttpHost`].
#[derive(Clone, Debug)]
pub struct HttpHostConfig {
    /// The host `listRepos` is asked (a relay or a PDS), e.g. `https://bsky.network`.
    pub host: String,
    /// Most requests per second to any one host (0: no limit).
    pub requests_per_second: f64,
    /// Largest export accepted.
    pub max_repo_bytes: u64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How many times a `429` is waited out before the request fails.
    pub max_rate_limited: u32,
    /// Page size asked of `listRepos`.
    pub page_size: u32,
}

impl Default for HttpHostConfig {
    fn default() -> Self {
        HttpHostConfig {
            host: "https://bsky.network".into(),
            requests_per_second: 10.0,
            max_repo_bytes: 1 << 30,
            timeout: Duration::from_secs(120),
            max_rate_limited: 10,
            page_size: 1000,
        }
    }
}

/// [`RepoHost`] over HTTP.
pub struct HttpHost {
    cfg: HttpHostConfig,
    http: reqwest::Client,
    resolver: Option<Arc<dyn Resolver>>,
    /// Per host: the earliest time the next request may start.
    next_slot: Mutex<HashMap<String, Instant>>,
}

impl HttpHost {
    /// A host; with a `resolver`, `getRepo` goes to each DID's PDS (falling back to the
    /// configured host when the DID does not resolve).
    pub fn new(
        cfg: HttpHostConfig,
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Result<HttpHost, HostError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .user_agent(concat!(
                "skystream/",
                env!("CARGO_PKG_VERSION"),
                " (backfill)"
            ))
            .build()
            .map_err(|e| HostError::Network(e.to_string()))?;
        Ok(HttpHost {
            cfg,
            http,
            resolver,
            next_slot: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for this host's next request slot.
    async fn pace(&self, base: &str) {
        if self.cfg.requests_per_second <= 0.0 {
            return;
        }
        let gap = Duration::from_secs_f64(1.0 / self.cfg.requests_per_second);
        let wait = {
            let mut slots = self
                .next_slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let slot = slots.entry(base.to_owned()).or_insert(now);
            let start = (*slot).max(now);
            *slot = start + gap;
            start - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    async fn pds_of(&self, did: &str) -> String {
        if let Some(r) = &self.resolver {
            match r.resolve(did).await {
                Ok(doc) => {
                    if let Some(pds) = doc.pds_endpoint() {
                        return pds.trim_end_matches('/').to_owned();
                    }
                }
                Err(e) => debug!(did, error = %e, "no PDS resolved; asking the host"),
            }
        }
        self.cfg.host.trim_end_matches('/').to_owned()
    }

    /// GETs `url` on `base`, waiting out 429s, and returns the response once it is a success.
    async fn get(&self, base: &str, url: &str) -> Result<reqwest::Response, HostError> {
        let mut limited = 0;
        loop {
            self.pace(base).await;
            let resp = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| HostError::Network(format!("{url}: {e}")))?;
            let status = resp.status();
            if status.as_u16() == 429 && limited < self.cfg.max_rate_limited {
                limited += 1;
                let wait = retry_after(resp.headers()).unwrap_or(Duration::from_secs(5));
                metrics::counter!("skystream_backfill_rate_limited_total").increment(1);
                debug!(url, ?wait, "rate limited; waiting as asked");
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                let body = resp.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        let e = v["error"].as_str()?;
                        Some(format!("{e}: {}", v["message"].as_str().unwrap_or("")))
                    })
                    .unwrap_or_else(|| body.chars().take(200).collect());
                return Err(HostError::Status {
                    status: status.as_u16(),
                    url: url.to_owned(),
                    message,
                });
            }
            return Ok(resp);
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare on XRPC hosts and taken as absent),
/// capped so a hostile host cannot park us for days.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = h.get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(300)))
}

#[async_trait]
impl RepoHost for HttpHost {
    async fn list_repos(&self, cursor: Option<&str>) -> Result<RepoPage, HostError> {
        let base = self.cfg.host.trim_end_matches('/').to_owned();
        let mut url = reqwest::Url::parse(&format!("{base}/xrpc/com.atproto.sync.listRepos"))
            .map_err(|e| HostError::Invalid(format!("bad host {base}: {e}")))?;
        url.query_pairs_mut()
            .append_pair("limit", &self.cfg.page_size.to_string());
        if let Some(c) = cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        let resp = self.get(&base, url.as_str()).await?;
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| HostError::Invalid(format!("listRepos: {e}")))?;
        let repos = v["repos"]
            .as_array()
            .ok_or_else(|| HostError::Invalid("listRepos: no repos array".into()))?;
        let dids = repos
            .iter()
            // Inactive repositories have nothing to serve.
            .filter(|r| r["active"].as_bool() != Some(false))
            .filter_map(|r| r["did"].as_str())
            .filter(|d| skystream_syntax::is_valid_did(d))
            .map(str::to_owned)
            .collect();
        let cursor = v["cursor"].as_str().map(str::to_owned);
        Ok(RepoPage { dids, cursor })
    }

    async fn get_repo(&self, did: &str) -> Result<Vec<u8>, HostError> {
        let base = self.pds_of(did).await;
        let mut url = reqwest::Url::parse(&format!("{base}/xrpc/com.atproto.sync.getRepo"))
            .map_err(|e| HostError::Invalid(format!("bad PDS {base}: {e}")))?;
        url.query_pairs_mut().append_pair("did", did);
        let mut resp = self.get(&base, url.as_str()).await?;
        let max = self.cfg.max_repo_bytes;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(HostError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| HostError::Network(format!("{url}: {e}")))?
        {
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(HostError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        metrics::counter!("skystream_backfill_bytes_total").increment(body.len() as u64);
        Ok(body)
    }
}

/// [`RepoHost`] in memory: repositories by DID, listed in pages, with failures to inject.
#[derive(Clone, Default)]
pub struct MemoryHost {
    repos: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    failures: Arc<Mutex<HashMap<String, u32>>>,
    page_size: usize,
}

impl MemoryHost {
    /// An empty host listing `page_size` repositories per page.
    pub fn new(page_size: usize) -> MemoryHost {
        MemoryHost {
            page_size: page_size.max(1),
            ..MemoryHost::default()
        }
    }

    /// Adds (or replaces) a repository's export.
    pub fn insert(&self, did: &str, car: Vec<u8>) {
        self.repos
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(did.to_owned(), car);
    }

    /// Makes the next `n` `getRepo`s of `did` fail with a 502.
    pub fn fail(&self, did: &str, n: u32) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(did.to_owned(), n);
    }
}

#[async_trait]
impl RepoHost for MemoryHost {
    async fn list_repos(&self, cursor: Option<&str>) -> Result<RepoPage, HostError> {
        let repos = self.repos.lock().unwrap_or_else(PoisonError::into_inner);
        let dids: Vec<String> = repos
            .keys()
            .filter(|d| cursor.is_none_or(|c| d.as_str() > c))
            .take(self.page_size)
            .cloned()
            .collect();
        let more = dids
            .last()
            .is_some_and(|last| repos.keys().any(|d| d > last));
        let cursor = if more { dids.last().cloned() } else { None };
        Ok(RepoPage { dids, cursor })
    }

    async fn get_repo(&self, did: &str) -> Result<Vec<u8>, HostError> {
        {
            let mut f = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = f.get_mut(did).filter(|n| **n > 0) {
                *n -= 1;
                return Err(HostError::Status {
                    status: 502,
                    url: format!("memory://{did}"),
                    message: "injected failure".into(),
                });
            }
        }
        self.repos
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(did)
            .cloned()
            .ok_or_else(|| HostError::Status {
                status: 400,
                url: format!("memory://{did}"),
                message: "RepoNotFound".into(),
            })
    }
}

use std::sync::{Arc, RwLock};

use skystream_auth::ServiceAuth;
use skystream_store::FeedStore;

/// Who this service is.
#[derive(Clone, Debug)]
pub struct ServiceIdentity {
    /// The public hostname (for did:web and the service endpoint).
    pub hostname: String,
    /// The service DID: the feed records' `did`, the DID document's subject, the JWT `aud`.
    pub service_did: String,
    /// The DID whose repository holds the feed records (feed URIs' authority).
    pub publisher_did: String,
}

impl ServiceIdentity {
    /// `at://{publisher}/app.bsky.feed.generator/{id}`.
    pub fn feed_uri(&self, id: &str) -> String {
        format!("at://{}/app.bsky.feed.generator/{id}", self.publisher_did)
    }
}

/// Whether a feed asks requesters to authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens are not checked.
    #[default]
    Off,
    /// A missing token is fine; a bad one is a 401.
    Optional,
    /// A valid token is required.
    Required,
}

/// How a feed orders its items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RankingKind {
    /// By the store's insertion sequence, newest first.
    #[default]
    Chronological,
    /// By score, paginated over a snapshot taken at page one.
    Engagement,
}

/// What the HTTP layer needs to know about one feed.
#[derive(Clone, Debug)]
pub struct FeedInfo {
    /// The feed id (the record key).
    pub id: String,
    /// Ordering.
    pub ranking: RankingKind,
    /// Requester auth.
    pub auth: AuthMode,
}

/// The feeds being served; replaced whole on a config reload.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// The feeds, in config order.
    pub feeds: Vec<FeedInfo>,
}

impl Catalog {
    /// The feed with this id.
    pub fn get(&self, id: &str) -> Option<&FeedInfo> {
        self.feeds.iter().find(|f| f.id == id)
    }
}

/// What `/health` reports.
#[derive(Clone, Debug, Default)]
pub struct HealthStatus {
    /// Whether ingest is connected (true when this server does no ingest).
    pub connected: bool,
    /// Seconds behind event time, if known.
    pub lag_seconds: Option<f64>,
}

/// Everything the routes share.
#[derive(Clone)]
pub struct AppState {
    /// Who we are.
    pub identity: ServiceIdentity,
    /// The feeds (swapped on reload).
    pub catalog: Arc<RwLock<Arc<Catalog>>>,
    /// The feed store.
    pub store: Arc<dyn FeedStore>,
    /// Requester auth; `None` turns every feed's auth off (and sendInteractions away).
    pub auth: Option<Arc<ServiceAuth>>,
    /// Reports ingest health.
    pub health: Arc<dyn Fn() -> HealthStatus + Send + Sync>,
    /// `/health` fails when lag passes this many seconds.
    pub max_lag_seconds: f64,
    /// Renders Prometheus metrics for `/metrics`, when an exporter is installed.
    pub metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
}

impl AppState {
    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

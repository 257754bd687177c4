//! `skystream serve` (ingest + indexer + HTTP) and `skystream ingest` (no HTTP).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use skystream_auth::ServiceAuth;
use skystream_feeds::Config;
use skystream_identity::{CachingResolver, HttpResolver, HttpResolverConfig};
use skystream_indexer::{FeedSet, Indexer, RecentWindow, SharedFeeds};
use skystream_pipeline::Consumer;
use skystream_server::{
    AppState, AuthMode, Catalog, FeedInfo, HealthStatus, RankingKind, ServiceIdentity,
};
use skystream_source::SourceSpec;
use skystream_store::{FeedStore, FirstPageCache, FIRST_PAGE_TTL};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::ServeArgs;
use crate::ingest::{self, now_ms};
use crate::progress::{IngestStatus, Observed};

/// The example feeds, used when no config file is given or found.
pub(crate) const EXAMPLE_CONFIG: &str = include_str!("../../../../skystream.example.toml");
/// Jetstream's public hosts: the default source, failing over between them.
pub(crate) const PUBLIC_JETSTREAM: &str = "jetstream:wss://jetstream1.us-east.bsky.network,wss://jetstream2.us-east.bsky.network,wss://jetstream1.us-west.bsky.network,wss://jetstream2.us-west.bsky.network";

/// Where the config comes from.
pub(crate) enum ConfigSource {
    File(PathBuf),
    Example,
}

/// The feed config: `config`, else ./skystream.toml if present, else the built-in example.
pub(crate) fn load_config(config: Option<&Path>) -> anyhow::Result<(Config, ConfigSource)> {
    let path = match config {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("skystream.toml")).filter(|p| p.exists()),
    };
    match path {
        Some(p) => {
            let c = Config::load(&p).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((c, ConfigSource::File(p)))
        }
        None => {
            let c = Config::from_toml_str(EXAMPLE_CONFIG, "skystream.example.toml")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            info!("no skystream.toml: serving the built-in example feeds (copy skystream.example.toml to skystream.toml to change them)");
            Ok((c, ConfigSource::Example))
        }
    }
}

fn catalog(config: &Config) -> Catalog {
    Catalog {
        feeds: config
            .feeds
            .iter()
            .map(|f| FeedInfo {
                id: f.id().to_owned(),
                ranking: match f.ranking() {
                    skystream_feeds::Ranking::Chronological => RankingKind::Chronological,
                    skystream_feeds::Ranking::Engagement { .. } => RankingKind::Engagement,
                },
                auth: match f.config().auth {
                    skystream_feeds::Auth::Off => AuthMode::Off,
                    skystream_feeds::Auth::Optional => AuthMode::Optional,
                    skystream_feeds::Auth::Required => AuthMode::Required,
                },
            })
            .collect(),
    }
}

/// Opens the `[jetstream]` replay log (and its dictionary).
async fn open_jetstream(
    j: &skystream_feeds::JetstreamConfig,
) -> anyhow::Result<skystream_jetstream::Server> {
    let dictionary = match &j.dictionary {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("cannot read the zstd dictionary {}", p.display()))?,
        ),
        None => None,
    };
    let cfg = skystream_jetstream::ServerConfig {
        retention: j.retention,
        inform_cursor_floor_secs: j.inform_cursor_floor_secs,
        include_backfill: j.include_backfill,
        ..skystream_jetstream::ServerConfig::default()
    };
    let dir = j.data_dir.clone();
    let server = tokio::task::spawn_blocking(move || {
        skystream_jetstream::Server::open(&dir, cfg, dictionary.as_deref())
    })
    .await?
    .with_context(|| format!("cannot open the replay log in {}", j.data_dir.display()))?;
    info!(data_dir = %j.data_dir.display(), "Jetstream replay log open");
    Ok(server)
}

/// How the console names the source: its kind and where it reads from.
pub(crate) fn source_info(spec: Option<&SourceSpec>) -> skystream_console::SourceInfo {
    let (kind, hosts) = match spec {
        None => ("none", Vec::new()),
        Some(SourceSpec::Relay { url }) => ("relay", vec![url.clone()]),
        Some(SourceSpec::Jetstream { urls }) => ("jetstream", urls.clone()),
        Some(SourceSpec::File { path }) => ("file", vec![path.display().to_string()]),
        Some(SourceSpec::Simulate { rate }) => ("simulate", vec![format!("{rate} events/s")]),
        Some(SourceSpec::Kafka {
            brokers,
            topic,
            group,
            ..
        }) => ("kafka", vec![format!("{brokers}/{topic} (group {group})")]),
    };
    skystream_console::SourceInfo {
        kind: kind.to_owned(),
        hosts,
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Reloads the config on SIGHUP and when the file changes; a bad file is refused and the old
/// feeds keep serving.
fn spawn_reloader(
    path: PathBuf,
    feeds: SharedFeeds,
    catalog_slot: Arc<RwLock<Arc<Catalog>>>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut last = mtime(&path);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hup_fired = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hup_fired = std::future::pending::<()>();
            let forced = tokio::select! {
                _ = stop.cancelled() => return,
                _ = hup_fired => true,
                _ = tokio::time::sleep(Duration::from_secs(2)) => false,
            };
            let now = mtime(&path);
            if !forced && now == last {
                continue;
            }
            last = now;
            match Config::load(&path) {
                Ok(c) => {
                    let version = feeds.read().map(|f| f.version).unwrap_or(0) + 1;
                    let n = c.feeds.len();
                    let new_catalog = Arc::new(catalog(&c));
                    if let Ok(mut slot) = feeds.write() {
                        *slot = Arc::new(FeedSet {
                            version,
                            feeds: c.feeds,
                        });
                    }
                    if let Ok(mut slot) = catalog_slot.write() {
                        *slot = new_catalog;
                    }
                    info!(file = %path.display(), feeds = n, "feeds reloaded");
                }
                Err(e) => {
                    error!(error = %e, "config rejected; the feeds already loaded keep serving")
                }
            }
        }
    });
}

/// Retention: prunes each feed by its max_age and expires old ranking snapshots.
fn spawn_pruner(store: Arc<dyn FeedStore>, feeds: SharedFeeds, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            }
            let set = feeds.read().map(|f| f.clone()).unwrap_or_default();
            for f in &set.feeds {
                let cutoff = now_ms() - f.config().max_age.as_millis() as i64;
                match store.prune(f.id(), cutoff).await {
                    Ok(n) if n > 0 => info!(feed = f.id(), removed = n, "pruned old posts"),
                    Ok(_) => {}
                    Err(e) => warn!(feed = f.id(), error = %e, "pruning failed"),
                }
            }
            if let Err(e) = store.expire_snapshots(now_ms() - 15 * 60 * 1000).await {
                warn!(error = %e, "expiring ranking snapshots failed");
            }
        }
    });
}

pub async fn run(args: &ServeArgs, http: bool) -> anyhow::Result<ExitCode> {
    let (config, origin) = load_config(args.config.as_deref())?;
    let database = if std::env::var_os("SKYSTREAM_DATABASE").is_none()
        && args.ingest.database == "./skystream.db"
    {
        std::env::var("DATABASE_URL")
            .ok()
            .or_else(|| config.ingest.database.clone())
            .unwrap_or_else(|| args.ingest.database.clone())
    } else {
        args.ingest.database.clone()
    };
    let store = ingest::open_store(&database).await?;
    info!(database = store.describe(), "store open");
    // The indexer, the pruner and the HTTP server all go through the first-page cache, so
    // their writes invalidate it at once.
    let feed_store: Arc<dyn FeedStore> =
        Arc::new(FirstPageCache::new(Arc::new(store.clone()), FIRST_PAGE_TTL));

    // The built-in example's hostname is a placeholder: a quick start serves localhost.
    let configured_host = match &origin {
        ConfigSource::File(_) => config.service.hostname.clone(),
        ConfigSource::Example => None,
    };
    let hostname = args
        .hostname
        .clone()
        .or(configured_host)
        .unwrap_or_else(|| "localhost".to_owned());
    let mut service = config.service.clone();
    service.hostname = Some(hostname.clone());
    let service_did = service
        .did()
        .unwrap_or_else(|| format!("did:web:{hostname}"));
    let publisher_did = service
        .publisher_did
        .clone()
        .unwrap_or_else(|| service_did.clone());
    if service.publisher_did.is_none() {
        warn!("no publisher_did: feed URIs use the service DID until `skystream publish` records the publishing account");
    }
    let listen = args.listen.unwrap_or(config.service.listen);

    let feeds: SharedFeeds = Arc::new(RwLock::new(Arc::new(FeedSet {
        version: 0,
        feeds: config.feeds.clone(),
    })));
    let catalog_slot = Arc::new(RwLock::new(Arc::new(catalog(&config))));
    let stop = CancellationToken::new();
    ingest::cancel_on_signals(stop.clone());
    if let ConfigSource::File(path) = &origin {
        spawn_reloader(
            path.clone(),
            feeds.clone(),
            catalog_slot.clone(),
            stop.clone(),
        );
    }
    spawn_pruner(feed_store.clone(), feeds.clone(), stop.clone());

    let status = Arc::new(IngestStatus::default());
    // The indexer's recent posts: re-evaluated on reload, and what the console's draft
    // filters are tried against.
    let window = (!args.no_ingest).then(|| {
        Arc::new(Mutex::new(RecentWindow::new(
            config.ingest.recent_window as usize,
        )))
    });
    let spec_text = args
        .ingest
        .source
        .clone()
        .or_else(|| config.ingest.source.clone())
        .unwrap_or_else(|| PUBLIC_JETSTREAM.to_owned());
    let spec = match &window {
        Some(_) => Some(SourceSpec::parse(&spec_text)?),
        None => None,
    };
    // [jetstream]: the same stream re-served as Jetstream v1 at /subscribe, from a durable
    // replay log fed by this pipeline.
    let jetstream = match (&config.jetstream, &spec) {
        (Some(j), Some(_)) if j.enabled && http => Some(open_jetstream(j).await?),
        _ => None,
    };
    let mut server_task = None;
    if http {
        // With --metrics-listen the exporter serves its own port and /metrics here is off;
        // either way the handle renders the figures the console shows.
        let (prometheus, metrics_here) = match ingest::start_metrics(args.ingest.metrics_listen)? {
            Some(handle) => (handle, false),
            None => (
                metrics_exporter_prometheus::PrometheusBuilder::new()
                    .install_recorder()
                    .context("cannot install the metrics recorder")?,
                true,
            ),
        };
        let render: skystream_console::RenderFn = {
            let h = prometheus.clone();
            Arc::new(move || h.render())
        };
        let resolver = Arc::new(CachingResolver::new(
            HttpResolver::with_config(HttpResolverConfig {
                plc_url: args.ingest.plc_url.clone(),
                ..HttpResolverConfig::default()
            })
            .context("cannot set up DID resolution for requester auth")?,
        ));
        let ingesting = !args.no_ingest;
        let st = status.clone();
        let health: skystream_console::HealthFn = Arc::new(move || {
            if !ingesting {
                return HealthStatus {
                    connected: true,
                    lag_seconds: None,
                };
            }
            st.health()
        });
        let state = AppState {
            identity: ServiceIdentity {
                hostname: hostname.clone(),
                service_did: service_did.clone(),
                publisher_did: publisher_did.clone(),
            },
            catalog: catalog_slot.clone(),
            store: feed_store.clone(),
            auth: Some(Arc::new(ServiceAuth::new(service_did.clone(), resolver))),
            health: health.clone(),
            max_lag_seconds: args.max_lag.as_secs_f64(),
            metrics: metrics_here.then(|| render.clone()),
        };
        // The sampler runs even without the console: it publishes the store's size and the
        // feeds' item counts to /metrics.
        let sampler =
            skystream_console::Sampler::new(render, health, feed_store.clone(), feeds.clone());
        sampler.spawn(stop.clone());
        let mut app = skystream_server::router(state);
        if !args.no_console {
            let mut console = skystream_console::ConsoleState::new(
                source_info(spec.as_ref()),
                feed_store.clone(),
                feeds.clone(),
                window.clone(),
                sampler,
            );
            if jetstream.is_some() {
                console = console.with_section(skystream_console::jetstream_section());
            }
            app = app.merge(skystream_console::router(console));
        }
        if let Some(js) = &jetstream {
            app = app.merge(skystream_jetstream::subscribe_router(js.clone()));
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("cannot listen on {listen}: is the port free? (--listen changes it)")
            })?;
        let addr = listener.local_addr()?;
        info!(%addr, did = %service_did, feeds = config.feeds.len(), "feed generator listening: http://{addr}/xrpc/app.bsky.feed.describeFeedGenerator");
        if !args.no_console {
            info!("web console: http://{addr}/");
        }
        let s = stop.clone();
        if jetstream.is_some() {
            info!("Jetstream: ws://{addr}/subscribe");
        }
        server_task = Some(tokio::spawn(async move {
            // Peer addresses feed the Jetstream per-IP limits.
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await
        }));
    } else {
        ingest::start_metrics(args.ingest.metrics_listen)?;
    }

    if let (Some(window), Some(spec)) = (window, spec) {
        let indexer = Indexer::new(feed_store.clone(), feeds.clone(), window.clone());
        let consumer = Observed {
            inner: indexer,
            status: status.clone(),
        };
        let handoff = skystream_backfill::HandOff::new();
        let days = match args.backfill_days {
            Some(d) => Some(d),
            None => std::env::var("BACKFILL_DAYS")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        };
        let consumer: Box<dyn Consumer> = match days.filter(|d| *d != 0) {
            Some(days) => {
                crate::commands::backfill::spawn_beside_live(
                    crate::commands::backfill::BesideLive {
                        store: store.clone(),
                        feed_store: feed_store.clone(),
                        days,
                        host: args.backfill_host.clone(),
                        plc_url: args.ingest.plc_url.clone(),
                        feeds: feeds.clone(),
                        window,
                        handoff: handoff.clone(),
                        last_event_us: status.clone_last_event(),
                        lease_ttl: args.backfill_lease_ttl,
                    },
                    stop.clone(),
                );
                Box::new(skystream_backfill::Gated::new(
                    consumer,
                    handoff,
                    Some(Arc::new(store.clone())),
                ))
            }
            None => Box::new(consumer),
        };
        // Ask Jetstream only for what the indexer uses.
        let source = if let (SourceSpec::Jetstream { .. }, None) = (&spec, &jetstream) {
            let mut a = args.ingest.clone();
            if a.wanted_collections.is_empty() {
                a.wanted_collections = vec![
                    "app.bsky.feed.post".into(),
                    "app.bsky.feed.like".into(),
                    "app.bsky.feed.repost".into(),
                ];
            }
            ingest::build_source(&spec, &a, false)?
        } else {
            ingest::build_source(&spec, &args.ingest, false)?
        };
        let mut consumers = vec![consumer];
        if let Some(js) = &jetstream {
            consumers.push(Box::new(
                js.consumer(source.cursor_key())
                    .context("cannot feed the Jetstream replay log")?,
            ));
            js.spawn_retention();
        }
        let outcome =
            ingest::run(&store, source, consumers, &args.ingest, None, stop.clone()).await;
        if let Err(e) = &outcome {
            error!(error = %e, "ingest stopped");
        }
        // A finite source (a file) is done; keep serving until asked to stop.
        if http && !stop.is_cancelled() {
            info!("ingest finished; still serving");
            stop.cancelled().await;
        }
        outcome?;
    } else {
        stop.cancelled().await;
    }
    stop.cancel();
    if let Some(t) = server_task {
        match tokio::time::timeout(ingest::SHUTDOWN_GRACE, t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %e, "HTTP server error at shutdown"),
            _ => warn!("HTTP server did not stop in time"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! Wiring shared by every long-running command: the store, the source, the pipeline, metrics,
//! signals and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use skystream_identity::{
    CachingResolver, HttpResolver, HttpResolverConfig, MemoryDirectory, Resolver,
};
#[cfg(feature = "kafka")]
use skystream_kafka::{KafkaSource, KafkaSourceConfig};
use skystream_pipeline::{
    Consumer, ConsumerError, CursorSink, Pipeline, PipelineConfig, PipelineSummary,
};
use skystream_source::{
    FileSource, JetstreamConfig, JetstreamSource, Pace, RelayConfig, RelaySource, SimulateSource,
    Source, SourceContext, SourceEnd, SourceSpec, WatchdogConfig,
};
use skystream_store::{CursorStore, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::{IngestArgs, PaceArg};

/// How long shutdown may take before the process gives up waiting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Saves committed cursors in the store's `cursors` table.
pub struct StoreSink(pub Store);

#[async_trait]
impl CursorSink for StoreSink {
    async fn save(&self, source: &str, cursor: u64) -> Result<(), ConsumerError> {
        Ok(self.0.save_cursor(source, cursor).await?)
    }
}

/// Starts the Prometheus exporter if asked to, returning its handle so the web console can
/// read the very figures the exporter serves.
pub fn start_metrics(
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<Option<metrics_exporter_prometheus::PrometheusHandle>> {
    let Some(addr) = listen else {
        return Ok(None);
    };
    let (recorder, exporter) = metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .build()
        .with_context(|| format!("cannot serve metrics on {addr}: is the port free?"))?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("cannot install the metrics recorder")?;
    tokio::spawn(async move {
        if let Err(e) = exporter.await {
            warn!(error = ?e, "the metrics listener stopped");
        }
    });
    info!(%addr, "serving Prometheus metrics at /metrics");
    Ok(Some(handle))
}

/// Opens the store, with an error that says what to check.
pub async fn open_store(url: &str) -> anyhow::Result<Store> {
    Store::open(url)
        .await
        .with_context(|| format!("cannot open the database {url}"))
}

/// Builds the source named by `spec`.
pub fn build_source(
    spec: &SourceSpec,
    args: &IngestArgs,
    keep_raw: bool,
) -> anyhow::Result<Box<dyn Source>> {
    let watchdog = WatchdogConfig {
        idle_timeout: (!args.idle_timeout.is_zero()).then_some(args.idle_timeout),
        pong_timeout: args.pong_timeout,
        ..WatchdogConfig::default()
    };
    Ok(match spec {
        SourceSpec::Relay { url } => {
            let mut c = RelayConfig::new(url.clone());
            c.watchdog = watchdog;
            c.backoff_max = args.backoff_max;
            c.keep_raw = keep_raw;
            c.strict = args.strict_sync;
            if args.verify {
                c.verify = Some(resolver(args)?);
            }
            Box::new(RelaySource::new(c))
        }
        SourceSpec::Jetstream { urls } => {
            let mut c = JetstreamConfig::new(urls.clone());
            c.watchdog = watchdog;
            c.backoff_max = args.backoff_max;
            c.keep_raw = keep_raw;
            c.wanted_collections = args.wanted_collections.clone();
            c.wanted_dids = args.wanted_dids.clone();
            if let Some(path) = &args.jetstream_dictionary {
                c.dictionary = Some(std::fs::read(path).with_context(|| {
                    format!("cannot read the zstd dictionary {}", path.display())
                })?);
            }
            Box::new(JetstreamSource::new(c))
        }
        SourceSpec::File { path } => {
            if !path.exists() {
                anyhow::bail!("the capture file {} does not exist", path.display());
            }
            let pace = match args.pace {
                PaceArg::Fast => Pace::Fast,
                PaceArg::Realtime => Pace::Realtime,
            };
            Box::new(FileSource::new(path.clone(), pace, keep_raw))
        }
        SourceSpec::Simulate { rate } => Box::new(SimulateSource::new(*rate, keep_raw)),
        #[cfg(feature = "kafka")]
        SourceSpec::Kafka {
            brokers,
            topic,
            group,
            options,
        } => Box::new(KafkaSource::new(KafkaSourceConfig {
            brokers: brokers.clone(),
            topic: topic.clone(),
            group: group.clone(),
            client: options.clone(),
            backoff_max: args.backoff_max,
        })),
        #[cfg(not(feature = "kafka"))]
        SourceSpec::Kafka { .. } => anyhow::bail!(
            "this skystream was built without Kafka support; rebuild it with the kafka feature \
             (the default: cargo install --path crates/cli)"
        ),
    })
}

/// The DID resolver for `--verify`: a fixed file, or PLC and did:web over HTTPS with a cache.
fn resolver(args: &IngestArgs) -> anyhow::Result<Arc<dyn Resolver>> {
    if let Some(path) = &args.did_docs {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read DID documents from {}", path.display()))?;
        let dir = MemoryDirectory::from_json_map(&text).with_context(|| {
            format!(
                "{} is not a JSON object mapping DIDs to documents",
                path.display()
            )
        })?;
        return Ok(Arc::new(dir));
    }
    plc_resolver(&args.plc_url)
}

/// PLC (at `plc_url`) and did:web over HTTPS, with a cache.
pub fn plc_resolver(plc_url: &str) -> anyhow::Result<Arc<dyn Resolver>> {
    let http = HttpResolver::with_config(HttpResolverConfig {
        plc_url: plc_url.to_owned(),
        ..HttpResolverConfig::default()
    })
    .context("cannot set up DID resolution")?;
    Ok(Arc::new(CachingResolver::new(http)))
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        info!("shutdown requested: draining and saving the cursor");
        token.cancel();
    });
}

/// What a run of a source through the pipeline ended with.
pub struct RunOutcome {
    pub end: SourceEnd,
    pub summary: PipelineSummary,
}

/// Runs `source` into `consumers` until it ends or `stop` is cancelled, then drains and
/// saves the cursor. `max_events` stops the source after that many events.
pub async fn run(
    store: &Store,
    source: Box<dyn Source>,
    consumers: Vec<Box<dyn Consumer>>,
    args: &IngestArgs,
    max_events: Option<u64>,
    stop: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let key = source.cursor_key();
    let start = store
        .load_cursor(&key)
        .await
        .with_context(|| format!("cannot read the saved cursor for {key}"))?;
    let sink = Arc::new(StoreSink(store.clone()));
    run_from(source, key, start, sink, consumers, args, max_events, stop).await
}

/// [`run`] with the cursor's key, start and sink chosen by the caller (the `kafka` command
/// keeps its cursor under its own key, or in a file).
#[allow(clippy::too_many_arguments)]
pub async fn run_from(
    mut source: Box<dyn Source>,
    key: String,
    start: Option<u64>,
    sink: Arc<dyn CursorSink>,
    consumers: Vec<Box<dyn Consumer>>,
    args: &IngestArgs,
    max_events: Option<u64>,
    stop: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    match start {
        Some(c) => info!(source = %key, cursor = c, "resuming from the saved cursor"),
        None => {
            info!(source = %key, "no saved cursor: starting from the live tail (or the start of a file)")
        }
    }
    let cfg = PipelineConfig {
        save_interval: args.cursor_save_interval,
        ..PipelineConfig::default()
    };
    let (input, handle) = Pipeline::start(cfg, key.clone(), start, consumers, sink);
    let input = match max_events {
        Some(n) => input.limited(n),
        None => input,
    };
    let ctx = SourceContext {
        out: input,
        committed: handle.committed(),
        shutdown: stop.clone(),
    };
    let end = source.run(start, ctx).await;
    // The end of a file drains without a deadline; only a signal bounds the drain.
    let summary = handle.drain(&stop, SHUTDOWN_GRACE).await.map_err(|e| {
        warn!("{e}");
        anyhow::Error::from(e)
    })?;
    info!(source = %key, events = summary.events, cursor = ?summary.cursor, end = ?end, "stopped");
    Ok(RunOutcome { end, summary })
}

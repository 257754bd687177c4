//! `skystream jetstream`: a source into the Jetstream replay log, served at `/subscribe`, with
//! the web console's status page and Jetstream figures at `/`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::get;
use skystream_jetstream::{IpLimits, Server, ServerConfig};
use skystream_source::SourceSpec;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::JetstreamArgs;
use crate::commands::serve::source_info;
use crate::ingest;
use crate::progress::{IngestStatus, Observed};

/// The default source: the main relay's firehose (a relay gives the server whole commits to
/// sequence; another Jetstream works too, with `jetstream:wss://HOST`).
const DEFAULT_SOURCE: &str = "relay:wss://bsky.network";

pub async fn run(args: &JetstreamArgs) -> anyhow::Result<ExitCode> {
    let dictionary = match &args.dictionary {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("cannot read the zstd dictionary {}", p.display()))?,
        ),
        None => {
            info!("no --dictionary: compressed subscriptions (compress=true) will be refused with HTTP 400");
            None
        }
    };
    let cfg = ServerConfig {
        retention: args.retention,
        inform_cursor_floor_secs: args.inform_cursor_floor_secs,
        ip_limits: IpLimits {
            connections: args.max_connections_per_ip,
            events_per_sec: args.max_events_per_ip,
        },
        max_lag: args.max_subscriber_lag,
        include_backfill: args.include_backfill,
        tail_bytes: args.tail_memory_mb.saturating_mul(1 << 20),
        real_ip_header: args.real_ip_header.clone(),
        ..ServerConfig::default()
    };
    let data_dir = args.data_dir.clone();
    let server =
        tokio::task::spawn_blocking(move || Server::open(&data_dir, cfg, dictionary.as_deref()))
            .await?
            .with_context(|| {
                format!("cannot open the replay log in {}", args.data_dir.display())
            })?;
    info!(
        data_dir = %args.data_dir.display(),
        oldest_time_us = server.hub().oldest(),
        newest_time_us = server.hub().head(),
        "replay log open"
    );

    // The upstream cursor lives with the log unless --database says otherwise.
    let database = if std::env::var_os("SKYSTREAM_DATABASE").is_none()
        && args.ingest.database == "./skystream.db"
    {
        args.data_dir.join("cursor.db").display().to_string()
    } else {
        args.ingest.database.clone()
    };
    let store = ingest::open_store(&database).await?;

    let spec_text = args
        .ingest
        .source
        .clone()
        .unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    let spec = SourceSpec::parse(&spec_text)?;
    let stop = CancellationToken::new();
    ingest::cancel_on_signals(stop.clone());
    let status = Arc::new(IngestStatus::default());

    // With --metrics-listen the exporter serves its own port and /metrics here is off; either
    // way the handle renders the figures the console shows.
    let (prometheus, metrics_here) = match ingest::start_metrics(args.ingest.metrics_listen)? {
        Some(handle) => (handle, false),
        None => (
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .context("cannot install the metrics recorder")?,
            true,
        ),
    };
    let mut app = skystream_jetstream::router(server.clone());
    if metrics_here {
        let handle = prometheus.clone();
        app = app.route("/metrics", get(move || std::future::ready(handle.render())));
    }
    if !args.no_console {
        let render: skystream_console::RenderFn = Arc::new(move || prometheus.render());
        let st = status.clone();
        let health: skystream_console::HealthFn = Arc::new(move || st.health());
        // No feed store here: the sampler only keeps the history the charts draw.
        let sampler = skystream_console::Sampler::without_feeds(render, health);
        sampler.spawn(stop.clone());
        let console =
            skystream_console::ConsoleState::without_feeds(source_info(Some(&spec)), sampler)
                .with_section(skystream_console::jetstream_section());
        app = app.merge(skystream_console::router(console));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is the port free? (--listen changes it)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    info!(%addr, "Jetstream server listening: ws://{addr}/subscribe");
    if !args.no_console {
        info!("web console: http://{addr}/");
    }

    let retention = server.spawn_retention();
    let s = stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { s.cancelled().await })
        .await
    });

    let source = ingest::build_source(&spec, &args.ingest, false)?;
    let consumer = {
        let server = server.clone();
        let key = source.cursor_key();
        tokio::task::spawn_blocking(move || server.consumer(key))
            .await?
            .context("cannot read the replay log")?
    };
    // Recording progress gives the console its connected and lag figures.
    let consumer = Observed {
        inner: consumer,
        status,
    };
    let outcome = ingest::run(
        &store,
        source,
        vec![Box::new(consumer)],
        &args.ingest,
        None,
        stop.clone(),
    )
    .await;
    if let Err(e) = &outcome {
        error!(error = %e, "ingest stopped");
    }
    // A finite source (a file) is done; keep serving the log until asked to stop.
    if !stop.is_cancelled() {
        info!("ingest finished; still serving the replay log");
        stop.cancelled().await;
    }
    server.shutdown();
    let _ = retention.await;
    match tokio::time::timeout(ingest::SHUTDOWN_GRACE, http).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!(error = %e, "HTTP server error at shutdown"),
        _ => warn!("HTTP server did not stop in time"),
    }
    outcome?;
    Ok(ExitCode::SUCCESS)
}

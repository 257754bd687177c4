//! `skystream jetstream`: a source into the Jetstream replay log, served at `/subscribe`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use axum::routing::get;
use skystream_jetstream::{IpLimits, Server, ServerConfig};
use skystream_source::SourceSpec;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::JetstreamArgs;
use crate::ingest;

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

    let prometheus = match args.ingest.metrics_listen {
        Some(_) => {
            ingest::start_metrics(args.ingest.metrics_listen)?;
            None
        }
        None => Some(
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .context("cannot install the metrics recorder")?,
        ),
    };
    let mut app = skystream_jetstream::router(server.clone());
    if let Some(handle) = prometheus {
        app = app.route("/metrics", get(move || std::future::ready(handle.render())));
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

    let stop = CancellationToken::new();
    ingest::cancel_on_signals(stop.clone());
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

    let spec_text = args
        .ingest
        .source
        .clone()
        .unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    let spec = SourceSpec::parse(&spec_text)?;
    let source = ingest::build_source(&spec, &args.ingest, false)?;
    let consumer = {
        let server = server.clone();
        let key = source.cursor_key();
        tokio::task::spawn_blocking(move || server.consumer(key))
            .await?
            .context("cannot read the replay log")?
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

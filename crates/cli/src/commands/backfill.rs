//! `skystream backfill` and `backfill status`: history from repositories, through the same
//! pipeline and indexer as live events, resumable from the state kept in the database.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use skystream_backfill::{
    lease_holder, Backfill, BackfillConfig, HttpHost, HttpHostConfig, JsonlOut, Lease, RepoSource,
    Window, BACKFILL_LEASE,
};
use skystream_indexer::{FeedSet, Indexer, RecentWindow, SharedFeeds};
use skystream_pipeline::{Consumer, MemoryCursorSink, Pipeline, PipelineConfig};
use skystream_store::{BackfillStore, FeedStore, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::{BackfillAction, BackfillArgs};
use crate::commands::serve::load_config;
use crate::ingest::{self, now_ms};

/// A knob from its flag, else the backfill service's environment name, else its default.
fn knob<T: FromStr>(flag: Option<T>, seed_env: &str, default: T) -> anyhow::Result<T> {
    if let Some(v) = flag {
        return Ok(v);
    }
    match std::env::var(seed_env) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{seed_env}={s:?} is not a valid value")),
        Err(_) => Ok(default),
    }
}

fn database(args: &BackfillArgs) -> String {
    if std::env::var_os("SKYSTREAM_DATABASE").is_none() && args.database == "./skystream.db" {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return url;
        }
    }
    args.database.clone()
}

/// The host listRepos asks: the flag, else the seed's RELAY_URL, else bsky.network; a relay's
/// WebSocket address is taken as its HTTP one.
fn repo_host_url(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("RELAY_URL").ok())
        .unwrap_or_else(|| "https://bsky.network".to_owned())
        .replace("wss://", "https://")
        .replace("ws://", "http://")
}

pub async fn run(args: &BackfillArgs) -> anyhow::Result<ExitCode> {
    let store = ingest::open_store(&database(args)).await?;
    match &args.action {
        Some(BackfillAction::Status) => return status(&store).await,
        Some(BackfillAction::Retry { dids }) => return retry(&store, dids).await,
        None => {}
    }
    let days: i64 = match args.days {
        Some(d) => d,
        None => knob(None, "BACKFILL_DAYS", i64::MIN)?,
    };
    if days == i64::MIN {
        anyhow::bail!("say how far back: --days N (the last N days), --days -1 (all history); BACKFILL_DAYS works too");
    }
    let now_us = now_ms().saturating_mul(1000);
    let Some(window) = Window::from_days(days, now_us) else {
        println!("backfill is off (--days {days}); nothing to do");
        return Ok(ExitCode::SUCCESS);
    };
    let cfg = BackfillConfig {
        window,
        collections: args.collections.clone(),
        batch_size: knob(args.batch_size, "BACKFILL_BATCH_SIZE", 5)?,
        batch_delay: Duration::from_millis(knob(
            args.batch_delay_ms,
            "BACKFILL_BATCH_DELAY_MS",
            2000,
        )?),
        max_concurrent: knob(args.max_concurrent, "BACKFILL_MAX_CONCURRENT", 2)?,
        max_memory_bytes: knob(args.max_memory_mb, "BACKFILL_MAX_MEMORY_MB", 512)? << 20,
        max_attempts: args.max_attempts.max(1),
        poll: Duration::from_millis(500),
    };
    let host = repo_host_url(args.host.clone());
    let resolver = if args.no_resolve {
        None
    } else {
        Some(ingest::plc_resolver(&args.plc_url)?)
    };
    let repo_host = HttpHost::new(
        HttpHostConfig {
            host: host.clone(),
            requests_per_second: args.requests_per_second,
            max_repo_bytes: args.max_repo_mb << 20,
            ..HttpHostConfig::default()
        },
        resolver,
    )?;

    let mut consumers: Vec<Box<dyn Consumer>> = Vec::new();
    if !args.no_index {
        let (config, _) = load_config(args.config.as_deref())?;
        let feeds: SharedFeeds = Arc::new(RwLock::new(Arc::new(FeedSet {
            version: 0,
            feeds: config.feeds.clone(),
        })));
        let window = Arc::new(Mutex::new(RecentWindow::new(
            config.ingest.recent_window as usize,
        )));
        let feed_store: Arc<dyn FeedStore> = Arc::new(store.clone());
        consumers.push(Box::new(Indexer::new(feed_store, feeds, window)));
    }
    if let Some(path) = &args.out {
        let out = JsonlOut::open(path)
            .with_context(|| format!("cannot open {} for writing", path.display()))?;
        consumers.push(Box::new(out));
    }
    if consumers.is_empty() {
        anyhow::bail!("--no-index without --out would read repositories for nothing");
    }

    let lease = Lease::new(
        Arc::new(store.clone()),
        BACKFILL_LEASE,
        lease_holder(),
        args.lease_ttl,
    );
    if !lease.try_take().await? {
        anyhow::bail!(
            "another process is backfilling this database (it holds the backfill lease, which expires {:?} after that process stops; see --lease-ttl)",
            args.lease_ttl
        );
    }
    let held = lease.hold();
    let stop = CancellationToken::new();
    ingest::cancel_on_signals(stop.clone());
    // Losing the lease stops this run (another process backfills now): it exits non-zero.
    let watch = held.scope(&stop, || {});
    let run_stop = watch.token.clone();
    let progress = spawn_progress(store.clone(), stop.clone());

    let source = if args.repos.is_empty() {
        info!(host = %host, "enumerating repositories with listRepos");
        RepoSource::Host
    } else {
        RepoSource::Dids(args.repos.clone())
    };
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        "backfill",
        None,
        consumers,
        Arc::new(MemoryCursorSink::new()),
    );
    let backfill = Backfill::new(cfg.clone(), Arc::new(store.clone()), Arc::new(repo_host));
    let result = backfill
        .run(&source, input, handle.committed(), run_stop)
        .await;
    handle.finish().await;
    stop.cancel();
    let _ = progress.await;
    let lost = held.is_lost();
    held.release().await;
    drop(watch);
    let report = result?;
    if lost {
        anyhow::bail!("lost the backfill lease to another process (or could not renew it within --lease-ttl); this run stopped, the other backfills now");
    }
    let p = store.backfill_progress().await?;
    println!(
        "backfill {}: {} repositories done, {} failed, {} pending; {} records sent this run ({} outside the window, {} unreadable)",
        if report.stopped { "stopped" } else { "finished" },
        p.done,
        p.failed,
        p.pending + p.in_progress,
        report.records,
        report.outside_window,
        report.bad_records
    );
    if report.stopped {
        println!("run the same command again to resume");
    }
    let left_failed = store
        .failed_repos(usize::MAX)
        .await?
        .into_iter()
        .filter(|r| r.attempts >= cfg.max_attempts)
        .count();
    Ok(if left_failed > 0 {
        println!(
            "{left_failed} repositories failed every attempt: see `skystream backfill status`"
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn retry(store: &Store, dids: &[String]) -> anyhow::Result<ExitCode> {
    let dids: Vec<String> = if dids.is_empty() {
        let mut all = Vec::new();
        // Failed rows leave the failed list as they are requeued, so page until none is left.
        loop {
            let page = store.failed_repos(1000).await?;
            if page.is_empty() {
                break;
            }
            for r in page {
                store.requeue_repo(&r.did).await?;
                all.push(r.did);
            }
        }
        all
    } else {
        for did in dids {
            if !skystream_syntax::is_valid_did(did) {
                anyhow::bail!("{did:?} is not a DID (did:plc:… or did:web:…)");
            }
            store.requeue_repo(did).await?;
        }
        dids.to_vec()
    };
    println!(
        "{} repositories queued again; the next backfill run reads them",
        dids.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn status(store: &Store) -> anyhow::Result<ExitCode> {
    let p = store.backfill_progress().await?;
    println!(
        "repositories: {} total, {} done, {} in progress, {} pending, {} failed",
        p.total(),
        p.done,
        p.in_progress,
        p.pending,
        p.failed
    );
    println!("records kept: {}", p.records);
    match (
        store.backfill_value("list_repos_done").await?,
        store.backfill_value("list_repos_cursor").await?,
    ) {
        (Some(_), _) => println!("listRepos: enumerated"),
        (None, Some(c)) => println!("listRepos: resumes at page cursor {c}"),
        (None, None) => {}
    }
    for r in store.failed_repos(20).await? {
        println!(
            "failed: {} after {} attempts: {}",
            r.did,
            r.attempts,
            r.last_error.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress: a line redrawn in place on a terminal, a log line every 10 s otherwise.
fn spawn_progress(store: Store, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tty = std::io::stderr().is_terminal();
        let every = if tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        let start = Instant::now();
        let first = store
            .backfill_progress()
            .await
            .map(|p| p.records)
            .unwrap_or(0);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            let Ok(p) = store.backfill_progress().await else {
                continue;
            };
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let rate = p.records.saturating_sub(first) as f64 / secs;
            let left = p.pending + p.in_progress;
            let repo_rate = p.done as f64 / secs;
            let eta = if repo_rate > 0.0 {
                format!("{:.0}s", left as f64 / repo_rate)
            } else {
                "?".into()
            };
            if tty {
                eprint!(
                    "\rbackfill: {}/{} repos, {} failed, {} records, {rate:.0} records/s, ETA {eta}   ",
                    p.done,
                    p.total(),
                    p.failed,
                    p.records
                );
            } else {
                info!(
                    done = p.done,
                    total = p.total(),
                    failed = p.failed,
                    records = p.records,
                    records_per_s = rate as u64,
                    eta = %eta,
                    "backfill progress"
                );
            }
        }
        if tty {
            eprintln!();
        }
    })
}

/// What `serve --backfill-days` hands the backfill it runs beside live ingest.
pub struct BesideLive {
    /// The shared store (state, lease).
    pub store: Store,
    /// The feed data as the live indexer writes it (through the server's first-page cache).
    pub feed_store: Arc<dyn FeedStore>,
    /// `--backfill-days`.
    pub days: i64,
    /// `--backfill-host` (else RELAY_URL, else bsky.network).
    pub host: Option<String>,
    /// Where did:plc resolves.
    pub plc_url: String,
    /// The live indexer's feeds and recent window, shared with the backfill's indexer.
    pub feeds: SharedFeeds,
    /// The recent-post window.
    pub window: Arc<Mutex<RecentWindow>>,
    /// Which repositories are being read, so live events for them wait.
    pub handoff: skystream_backfill::HandOff,
    /// The newest live event time (unix µs), to yield while live ingest lags.
    pub last_event_us: Arc<std::sync::atomic::AtomicI64>,
    /// How long the backfill lease lasts without renewal.
    pub lease_ttl: Duration,
}

/// Live ingest counts as lagging (and a backfill with BACKFILL_USE_IDLE yields) when its newest
/// event is older than this.
const LIVE_LAG: Duration = Duration::from_secs(60);

/// Runs a backfill beside live ingest ([`skystream_backfill::BesideLive`]), in its own pipeline
/// into its own indexer over the same store: whichever process holds the lease backfills, the
/// others wait for it; it yields while live ingest lags and hands repositories over through
/// `handoff`. Nothing here stops live ingest.
pub fn spawn_beside_live(b: BesideLive, stop: CancellationToken) {
    tokio::spawn(async move {
        if let Err(e) = beside_live(b, stop).await {
            warn!(error = %e, "backfill stopped");
        }
    });
}

async fn beside_live(b: BesideLive, stop: CancellationToken) -> anyhow::Result<()> {
    let Some(window) = Window::from_days(b.days, now_ms().saturating_mul(1000)) else {
        return Ok(());
    };
    let use_idle = std::env::var("BACKFILL_USE_IDLE")
        .map(|v| !matches!(v.trim(), "0" | "false" | "off" | "no"))
        .unwrap_or(true);
    let (lag_tx, lag_rx) = tokio::sync::watch::channel(false);
    if use_idle {
        let last = b.last_event_us.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let t = last.load(std::sync::atomic::Ordering::Relaxed);
                let lag = now_ms().saturating_mul(1000).saturating_sub(t);
                let _ = lag_tx.send(t > 0 && lag > LIVE_LAG.as_micros() as i64);
            }
        });
    }
    let host = repo_host_url(b.host);
    let resolver = ingest::plc_resolver(&b.plc_url)?;
    let repo_host = HttpHost::new(
        HttpHostConfig {
            host: host.clone(),
            ..HttpHostConfig::default()
        },
        Some(resolver),
    )?;
    let cfg = BackfillConfig {
        window,
        collections: vec![
            "app.bsky.feed.post".into(),
            "app.bsky.feed.like".into(),
            "app.bsky.feed.repost".into(),
        ],
        batch_size: knob(None, "BACKFILL_BATCH_SIZE", 5)?,
        batch_delay: Duration::from_millis(knob(None, "BACKFILL_BATCH_DELAY_MS", 2000)?),
        max_concurrent: knob(None, "BACKFILL_MAX_CONCURRENT", 2)?,
        max_memory_bytes: knob(None, "BACKFILL_MAX_MEMORY_MB", 512u64)? << 20,
        ..BackfillConfig::default()
    };
    let mut bf =
        Backfill::new(cfg, Arc::new(b.store.clone()), Arc::new(repo_host)).hand_off(b.handoff);
    if use_idle {
        bf = bf.yield_to(lag_rx);
    }
    let lease = Lease::new(
        Arc::new(b.store.clone()),
        BACKFILL_LEASE,
        lease_holder(),
        b.lease_ttl,
    );
    let (feed_store, feeds, recent) = (b.feed_store, b.feeds, b.window);
    let consumers: skystream_backfill::ConsumerFactory = Box::new(move || {
        vec![Box::new(Indexer::new(
            feed_store.clone(),
            feeds.clone(),
            recent.clone(),
        )) as Box<dyn Consumer>]
    });
    info!(host = %host, days = b.days, "backfilling beside live ingest (whichever process holds the backfill lease)");
    let report = skystream_backfill::BesideLive::new(bf, RepoSource::Host, lease, consumers)
        .run(&stop)
        .await;
    info!(
        repos = report.done,
        records = report.records,
        failures = report.failures,
        stopped = report.stopped,
        "backfill beside live ingest ended"
    );
    Ok(())
}

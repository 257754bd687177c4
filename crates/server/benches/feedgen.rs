//! Feed generator throughput: posts indexed per second into each store (through the real
//! indexer: features, language matching, store transactions), then getFeedSkeleton requests
//! per second with latency percentiles on SQLite, measured by `wrk` (64 connections, limit 30,
//! chronological feed) while more posts are indexed at 2,000 events/s.
//!
//! `cargo bench -p skystream-server --bench feedgen [-- --posts N] [--stores sqlite,postgres]
//! [--no-http]` (default 1,000,000 posts, both stores; PostgreSQL from
//! `SKYSTREAM_BENCH_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`, in a schema of
//! its own that is dropped afterwards; the HTTP half needs `wrk` on the PATH).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use skystream_event::{Commit, Event, EventKind, Op, OpAction, Origin};
use skystream_feeds::Config;
use skystream_indexer::{FeedSet, Indexer, RecentWindow};
use skystream_pipeline::{Batch, Consumer, Envelope};
use skystream_server::{
    router, AppState, AuthMode, Catalog, FeedInfo, HealthStatus, PageCursor, RankingKind,
    ServiceIdentity,
};
use skystream_store::{FeedStore, FirstPageCache, Store, FIRST_PAGE_TTL};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TEXTS: [(&str, &str); 4] = [
    ("nb", "Jeg er ikke hjemme i dag, men vi ses i morgen"),
    ("nn", "Eg er ikkje heime i dag, men vi sjåast i morgon"),
    ("en", "Just a regular post about the weather today"),
    ("de", "Heute ist das Wetter wirklich schön"),
];

fn post_event(i: u64) -> Envelope {
    let (lang, text) = TEXTS[(i % 4) as usize];
    let record = serde_json::json!({"$type": "app.bsky.feed.post", "text": format!("{text} #{i}"),
        "langs": [lang], "createdAt": "2026-07-04T14:38:06.240Z"});
    let did = format!("did:plc:{:024}", i % 5000);
    Envelope::new(Event {
        cursor: i + 1,
        time_us: 0,
        origin: Origin::Live,
        kind: EventKind::Commit(Commit {
            did,
            rev: "3mptbypluud2a".into(),
            since: None,
            seq: i as i64 + 1,
            time: String::new(),
            ops: vec![Op {
                action: OpAction::Create,
                collection: "app.bsky.feed.post".into(),
                rkey: format!("3k{i:011}"),
                cid: Some(
                    "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"
                        .parse()
                        .expect("cid"),
                ),
                prev: None,
                record: Some(skystream_data::json::record_from_json(&record).expect("record")),
            }],
        }),
    })
}

/// Indexes `posts` post events into `store` in batches of 1,024; returns the indexer (to keep
/// indexing with) and the events/s.
async fn index_into(store: Arc<dyn FeedStore>, posts: u64) -> (Indexer, f64, Duration) {
    let config = Config::from_toml_str(
        "[[feed]]\nid = \"all\"\ndisplay_name = \"Everything\"\n\n[[feed]]\nid = \"norsk\"\ndisplay_name = \"Norsk\"\nlanguages = [\"nb\", \"nn\"]\n",
        "bench.toml",
    )
    .expect("config");
    let feeds = Arc::new(RwLock::new(Arc::new(FeedSet {
        version: 0,
        feeds: config.feeds,
    })));
    let mut indexer = Indexer::new(
        store,
        feeds,
        Arc::new(Mutex::new(RecentWindow::new(100_000))),
    );
    let started = Instant::now();
    let mut next = 0u64;
    while next < posts {
        let n = 1024.min(posts - next);
        let items: Vec<Envelope> = (next..next + n).map(post_event).collect();
        indexer
            .handle(&Batch {
                id: next / 1024 + 1,
                items,
            })
            .await
            .expect("index");
        next += n;
    }
    let took = started.elapsed();
    (indexer, posts as f64 / took.as_secs_f64(), took)
}

/// A fresh PostgreSQL schema for the bench: the store URL and an admin client to drop it with.
async fn postgres_schema() -> Result<(String, tokio_postgres::Client, String), String> {
    let base = std::env::var("SKYSTREAM_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("{base}: {e}"))?;
    tokio::spawn(conn);
    let schema = format!("skystream_bench_{}", std::process::id());
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .map_err(|e| format!("creating schema {schema}: {e}"))?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok((
        format!("{base}{sep}options=-csearch_path%3D{schema}"),
        client,
        schema,
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let posts: u64 = value("--posts").and_then(|v| v.parse().ok()).unwrap_or(
        if args.iter().any(|a| a == "--quick") {
            20_000
        } else {
            1_000_000
        },
    );
    let stores: Vec<String> = value("--stores")
        .map_or("sqlite,postgres", String::as_str)
        .split(',')
        .map(str::to_owned)
        .collect();
    let http = !args.iter().any(|a| a == "--no-http");
    let dir = std::env::temp_dir().join(format!("skystream-feedgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        if stores.iter().any(|s| s == "postgres") {
            match postgres_schema().await {
                Ok((url, admin, schema)) => {
                    let store: Arc<dyn FeedStore> =
                        Arc::new(Store::open(&url).await.expect("postgres store"));
                    let (_, rate, took) = index_into(store, posts).await;
                    println!(
                        "indexed {posts} post events into PostgreSQL: {rate:.0} events/s ({took:.2?}, 2 feeds)"
                    );
                    let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
                }
                Err(e) => println!("PostgreSQL not reachable ({e}): skipping its half"),
            }
        }
        if !stores.iter().any(|s| s == "sqlite") {
            return;
        }
        let store = Store::open(dir.join("bench.db").to_str().expect("path")).await.expect("store");
        // As `serve` runs it: the indexer and the server share the first-page cache.
        let feed_store: Arc<dyn FeedStore> =
            Arc::new(FirstPageCache::new(Arc::new(store.clone()), FIRST_PAGE_TTL));
        let (mut indexer, rate, took) = index_into(feed_store.clone(), posts).await;
        println!(
            "indexed {posts} post events into SQLite: {rate:.0} events/s ({took:.2?}, 2 feeds, batches of 1,024)"
        );
        // Removing an account deletes its posts; SQLite finds them by scanning (there is no
        // author index, which every insert paid for).
        let started = Instant::now();
        feed_store
            .apply(vec![skystream_store::FeedWrite::SetAccountStatus {
                did: format!("did:plc:{:024}", 4999),
                status: skystream_store::AccountStatus::Removed,
            }])
            .await
            .expect("remove an account");
        println!(
            "removing an account with {} of the {posts} posts from SQLite: {:.1} ms",
            posts / 5000,
            started.elapsed().as_secs_f64() * 1000.0
        );
        let mut id = posts;
        if !http {
            return;
        }
        if std::process::Command::new("wrk").arg("--version").output().is_err() {
            println!("wrk is not installed: skipping the HTTP half (apt-get install wrk)");
            return;
        }
        let state = AppState {
            identity: ServiceIdentity {
                hostname: "localhost".into(),
                service_did: "did:web:localhost".into(),
                publisher_did: "did:web:localhost".into(),
            },
            catalog: Arc::new(RwLock::new(Arc::new(Catalog {
                feeds: vec![FeedInfo { id: "all".into(), ranking: RankingKind::Chronological, auth: AuthMode::Off }],
            }))),
            store: feed_store.clone(),
            auth: None,
            health: Arc::new(|| HealthStatus { connected: true, lag_seconds: None }),
            max_lag_seconds: 60.0,
            metrics: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router(state)).await });

        // Keep indexing at 2,000 events/s while the server is loaded.
        let writer = tokio::spawn(async move {
            let mut i = posts;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let items: Vec<Envelope> = (i..i + 100).map(post_event).collect();
                id += 1;
                if indexer.handle(&Batch { id, items }).await.is_err() {
                    return;
                }
                i += 100;
            }
        });
        let base = format!("http://{addr}/xrpc/app.bsky.feed.getFeedSkeleton?feed=at://did:web:localhost/app.bsky.feed.generator/all&limit=30");
        // First pages (what apps ask for on every refresh; served by the first-page cache
        // between indexer batches), then pages deep in the feed (a cursor halfway down:
        // every request runs the page query).
        let halfway = feed_store
            .chronological_page("all", None, posts as usize / 2)
            .await
            .expect("page")
            .last()
            .map(|i| PageCursor::After(i.position()))
            .expect("posts");
        let deep = format!("{base}&cursor={halfway}");
        for (what, url) in [("first pages", base), ("pages halfway down", deep)] {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("wrk")
                    .args(["-t2", "-c64", "-d10s", "--latency", &url])
                    .output()
                    .expect("wrk")
            })
            .await
            .expect("wrk task");
            let text = String::from_utf8_lossy(&out.stdout);
            let pick = |prefix: &str| {
                text.lines()
                    .find(|l| l.trim_start().starts_with(prefix))
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            };
            println!(
                "getFeedSkeleton {what} over {posts}+ posts, limit 30, 64 connections, indexing 2,000 events/s: {} | latency {} | {} | {}",
                pick("Requests/sec"),
                pick("50%"),
                pick("90%"),
                pick("99%")
            );
            if text.contains("Non-2xx") {
                println!("{}", pick("Non-2xx"));
            }
        }
        writer.abort();
    });
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("skystream-feedgen-{}", std::process::id())),
    );
}

//! Backfill throughput from a local host: repositories built with the repo crate's writer,
//! served over loopback HTTP by an in-process `getRepo`/`listRepos` server, read by the real
//! `HttpHost` and `Backfill` into a consumer that only counts. Printed beside the rate at which
//! the same host serves the same exports to a bare HTTP client, the ceiling a backfill could
//! reach: the target is to be limited by the host, not by us.
//!
//! `cargo bench -p skystream-backfill --bench backfill [-- --repos N --records N]`

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use skystream_backfill::{Backfill, BackfillConfig, HttpHost, HttpHostConfig, RepoSource, Window};
use skystream_crypto::{Algorithm, PrivateKey};
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, MemoryCursorSink, Pipeline, PipelineConfig,
};
use skystream_repo::{RepoWriter, WriteOp};
use skystream_store::{MemoryStore, Store};
use skystream_syntax::Tid;
use tokio_util::sync::CancellationToken;

type Repos = Arc<BTreeMap<String, Vec<u8>>>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn build(repos: usize, records: usize) -> BTreeMap<String, Vec<u8>> {
    let now = 1_790_000_000_000_000u64;
    (0..repos)
        .map(|n| {
            let did = format!("did:plc:bench{n:019}");
            let mut w = RepoWriter::new(&did, PrivateKey::from_seed(Algorithm::K256, n as u64 + 1));
            let ops: Vec<WriteOp> = (0..records)
                .map(|i| {
                    let rkey = Tid::from_parts(now - (i as u64) * 60_000_000, (n % 1000) as u16);
                    let rec = serde_json::json!({"$type": "app.bsky.feed.post", "text": format!("post {i} of repo {n}, with a little text to make it realistic"), "langs": ["en"], "createdAt": "2026-09-01T00:00:00.000Z"});
                    WriteOp::Create {
                        path: format!("app.bsky.feed.post/{rkey}"),
                        record: skystream_data::json::from_json(&rec).unwrap(),
                    }
                })
                .collect();
            w.apply(&ops, Tid::from_parts(now, 0).as_ref()).unwrap();
            (did, w.export_car().unwrap().unwrap())
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct Params {
    did: Option<String>,
    cursor: Option<String>,
}

async fn list_repos(State(r): State<Repos>, Query(p): Query<Params>) -> Json<serde_json::Value> {
    let dids: Vec<&String> = r
        .keys()
        .filter(|d| p.cursor.as_ref().is_none_or(|c| *d > c))
        .take(1000)
        .collect();
    let cursor = (dids.len() == 1000).then(|| dids[999].clone());
    Json(serde_json::json!({
        "cursor": cursor,
        "repos": dids.iter().map(|d| serde_json::json!({"did": d, "head": "x", "rev": "x", "active": true})).collect::<Vec<_>>(),
    }))
}

async fn get_repo(State(r): State<Repos>, Query(p): Query<Params>) -> Vec<u8> {
    r.get(p.did.as_deref().unwrap_or(""))
        .cloned()
        .unwrap_or_default()
}

struct Count(Arc<AtomicU64>);

#[async_trait]
impl Consumer for Count {
    fn name(&self) -> &str {
        "count"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        self.0
            .fetch_add(batch.items.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn main() {
    let repos = arg("--repos", 200);
    let records = arg("--records", 500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let data: Repos = Arc::new(build(repos, records));
    let bytes: usize = data.values().map(Vec::len).sum();
    println!(
        "built {repos} repositories x {records} posts ({:.1} MB of CAR) in {:.1?}",
        bytes as f64 / 1e6,
        t.elapsed()
    );
    rt.block_on(async move {
        let app = Router::new()
            .route("/xrpc/com.atproto.sync.listRepos", get(list_repos))
            .route("/xrpc/com.atproto.sync.getRepo", get(get_repo))
            .with_state(data.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        // The host's ceiling: the same exports fetched by a bare client, 4 at a time.
        let http = reqwest::Client::new();
        let t = Instant::now();
        let dids: Vec<String> = data.keys().cloned().collect();
        let mut fetched = 0usize;
        for chunk in dids.chunks(4) {
            let fs = chunk.iter().map(|d| {
                http.get(format!("{base}/xrpc/com.atproto.sync.getRepo?did={d}"))
                    .send()
            });
            for r in futures_util::future::join_all(fs).await {
                fetched += r.unwrap().bytes().await.unwrap().len();
            }
        }
        let raw = t.elapsed();
        assert_eq!(fetched, bytes);
        println!(
            "host alone (bare GETs, 4 at a time): {:.0} repos/s, {:.0} MB/s",
            repos as f64 / raw.as_secs_f64(),
            bytes as f64 / 1e6 / raw.as_secs_f64()
        );

        for concurrency in [2usize, 4] {
            let seen = Arc::new(AtomicU64::new(0));
            let (input, handle) = Pipeline::start(
                PipelineConfig::default(),
                "backfill",
                None,
                vec![Box::new(Count(seen.clone()))],
                Arc::new(MemoryCursorSink::new()),
            );
            let host = HttpHost::new(
                HttpHostConfig {
                    host: base.clone(),
                    requests_per_second: 0.0,
                    ..HttpHostConfig::default()
                },
                None,
            )
            .unwrap();
            let cfg = BackfillConfig {
                window: Window::All,
                collections: Vec::new(),
                batch_size: 50,
                batch_delay: Duration::ZERO,
                max_concurrent: concurrency,
                max_memory_bytes: 0,
                max_attempts: 1,
                poll: Duration::from_millis(50),
            };
            let store = Store::from(MemoryStore::new());
            let t = Instant::now();
            let report = Backfill::new(cfg, Arc::new(store), Arc::new(host))
                .run(&RepoSource::Host, input, handle.committed(), CancellationToken::new())
                .await
                .unwrap();
            handle.finish().await;
            let took = t.elapsed();
            assert_eq!(report.records, (repos * records) as u64);
            assert_eq!(seen.load(Ordering::Relaxed), (repos * records) as u64);
            println!(
                "backfill (max_concurrent {concurrency}, no delays): {:.0} repos/s, {:.0} records/s ({took:.2?})",
                repos as f64 / took.as_secs_f64(),
                report.records as f64 / took.as_secs_f64()
            );
        }
    });
}

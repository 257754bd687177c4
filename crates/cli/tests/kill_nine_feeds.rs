//! The property that ties the joints together: `skystream serve` ingesting a capture, killed
//! with SIGKILL at random points and started again each time, ends with every feed equal to
//! the feed of a run that was never interrupted: no item lost, none twice, the same order.
//! 100 kills on SQLite; 20 on PostgreSQL (`#[ignore]`d: it needs the server).
//!
//! The capture is simulated traffic (posts in several languages, replies, likes and unlikes,
//! reposts, deletes, account deactivations and deletions), replayed at the pace of its own
//! clock so the kills land while it is being indexed; the reference run reads it as fast as it
//! can. Kill points come from a seed (`SKYSTREAM_KILL_SEED` repeats a run).

#[path = "../../store/tests/common/mod.rs"]
mod store_common;

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, XorShift};

use serde_json::Value;
use skystream_simulate::{SimConfig, Simulator};
use skystream_store::CursorStore;

/// Frames in the capture: about 40 s of traffic at its own pace.
const FRAMES: usize = 20_000;
/// Microseconds between frames: 500 frames/s when replayed in real time.
const TICK_US: i64 = 2_000;
const FEEDS: &[&str] = &["all", "english", "norsk", "top", "noreplies", "withreposts"];

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("skystream.toml");
    std::fs::write(
        &path,
        r#"[service]
hostname = "feeds.kill9.test"

[ingest]
recent_window = 100000

[[feed]]
id = "all"
display_name = "All"
max_age = "2w"

[[feed]]
id = "english"
display_name = "English"
languages = ["en"]
max_age = "2w"

[[feed]]
id = "norsk"
display_name = "Norsk"
languages = ["no"]
max_age = "2w"

[[feed]]
id = "top"
display_name = "Top"
ranking = "engagement"
max_age = "2w"

[[feed]]
id = "noreplies"
display_name = "No replies"
replies = "exclude"
min_likes = 1
max_age = "2w"

[[feed]]
id = "withreposts"
display_name = "With reposts"
reposts = true
max_age = "2w"
"#,
    )
    .expect("write the config");
    path
}

/// Simulated traffic from an hour ago, as a relay-frame capture.
fn write_capture(path: &Path) -> u64 {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64;
    let start = now_us - 3_600_000_000;
    let mut sim = Simulator::new(SimConfig {
        seed: 9,
        accounts: 300,
        start_time_us: start,
        tick_us: TICK_US,
        ..SimConfig::default()
    });
    let mut w = skystream_capture::CaptureWriter::create(
        path,
        skystream_capture::CaptureFormat::RelayFrames,
        skystream_capture::Compression::Zstd,
    )
    .expect("create the capture");
    let mut last = 0;
    for i in 0..FRAMES {
        let f = sim.next_frame(start + i as i64 * TICK_US);
        w.write_frame(&f.bytes).expect("write a frame");
        last = f.seq as u64;
    }
    w.finish().expect("finish the capture");
    last
}

struct Run {
    child: Child,
    port: u16,
    log: PathBuf,
}

fn serve(config: &Path, capture: &Path, database: &str, pace: &str, log: &Path) -> Run {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--source", &format!("file:{}", capture.display())])
        .args(["--database", database, "--pace", pace])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-console"])
        // Save the cursor often, so short runs still move it and crashes land between saves.
        .args(["--cursor-save-interval", "50ms"])
        .env_remove("SKYSTREAM_CONFIG")
        .env_remove("SKYSTREAM_DATABASE")
        .env_remove("SKYSTREAM_SOURCE")
        .env("SKYSTREAM_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn skystream serve");
    Run {
        child,
        port,
        log: log.to_owned(),
    }
}

impl Run {
    fn kill_9(mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Waits until the capture has been read to its end and every event handled.
    fn wait_until_ingested(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains("ingest finished; still serving") {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("serve exited ({status}); see {}", self.log.display());
            }
            assert!(
                Instant::now() < deadline,
                "serve did not finish the capture; see {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Every page of every feed: (post, repost) per item, in order.
async fn feeds(port: u16) -> BTreeMap<&'static str, Vec<(String, Option<String>)>> {
    let http = reqwest::Client::new();
    let mut out = BTreeMap::new();
    for feed in FEEDS {
        let uri = format!("at://did:web:feeds.kill9.test/app.bsky.feed.generator/{feed}");
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("feed", uri.clone()), ("limit", "100".to_owned())];
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let r = http
                .get(format!(
                    "http://127.0.0.1:{port}/xrpc/app.bsky.feed.getFeedSkeleton"
                ))
                .query(&q)
                .send()
                .await
                .expect("skeleton request");
            assert!(r.status().is_success(), "{feed}: {}", r.status());
            let v: Value = r.json().await.expect("json");
            let page = v["feed"].as_array().expect("feed");
            for i in page {
                items.push((
                    i["post"].as_str().expect("post").to_owned(),
                    i["reason"]["repost"].as_str().map(str::to_owned),
                ));
            }
            cursor = v["cursor"].as_str().map(str::to_owned);
            if page.is_empty() || cursor.is_none() {
                break;
            }
        }
        out.insert(*feed, items);
    }
    out
}

async fn wait_http(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn saved_cursor(database: &str, key: &str) -> Option<u64> {
    let store = skystream_store::Store::open(database).await.ok()?;
    store.load_cursor(key).await.ok().flatten()
}

/// The reference run and the crashed runs on `database`; returns how many kills moved the
/// saved cursor (landed while events were being indexed).
async fn kill_and_compare(kills: usize, reference_db: &str, database: &str, dir: &Path) {
    let config = config(dir);
    let capture = dir.join("traffic.cap");
    let started = Instant::now();
    let last_seq = write_capture(&capture);
    eprintln!(
        "{FRAMES} frames simulated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let key = format!("file:{}", capture.display());

    // The reference: one uninterrupted run.
    let mut run = serve(
        &config,
        &capture,
        reference_db,
        "fast",
        &dir.join("reference.log"),
    );
    run.wait_until_ingested();
    wait_http(run.port).await;
    let want = feeds(run.port).await;
    run.kill_9();
    for (feed, items) in &want {
        eprintln!("reference feed {feed}: {} items", items.len());
    }
    assert!(
        want.values().all(|items| !items.is_empty()),
        "every feed has items to compare: {:?}",
        want.iter().map(|(f, i)| (f, i.len())).collect::<Vec<_>>()
    );

    let mut rng = XorShift::from_env("SKYSTREAM_KILL_SEED", 0x9e37_79b9_7f4a_7c15_u64);
    let mut moved = 0;
    for round in 0..kills {
        let before = saved_cursor(database, &key).await;
        let run = serve(
            &config,
            &capture,
            database,
            "realtime",
            &dir.join("crash.log"),
        );
        std::thread::sleep(Duration::from_millis(100 + rng.below(1_100)));
        run.kill_9();
        let after = saved_cursor(database, &key).await;
        if after != before {
            moved += 1;
        }
        if round % 10 == 0 || round + 1 == kills {
            eprintln!("kill {round}: cursor {before:?} -> {after:?} of {last_seq}");
        }
    }

    // The last run reads the rest, and the feeds must be the reference's.
    let mut run = serve(&config, &capture, database, "fast", &dir.join("last.log"));
    run.wait_until_ingested();
    wait_http(run.port).await;
    let got = feeds(run.port).await;
    run.kill_9();
    let mut report = Vec::new();
    for (feed, want_items) in &want {
        let got_items = &got[feed];
        let lost = want_items.iter().filter(|i| !got_items.contains(i)).count();
        let twice = got_items.len() - {
            let mut u = got_items.clone();
            u.sort();
            u.dedup();
            u.len()
        };
        report.push(format!(
            "{feed}: {} items, {lost} lost, {twice} twice",
            got_items.len()
        ));
        assert_eq!(
            got_items, want_items,
            "feed {feed} after {kills} kills differs from the uninterrupted run ({lost} lost, \
             {twice} twice)"
        );
    }
    eprintln!(
        "{kills} kills ({moved} while indexing): every feed equals the uninterrupted run's: {}",
        report.join("; ")
    );
    assert!(
        moved * 2 >= kills,
        "too few kills landed while the capture was being indexed: {moved} of {kills}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_kill_9s_of_serve_on_sqlite_leave_every_feed_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = format!("sqlite:{}", dir.path().join("reference.db").display());
    let crashed = format!("sqlite:{}", dir.path().join("crashed.db").display());
    kill_and_compare(100, &reference, &crashed, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn twenty_kill_9s_of_serve_on_postgres_leave_every_feed_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = store_common::PgSchema::create().await;
    let crashed = store_common::PgSchema::create().await;
    kill_and_compare(20, &reference.url(), &crashed.url(), dir.path()).await;
}

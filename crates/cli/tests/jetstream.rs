//! `skystream jetstream` as a user runs it: a capture file in, a Jetstream v1 subscriber out,
//! metrics, a clean stop on SIGTERM, and a restart that keeps the log and appends no repeats.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value as J;
use tokio_tungstenite::tungstenite::Message;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/relay-corpus");
const DICT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/zstd/jetstream-v1.zdict"
);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn start(data: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args([
            "jetstream",
            "--source",
            &format!("file:{CORPUS}/frames.bin.zst"),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().expect("path"),
            "--dictionary",
            DICT,
        ])
        .env_remove("SKYSTREAM_SOURCE")
        .env_remove("SKYSTREAM_DATABASE")
        .env("SKYSTREAM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn skystream jetstream")
}

async fn get(port: u16, path: &str) -> Option<String> {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .ok()?;
    r.text().await.ok()
}

/// Waits until the server answers /health and its log holds `events` events.
async fn wait_for_log(port: u16, events: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = get(port, "/metrics").await {
            let appended = m
                .lines()
                .find(|l| l.starts_with("skystream_jetstream_events_appended_total"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if appended as u64 >= events || events == 0 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server never got {events} events"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn read_all(port: u16) -> Vec<J> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/subscribe?cursor=0"))
            .await
            .expect("connect");
    let mut out = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(800), ws.next()).await {
        if let Message::Text(t) = m {
            out.push(serde_json::from_str(&t).expect("json"));
        }
    }
    out
}

fn key(e: &J) -> String {
    let kind = e["kind"].as_str().expect("kind");
    if kind == "commit" {
        let c = &e["commit"];
        format!(
            "{}|{}|{}|{}|{}",
            e["did"], c["rev"], c["collection"], c["rkey"], c["operation"]
        )
    } else {
        format!("{kind}|{}|{}", e["did"], e[kind]["seq"])
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("skystream jetstream did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serves_a_capture_as_production_jetstream_and_restarts_without_repeats() {
    let data = std::env::temp_dir().join(format!("skystream-jetstream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let port = free_port();
    let child = start(&data, port);
    wait_for_log(port, 152).await;
    let got = read_all(port).await;
    let want: HashMap<String, J> = std::fs::read_to_string(format!("{CORPUS}/expected_v1.jsonl"))
        .expect("expected")
        .lines()
        .map(|l| serde_json::from_str::<J>(l).expect("json"))
        .map(|mut e| {
            e.as_object_mut().expect("object").remove("time_us");
            (key(&e), e)
        })
        .collect();
    assert_eq!(got.len(), 152);
    for e in &got {
        let mut e = e.clone();
        e.as_object_mut().expect("object").remove("time_us");
        assert_eq!(Some(&e), want.get(&key(&e)));
    }
    let metrics = get(port, "/metrics").await.expect("metrics");
    assert!(
        metrics.contains("skystream_jetstream_compression_ratio"),
        "{metrics}"
    );
    assert!(metrics.contains("skystream_jetstream_events_sent_total"));
    stop(child);

    // The upstream cursor was saved after the log had the events: a restart reads nothing new.
    let port = free_port();
    let child = start(&data, port);
    wait_for_log(port, 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = read_all(port).await;
    assert_eq!(again, got, "same events, same time_us, no repeats");
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn help_lists_every_flag_with_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(["jetstream", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--source",
        "--listen",
        "--dictionary",
        "--retention",
        "--data-dir",
        "--inform-cursor-floor-secs",
        "--include-backfill",
        "--max-connections-per-ip",
        "--max-events-per-ip",
        "SKYSTREAM_RETENTION",
        "SKYSTREAM_DATA_DIR",
        "--no-console",
        "SKYSTREAM_NO_CONSOLE",
        "0.0.0.0:6008",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// `serve` with a `[jetstream]` section serves the same stream at /subscribe beside the feeds:
/// the corpus replayed through the feed generator reaches a Jetstream subscriber, as production
/// Jetstream renders it.
#[tokio::test]
async fn serve_with_a_jetstream_section_serves_subscribe() {
    let dir = tempfile_dir("serve-jetstream");
    let config = dir.join("skystream.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nhostname = \"feeds.example.test\"\n\n[jetstream]\ndata_dir = \"{}\"\ndictionary = \"{DICT}\"\nretention = \"2h\"\n\n[[feed]]\nid = \"all\"\ndisplay_name = \"All\"\n",
            dir.join("log").display()
        ),
    )
    .expect("config");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args([
            "serve",
            "--config",
            config.to_str().expect("path"),
            "--database",
            &format!("sqlite:{}", dir.join("feeds.db").display()),
            "--source",
            &format!("file:{CORPUS}/frames.bin.zst"),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("SKYSTREAM_SOURCE")
        .env_remove("SKYSTREAM_DATABASE")
        .env("SKYSTREAM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn skystream serve");
    let child = KillOnDrop(child);
    let up = Instant::now() + Duration::from_secs(30);
    while get(port, "/xrpc/app.bsky.feed.describeFeedGenerator")
        .await
        .is_none()
    {
        assert!(Instant::now() < up, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected: Vec<J> = std::fs::read_to_string(format!("{CORPUS}/expected_v1.jsonl"))
        .expect("expected_v1.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = read_all(port).await.into_iter().collect::<Vec<_>>();
        if got.len() >= expected.len() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    drop(child);
    let got: Vec<String> = got.iter().map(key).collect();
    let want: Vec<String> = expected.iter().map(key).collect();
    assert_eq!(
        got, want,
        "serve's /subscribe replays the corpus as Jetstream does"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("skystream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Kills the process when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sum of metric `name` over the samples whose labels include every `with` pair, read from
/// Prometheus text the way a scraper would.
fn metric_sum(text: &str, name: &str, with: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            with.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The value of the Jetstream section's figure `key` in a console status document.
fn figure(status: &J, key: &str) -> f64 {
    status["sections"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "Jetstream"))
        .and_then(|s| s["figures"].as_array())
        .and_then(|f| f.iter().find(|f| f["key"] == key))
        .and_then(|f| f["value"].as_f64())
        .unwrap_or_else(|| panic!("no Jetstream figure {key}: {status}"))
}

/// A subscriber reading in a task until the task is aborted (which drops the socket).
async fn subscriber(port: u16, query: &str) -> tokio::task::JoinHandle<()> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/subscribe?{query}"))
            .await
            .expect("connect");
    tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} })
}

/// `jetstream` serves the web console at `/`: its own ingest figures, no feeds, and a Jetstream
/// section whose subscribers by mode and bytes sent are what /metrics has.
#[tokio::test]
async fn the_console_shows_the_figures_metrics_has() {
    let dir = tempfile_dir("jetstream-console");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(["jetstream", "--source", "simulate:1000", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("log"))
        .args(["--dictionary", DICT])
        .env_remove("SKYSTREAM_SOURCE")
        .env_remove("SKYSTREAM_DATABASE")
        .env_remove("SKYSTREAM_NO_CONSOLE")
        .env_remove("SKYSTREAM_METRICS_LISTEN")
        .env("SKYSTREAM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn skystream jetstream");
    let child = KillOnDrop(child);
    wait_for_log(port, 100).await;

    let zstd = subscriber(port, "compress=true&wantedCollections=app.bsky.feed.post").await;
    let json = subscriber(port, "").await;
    let status = |port| async move {
        let text = get(port, "/console/api/status").await.expect("status");
        serde_json::from_str::<J>(&text).expect("status json")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (before, s, after) = loop {
        let before = get(port, "/metrics").await.expect("metrics");
        let s = status(port).await;
        let after = get(port, "/metrics").await.expect("metrics");
        if figure(&s, "subscribers") == 2.0
            && figure(&s, "bytes_sent_zstd") > 0.0
            && figure(&s, "bytes_sent_json") > 0.0
        {
            break (before, s, after);
        }
        assert!(
            Instant::now() < deadline,
            "the section never showed both: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Gauges that hold still while both are connected read the same as /metrics.
    let subs = "skystream_jetstream_subscribers";
    assert_eq!(metric_sum(&after, subs, &[]), 2.0);
    for (key, label) in [
        ("subscribers_zstd", ("encoding", "zstd")),
        ("subscribers_json", ("encoding", "json")),
        ("subscribers_filtered", ("filter", "filtered")),
        ("subscribers_all", ("filter", "all")),
    ] {
        assert_eq!(figure(&s, key), 1.0, "{key}");
        assert_eq!(metric_sum(&after, subs, &[label]), 1.0, "{key}");
    }
    // Counters move on: the status reads between two scrapes.
    let sent = "skystream_jetstream_bytes_sent_total";
    for (key, with) in [
        ("bytes_sent", &[][..]),
        ("bytes_sent_zstd", &[("encoding", "zstd")][..]),
        ("bytes_sent_json", &[("encoding", "json")][..]),
    ] {
        let v = figure(&s, key);
        assert!(
            metric_sum(&before, sent, with) <= v && v <= metric_sum(&after, sent, with),
            "{key} {v} is between two scrapes"
        );
    }
    assert!(figure(&s, "log_size_bytes") > 0.0);
    assert!(figure(&s, "log_newest_time_us") >= figure(&s, "log_oldest_time_us"));
    // The status page's own figures: this process's source, and no feeds.
    assert_eq!(s["source"]["kind"], "simulate");
    assert_eq!(s["source"]["connected"], true, "{s}");
    assert!(s["source"]["lag_seconds"].as_f64().is_some(), "{s}");
    assert!(
        s["ingest"]["events_total"]["commit"].as_f64() > Some(0.0),
        "{s}"
    );
    assert_eq!(s["feeds"], J::Null);
    assert_eq!(s["store"], J::Null);
    let feeds = reqwest::get(format!("http://127.0.0.1:{port}/console/api/feeds"))
        .await
        .expect("feeds");
    assert_eq!(feeds.status(), 404);

    // A subscriber that leaves is no longer counted.
    zstd.abort();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(port).await;
        if figure(&s, "subscribers") == 1.0 {
            assert_eq!(figure(&s, "subscribers_zstd"), 0.0);
            assert_eq!(figure(&s, "subscribers_json"), 1.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the zstd subscriber is still counted: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    json.abort();

    // One that waits for its hello takes everything until its options_update filters it.
    let (mut hello, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/subscribe?requireHello=true"
    ))
    .await
    .expect("connect");
    let until = |want: &'static [(&'static str, f64)]| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = status(port).await;
            if want.iter().all(|(key, v)| figure(&s, key) == *v) {
                return;
            }
            assert!(Instant::now() < deadline, "never {want:?}: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    until(&[
        ("subscribers", 1.0),
        ("subscribers_waiting", 1.0),
        ("subscribers_all", 1.0),
    ])
    .await;
    hello
        .send(Message::text(
            r#"{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.like"]}}"#,
        ))
        .await
        .expect("send the hello");
    until(&[
        ("subscribers", 1.0),
        ("subscribers_waiting", 0.0),
        ("subscribers_filtered", 1.0),
        ("subscribers_all", 0.0),
    ])
    .await;
    drop(hello);
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

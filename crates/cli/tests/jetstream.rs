//! `skystream jetstream` as a user runs it: a capture file in, a Jetstream v1 subscriber out,
//! metrics, a clean stop on SIGTERM, and a restart that keeps the log and appends no repeats.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value as J;
use tokio_tungstenite::tungstenite::Message;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/relay-corpus"
);
const DICT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/zstd/jetstream-v1.zdict"
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

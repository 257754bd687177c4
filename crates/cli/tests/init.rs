//! `skystream init` as a new user runs it: in an empty folder it writes `skystream.toml`,
//! refuses to write it again, and `skystream serve` (with no flags but the simulator as the
//! source) serves the feeds it wrote, under the hostname it was given.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn skystream(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(args)
        .current_dir(dir)
        .env_remove("SKYSTREAM_CONFIG")
        .env_remove("SKYSTREAM_HOSTNAME")
        .env_remove("SKYSTREAM_DATABASE")
        .env_remove("SKYSTREAM_SOURCE")
        .output()
        .expect("run skystream")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// A plain HTTP/1.0 GET: the status and the body, or `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn init_writes_a_config_that_serve_serves_and_never_overwrites_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = skystream(
        dir.path(),
        &[
            "init",
            "--hostname",
            "feeds.init.test",
            "--auth",
            "optional",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("wrote skystream.toml: 4 feeds (bokmaal, nynorsk, sami, all) for did:web:feeds.init.test"),
        "{stdout}"
    );
    for step in ["skystream serve", "skystream publish", "skystream verify"] {
        assert!(stdout.contains(step), "{step} missing from {stdout}");
    }
    let path = dir.path().join("skystream.toml");
    let written = std::fs::read_to_string(&path).expect("skystream.toml");
    assert!(
        written.contains("hostname = \"feeds.init.test\""),
        "{written}"
    );
    assert!(written.contains("auth = \"optional\""), "{written}");
    // The explanations of every key came along.
    assert!(
        written.contains("# Filters. A post must pass every filter"),
        "{written}"
    );

    // A second init refuses, says why, and leaves the file alone.
    let again = skystream(dir.path(), &["init", "--hostname", "other.test"]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("still there"),
        written
    );

    // A bad answer writes nothing.
    let bad_dir = tempfile::tempdir().expect("temp dir");
    let bad = skystream(bad_dir.path(), &["init", "--hostname", "https://x.test/"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!bad_dir.path().join("skystream.toml").exists());

    // serve reads ./skystream.toml and serves what init wrote.
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args([
            "serve",
            "--source",
            "simulate:2000",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir.path())
        .env_remove("SKYSTREAM_CONFIG")
        .env_remove("SKYSTREAM_DATABASE")
        .env_remove("SKYSTREAM_SOURCE")
        .env("SKYSTREAM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn skystream serve");
    let _child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let describe = loop {
        if let Some((200, body)) = get(port, "/xrpc/app.bsky.feed.describeFeedGenerator") {
            break body;
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    let describe: Value = serde_json::from_str(&describe).expect("json");
    assert_eq!(describe["did"], "did:web:feeds.init.test");
    let feeds: Vec<&str> = describe["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .map(|f| f["uri"].as_str().expect("uri"))
        .collect();
    assert_eq!(feeds.len(), 4, "{describe}");
    assert!(feeds
        .iter()
        .any(|u| u.ends_with("/app.bsky.feed.generator/bokmaal")));
    // Optional auth: a request without a token is served.
    let feed = feeds[0];
    let (status, body) = get(
        port,
        &format!("/xrpc/app.bsky.feed.getFeedSkeleton?feed={feed}&limit=5"),
    )
    .expect("skeleton");
    assert_eq!(status, 200, "{body}");
    assert!(dir.path().join("skystream.db").exists());
}
